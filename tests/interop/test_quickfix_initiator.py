"""Interop: QuickFIX (C++ engine, ``quickfix`` package) as the initiator, fixgw as the acceptor.

One ``fixgw conformance-server`` serves the module (sessions ISLD<->TW44 on FIX.4.4 and
ISLD<->TW50SP2 on FIXT.1.1 / FIX.5.0SP2; it echoes NewOrderSingle and answers other application
messages with BusinessMessageReject; sequence numbers reset on every Logon). Each scenario runs
for both versions:

* logon, an exchange of orders and a rejected OrderCancelRequest, Logout handshake;
* a gap in one connection: a loopback :class:`FixProxy` swallows some echoes, the next one is
  too high for QuickFIX, which sends ResendRequest; fixgw must resend the swallowed echoes
  (PossDupFlag=Y) so that every echo arrives exactly once and no sequence number is missing;
* the proxy resets both TCP connections while orders are in flight; QuickFIX reconnects on its
  own (ReconnectInterval=1), logs on again and exchanges more orders.

Skipped when ``quickfix`` is not installed (``scripts/setup.sh --interop``), unless
``REQUIRE_INTEROP=1``, which turns the skip into a failure.
"""

from __future__ import annotations

import os
import queue
import re
import selectors
import signal
import socket
import struct
import subprocess
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

try:
    import quickfix  # noqa: F401
except ImportError as exc:
    _MISSING = f"the quickfix package is not importable ({exc}): run scripts/setup.sh --interop"
    if os.environ.get("REQUIRE_INTEROP") == "1":
        pytest.fail(f"{_MISSING} (REQUIRE_INTEROP=1)", pytrace=False)
    pytest.skip(_MISSING, allow_module_level=True)

from .qf_initiator import (  # noqa: E402
    REPO_ROOT,
    VERSIONS,
    Event,
    Initiator,
    Version,
    new_order_single,
    order_cancel_request,
)

pytestmark = [pytest.mark.interop, pytest.mark.timeout(60)]

FIXGW = REPO_ROOT / ".venv" / "bin" / "fixgw"
HOST = "127.0.0.1"
WAIT = 10.0
"""Seconds any single expected event may take (they take milliseconds)."""


# --------------------------------------------------------------------------- the acceptor


@dataclass
class Server:
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    def describe(self) -> str:
        code = self.process.poll()
        state = "running" if code is None else f"EXITED with code {code}"
        text = self.log_path.read_bytes().decode(errors="replace")[-4000:]
        return f"fixgw conformance-server (port {self.port}) {state}; log {self.log_path}:\n{text}"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        port: int = s.getsockname()[1]
        return port


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)


@pytest.fixture(scope="module")
def fixgw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    if not FIXGW.exists():
        pytest.fail(f"{FIXGW} not found: run scripts/setup.sh --interop", pytrace=False)
    tmp = tmp_path_factory.mktemp("fixgw")
    port = _free_port()
    log_path = tmp / "server.log"
    command = [str(FIXGW), "conformance-server", "--host", HOST, "--port", str(port),
               "--store", f"sqlite:///{tmp / 'x.db'}", "--log-dir", str(tmp / "fixlog"),
               # the gateway's default: no 1137 in BusinessMessageReject (QuickFIX's validator
               # rejects it there, although QuickFIX's own acceptor writes it)
               "--standard-bmr"]
    log = log_path.open("wb")
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL, cwd=REPO_ROOT
    )
    assert process.stdout is not None
    stdout = process.stdout
    ready = threading.Event()
    banner = f"listening on {HOST}:{port}".encode()

    def drain() -> None:  # copies stdout to the log; signals the banner or the end of output
        with log:
            for line in stdout:
                log.write(line)
                log.flush()
                if banner in line:
                    ready.set()
        ready.set()

    threading.Thread(target=drain, name="fixgw-stdout", daemon=True).start()
    server = Server(port, process, log_path)
    try:
        if not ready.wait(60) or process.poll() is not None:
            pytest.fail(f"no {banner.decode()!r} from {' '.join(command)}\n{server.describe()}",
                        pytrace=False)
        yield server
    finally:
        _stop(process)


# --------------------------------------------------------------------------- the TCP proxy

TO_ACCEPTOR, TO_INITIATOR = "initiator->acceptor", "acceptor->initiator"
_HEAD = re.compile(rb"8=[^\x01]{1,16}\x019=(\d{1,7})\x01")


@dataclass(frozen=True)
class Frame:
    """One FIX message passing through the proxy."""

    direction: str
    data: bytes

    def get(self, tag: int) -> bytes | None:
        prefix = b"%d=" % tag
        for part in self.data.split(b"\x01"):
            if part.startswith(prefix):
                return part[len(prefix):]
        return None


def _take_frames(buffer: bytearray) -> list[bytes]:
    """Complete messages at the front of ``buffer`` (removed from it); bytes that cannot
    start a message are passed on as they are."""
    out: list[bytes] = []
    while buffer:
        m = _HEAD.match(buffer)
        if m is None:
            if buffer.startswith(b"8=") and buffer.count(b"\x01") < 2:
                break  # a header still arriving
            nxt = buffer.find(b"8=", 1)
            cut = len(buffer) if nxt < 0 else nxt
            out.append(bytes(buffer[:cut]))
            del buffer[:cut]
            continue
        end = m.end() + int(m.group(1)) + len(b"10=000\x01")
        if len(buffer) < end:
            break
        out.append(bytes(buffer[:end]))
        del buffer[:end]
    return out


@dataclass(eq=False)
class _Link:
    """One direction of one proxied connection."""

    src: socket.socket
    dst: socket.socket
    direction: str
    buffer: bytearray


class FixProxy:
    """A loopback proxy (one thread) between QuickFIX and fixgw that frames FIX messages.

    ``swallow_echoes`` drops the acceptor's (non-PossDup) echoes of some ClOrdIDs, each put on
    ``swallowed``; ``cut_on`` resets both TCP connections (RST) when the initiator's message
    with that ClOrdID arrives (it is not forwarded), put on ``cuts``. Each accepted connection
    puts its number on ``accepted``.
    """

    def __init__(self, upstream_port: int) -> None:
        self._upstream = (HOST, upstream_port)
        self._listener = socket.create_server((HOST, 0))
        self._listener.setblocking(False)
        self.port: int = self._listener.getsockname()[1]
        self._wake_r, self._wake_w = socket.socketpair()
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._listener, selectors.EVENT_READ, "listener")
        self._selector.register(self._wake_r, selectors.EVENT_READ, "wake")
        self._links: dict[socket.socket, _Link] = {}
        self._lock = threading.Lock()
        self._swallow: set[bytes] = set()
        self._cut_on: bytes | None = None
        self._stopping = False
        self._count = 0
        self.failure: BaseException | None = None
        self.swallowed: queue.Queue[Frame] = queue.Queue()
        self.cuts: queue.Queue[Frame] = queue.Queue()
        self.accepted: queue.Queue[int] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="fix-proxy", daemon=True)
        self._thread.start()

    def swallow_echoes(self, cl_ord_ids: Sequence[str]) -> None:
        with self._lock:
            self._swallow = {c.encode() for c in cl_ord_ids}

    def cut_on(self, cl_ord_id: str) -> None:
        with self._lock:
            self._cut_on = cl_ord_id.encode()

    def close(self) -> None:
        self._stopping = True
        self._wake_w.send(b"x")
        self._thread.join(timeout=10)
        for sock in list(self._links):
            sock.close()
        for sock in (self._listener, self._wake_r, self._wake_w):
            sock.close()
        self._selector.close()
        assert self.failure is None, f"the proxy thread failed: {self.failure!r}"

    # ---- the proxy thread
    def _run(self) -> None:
        try:
            while not self._stopping:
                for key, _ in self._selector.select():
                    if key.data == "listener":
                        self._accept()
                    elif key.data == "wake":
                        self._wake_r.recv(64)
                    else:
                        self._pump(key.data)
        except BaseException as exc:  # reported by close()
            self.failure = exc
            raise

    def _accept(self) -> None:
        try:
            client, _ = self._listener.accept()
        except BlockingIOError:
            return
        try:
            upstream = socket.create_connection(self._upstream, timeout=WAIT)
        except OSError:
            client.close()
            return
        for sock in (client, upstream):
            sock.settimeout(WAIT)  # recv only when readable; sendall bounded
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for link in (_Link(client, upstream, TO_ACCEPTOR, bytearray()),
                     _Link(upstream, client, TO_INITIATOR, bytearray())):
            self._links[link.src] = link
            self._selector.register(link.src, selectors.EVENT_READ, link)
        self._count += 1
        self.accepted.put(self._count)

    def _verdict(self, frame: Frame) -> str:
        with self._lock:
            cl_ord_id = frame.get(11)
            if (
                frame.direction == TO_INITIATOR
                and frame.get(35) == b"D"
                and frame.get(43) != b"Y"
                and cl_ord_id in self._swallow
            ):
                self._swallow.discard(cl_ord_id)
                return "swallow"
            if frame.direction == TO_ACCEPTOR and cl_ord_id is not None and (
                cl_ord_id == self._cut_on
            ):
                self._cut_on = None
                return "cut"
        return "forward"

    def _pump(self, link: _Link) -> None:
        try:
            data = link.src.recv(1 << 16)
        except OSError:
            data = b""
        if not data:
            self._close_pair(link, reset=False)
            return
        link.buffer += data
        for raw in _take_frames(link.buffer):
            frame = Frame(link.direction, raw)
            verdict = self._verdict(frame)
            if verdict == "swallow":
                self.swallowed.put(frame)
            elif verdict == "cut":
                self._close_pair(link, reset=True)
                self.cuts.put(frame)
                return
            else:
                try:
                    link.dst.sendall(raw)
                except OSError:
                    self._close_pair(link, reset=False)
                    return

    def _close_pair(self, link: _Link, reset: bool) -> None:
        for sock in (link.src, link.dst):
            if self._links.pop(sock, None) is not None:
                self._selector.unregister(sock)
            if reset:  # RST instead of FIN: the connection is cut, not closed
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()


@pytest.fixture
def proxy(fixgw: Server) -> Iterator[FixProxy]:
    p = FixProxy(fixgw.port)
    try:
        yield p
    finally:
        p.close()


# --------------------------------------------------------------------------- helpers


def _ids(prefix: str, n: int) -> list[str]:
    return [f"{prefix}{i}" for i in range(1, n + 1)]


def echoes(history: Sequence[Event], since: int = 0) -> list[Event]:
    """NewOrderSingle echoes QuickFIX delivered to fromApp."""
    return [e for e in history[since:] if e.kind == "from_app" and e.msg_type == "D"]


def echoed(cl_ord_ids: Sequence[str], since: int = 0) -> Callable[[Sequence[Event]], bool]:
    """A condition for :meth:`Inbox.wait_until`: all of these ClOrdIDs were echoed."""
    wanted = set(cl_ord_ids)

    def condition(history: Sequence[Event]) -> bool:
        return wanted <= {e.get(11) for e in echoes(history, since)}

    return condition


def assert_no_rejects(
    initiator: Initiator, fixgw: Server, *, allow_business_reject: bool = False
) -> None:
    """Neither side rejected anything or logged out (no Reject or Logout either way, no
    BusinessMessageReject unless allowed); no exception in our QuickFIX callbacks."""
    bad = [
        e for e in initiator.inbox.drain()
        if e.kind == "error"
        or (e.kind in ("to_admin", "from_admin") and e.msg_type in ("3", "5"))
        or (e.kind == "from_app" and e.msg_type == "j" and not allow_business_reject)
    ]
    assert not bad, (
        "rejects / callback errors:\n  " + "\n  ".join(map(str, bad))
        + f"\n{initiator.describe()}\n{fixgw.describe()}"
    )


def logout_and_check_sequence(initiator: Initiator, since: int) -> None:
    """QuickFIX logs out (fixgw must answer the Logout); then every MsgSeqNum from the Logon
    at ``since`` up to QuickFIX's next expected one must have been processed exactly once (a
    SequenceReset-GapFill covers its range): no gap, no duplicate.

    Checked after the Logout handshake: QuickFIX counts a message after its callback, so
    its expected number is only settled once the session has stopped receiving.
    """
    end = initiator.logout(WAIT)
    history = initiator.inbox.drain()
    answers = [e for e in history[since:end] if e.kind == "from_admin"]
    assert answers and answers[-1].msg_type == "5", (
        f"fixgw did not answer QuickFIX's Logout\n{initiator.describe()}"
    )
    covered: list[int] = []
    for e in history[since:end]:
        if not e.incoming:
            continue
        if e.msg_type == "4" and e.get(123) == "Y":
            covered.extend(range(e.seq, int(e.get(36) or 0)))
        else:
            covered.append(e.seq)
    expected = list(range(1, initiator.expected_target_seq()))
    assert sorted(covered) == expected, (
        f"QuickFIX processed MsgSeqNums {sorted(covered)}, expected {expected}\n"
        f"{initiator.describe()}"
    )


def _start(version: Version, port: int, workdir: Path) -> Initiator:
    return Initiator(version, host=HOST, port=port, workdir=workdir, reconnect_interval=1)


def _logon_index(initiator: Initiator) -> int:
    """Index of the inbound Logon of the connection that logged on most recently."""
    history = initiator.inbox.drain()
    return max(i for i, e in enumerate(history) if e.kind == "from_admin" and e.msg_type == "A")


# --------------------------------------------------------------------------- scenarios

versions = pytest.mark.parametrize("version", VERSIONS, ids=[v.id for v in VERSIONS])


@versions
def test_logon_exchange_logout(version: Version, fixgw: Server, tmp_path: Path) -> None:
    with _start(version, fixgw.port, tmp_path / "qf") as qf:
        qf.start()
        qf.wait_logon(timeout=WAIT)
        logon = _logon_index(qf)
        orders = _ids("X", 20)
        sent = {}
        for cl in orders:
            msg = new_order_single(cl, qty=100 + len(sent))
            sent[cl] = msg
            qf.send(msg)
        qf.inbox.wait_until(echoed(orders), "20 echoes", WAIT)
        got = echoes(qf.inbox.history)
        assert Counter(e.get(11) for e in got) == Counter(orders), qf.describe()
        body_tags = (11, 21, 38, 40, 54, 55, 60)
        for e in got:
            mine = sent[str(e.get(11))]
            assert {t: e.get(t) for t in body_tags} == {
                t: mine.getField(t) for t in body_tags
            }, str(e)
            assert not e.poss_dup, str(e)
        assert_no_rejects(qf, fixgw)
        logout_and_check_sequence(qf, logon)


@versions
def test_business_message_reject(version: Version, fixgw: Server, tmp_path: Path) -> None:
    """An application message the conformance application does not take gets 35=j, which
    QuickFIX must accept (no session-level Reject back)."""
    with _start(version, fixgw.port, tmp_path / "qf") as qf:
        qf.start()
        qf.wait_logon(timeout=WAIT)
        logon = _logon_index(qf)
        qf.send(order_cancel_request("CXL1", "X1"))
        history = qf.inbox.wait_until(
            lambda h: any(
                (e.kind == "from_app" and e.msg_type == "j")  # QuickFIX took the 35=j
                or (e.kind == "to_admin" and e.msg_type in ("3", "5"))  # or refused it
                for e in h
            ),
            "the BusinessMessageReject", WAIT,
        )
        [cancel] = [e for e in history if e.kind == "to_app" and e.msg_type == "F"]
        assert_no_rejects(qf, fixgw, allow_business_reject=True)
        [bmr] = [e for e in history if e.kind == "from_app" and e.msg_type == "j"]
        assert (bmr.get(45), bmr.get(372), bmr.get(380)) == (str(cancel.seq), "F", "3"), str(bmr)
        logout_and_check_sequence(qf, logon)


@versions
def test_gap_recovered_by_resend_request(
    version: Version, fixgw: Server, proxy: FixProxy, tmp_path: Path
) -> None:
    with _start(version, proxy.port, tmp_path / "qf") as qf:
        qf.start()
        qf.wait_logon(timeout=WAIT)
        logon = _logon_index(qf)
        before = _ids("A", 3)
        for cl in before:
            qf.send(new_order_single(cl))
        qf.inbox.wait_until(echoed(before), "the first echoes", WAIT)

        gap = _ids("G", 3)
        proxy.swallow_echoes(gap)
        for cl in gap:
            qf.send(new_order_single(cl))
        swallowed = [proxy.swallowed.get(timeout=WAIT) for _ in gap]
        swallowed_seqs = [int(f.get(34) or 0) for f in swallowed]
        assert [f.get(11) for f in swallowed] == [c.encode() for c in gap]
        assert not [e for e in echoes(qf.inbox.drain()) if e.get(11) in gap]
        proxy.swallow_echoes(())

        # the next echo is too high for QuickFIX: ResendRequest, fixgw resends the gap
        after = _ids("B", 3)
        qf.send(new_order_single(after[0]))
        qf.inbox.wait_until(echoed(gap + after[:1]), "the resent gap", WAIT)
        for cl in after[1:]:
            qf.send(new_order_single(cl))
        history = qf.inbox.wait_until(echoed(after), "the later echoes", WAIT)
        assert_no_rejects(qf, fixgw)

        resend_requests = [e for e in history[logon:]
                           if e.kind == "to_admin" and e.msg_type == "2"]
        assert resend_requests, f"QuickFIX sent no ResendRequest\n{qf.describe()}"
        assert int(resend_requests[0].get(7) or 0) == swallowed_seqs[0], str(resend_requests[0])

        got = echoes(history, logon)
        counts = Counter(e.get(11) for e in got)
        assert counts == Counter(before + gap + after), f"{counts}\n{qf.describe()}"
        by_id = {str(e.get(11)): e for e in got}
        for cl, seq in zip(gap, swallowed_seqs, strict=True):
            e = by_id[cl]
            assert e.poss_dup and e.get(122) and e.seq == seq, str(e)
        for cl in before + after[1:]:
            assert not by_id[cl].poss_dup, str(by_id[cl])
        logout_and_check_sequence(qf, logon)


@versions
def test_cut_mid_stream_then_reconnect(
    version: Version, fixgw: Server, proxy: FixProxy, tmp_path: Path
) -> None:
    with _start(version, proxy.port, tmp_path / "qf") as qf:
        qf.start()
        first = qf.wait_logon(timeout=WAIT)
        assert proxy.accepted.get(timeout=WAIT) == 1
        warmup = _ids("W", 3)
        for cl in warmup:
            qf.send(new_order_single(cl))
        qf.inbox.wait_until(echoed(warmup), "the first echoes", WAIT)

        in_flight = _ids("C", 6)
        proxy.cut_on(in_flight[2])  # C1, C2 reach fixgw; the connection dies at C3
        for cl in in_flight:
            qf.send(new_order_single(cl))
        cut = proxy.cuts.get(timeout=WAIT)
        assert cut.get(11) == in_flight[2].encode()

        qf.inbox.wait_until(
            lambda h: qf.inbox.index_of("logout", first) is not None, "onLogout after the cut",
            WAIT,
        )
        lost = qf.inbox.index_of("logout", first)
        assert lost is not None
        again = qf.wait_logon(since=lost, timeout=WAIT)  # QuickFIX reconnects by itself
        assert proxy.accepted.get(timeout=WAIT) == 2
        relogon = _logon_index(qf)
        assert relogon > lost
        logons_sent = [e for e in qf.inbox.history[lost:again] if e.kind == "to_admin"
                       and e.msg_type == "A"]
        assert logons_sent and logons_sent[-1].seq == 1 and logons_sent[-1].get(141) == "Y", (
            qf.describe()
        )

        later = _ids("R", 5)
        for cl in later:
            qf.send(new_order_single(cl))
        history = qf.inbox.wait_until(echoed(later, relogon), "echoes after the reconnect", WAIT)
        assert_no_rejects(qf, fixgw)
        counts = Counter(e.get(11) for e in echoes(history))
        assert all(counts[cl] == 1 for cl in warmup + later), f"{counts}\n{qf.describe()}"
        assert all(counts[cl] <= 1 for cl in in_flight), f"{counts}\n{qf.describe()}"
        assert not any(counts[cl] for cl in in_flight[2:]), f"{counts}\n{qf.describe()}"
        assert not any(e.poss_dup for e in echoes(history, relogon)), qf.describe()
        logout_and_check_sequence(qf, relogon)
