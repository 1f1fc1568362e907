"""The benchmark initiator: one blocking TCP socket, hand-built NewOrderSingles, a window.

Lean on purpose (the client must not be what limits a run): no asyncio, no dictionary, no
validation; a message is a ``%``-formatted template plus a checksum, a reply is located with
``bytes.find``. Sends are batched (everything the window allows goes out in one ``sendall``).

``run_window`` keeps at most ``window`` orders unanswered: an order is answered when its
ExecutionReport says it is over (OrdStatus 2 filled, 4 canceled, 8 rejected, C expired) or, with
``answer="first"``, on its first ExecutionReport (resting orders). Latency is measured from the
``sendall`` that carried the order to the arrival of its FIRST ExecutionReport.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass, field

from .fixwire import Clock, frame, split, tag

T11, T35, T39, T58, T112, T150 = tag(11), tag(35), tag(39), tag(58), tag(112), tag(150)
TERMINAL = (b"2", b"4", b"8", b"C")


class ClientError(RuntimeError):
    pass


def _val(msg: bytes, t: bytes) -> bytes | None:
    i = msg.find(t)
    if i < 0:
        return None
    i += len(t)
    return msg[i : msg.index(b"\x01", i)]


@dataclass(frozen=True)
class OrderSpec:
    """Limit orders on ``symbol``, buy at ``buy_px`` / sell at ``sell_px``, alternating (or
    ``sides`` = b"1" buys only)."""

    symbol: bytes = b"BTC/USDT"
    qty: bytes = b"0.001"
    buy_px: bytes = b"98000"
    sell_px: bytes = b"96000"
    tif: bytes = b"0"
    sides: bytes = b"12"


@dataclass
class RunResult:
    count: int
    window: int
    elapsed: float
    latencies_ms: list[float] = field(repr=False)
    rejected: int = 0
    reports: int = 0
    steady_count: int = 0
    """Orders answered while the window was full: those read after the read that brought the
    ``window``-th answer, up to the read that brought the one ``window`` before the last (0
    when the run is too short to have them)."""
    steady_s: float = 0.0
    """The time between those two reads."""

    @property
    def rate(self) -> float:
        return self.count / self.elapsed

    def pct(self, p: float) -> float:
        v = sorted(self.latencies_ms)
        return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))]

    @classmethod
    def merged(cls, parts: list[RunResult], steady: bool = False) -> RunResult:
        """One result of runs made one after another on one connection (the slices of a
        run): their orders over the sum of their times, their latencies together. With
        ``steady``, the rate is that of their steady parts (:attr:`steady_count` over
        :attr:`steady_s`; ``elapsed`` is what all the orders would take at it): a slice fills
        its window at its start and drains it at its end, which at 100 in flight is a tenth
        of a slice of 1,000."""
        if not parts or len({r.window for r in parts}) != 1:
            raise ValueError("merged: runs of one window, at least one")
        count = sum(r.count for r in parts)
        elapsed = sum(r.elapsed for r in parts)
        steady_count = sum(r.steady_count for r in parts)
        steady_s = sum(r.steady_s for r in parts)
        if steady:
            if not steady_count or steady_s <= 0:
                raise ValueError("merged: no steady part (runs shorter than two windows)")
            elapsed = count * steady_s / steady_count
        return cls(count, parts[0].window, elapsed, [x for r in parts for x in r.latencies_ms],
                   sum(r.rejected for r in parts), sum(r.reports for r in parts),
                   steady_count, steady_s)


class Steady:
    """The steady part of a run of ``count`` orders at ``window`` in flight: from the read
    that brings the ``window``-th answer to the one that brings the answer ``window`` before
    the last (the window filling at the start and draining at the end left out), and the
    answers read in between -- counted read by read, so that a server answering in batches is
    counted as one answering one by one (the answers that come with the first read are before
    the part, those with the last one in it)."""

    def __init__(self, count: int, window: int) -> None:
        self.start, self.end = (window, count - window) if count > 2 * window else (0, 0)
        self.t0 = self.t1 = 0
        self.a0 = self.a1 = -1

    def read(self, answered: int, now_ns: int) -> None:
        """A read, after which ``answered`` orders are answered in all."""
        if not self.end:
            return
        if self.a0 < 0 and answered >= self.start:
            self.t0, self.a0 = now_ns, answered
        elif self.a0 >= 0 and self.a1 < 0 and answered >= self.end:
            self.t1, self.a1 = now_ns, answered

    def part(self) -> tuple[int, float]:
        """(answers, seconds) of the steady part; (0, 0.0) when there is none."""
        if self.a1 > self.a0 and self.t1 > self.t0:
            return self.a1 - self.a0, (self.t1 - self.t0) / 1e9
        return 0, 0.0


class LeanClient:
    def __init__(
        self, host: str, port: int, *, sender: bytes = b"CLIENT1", target: bytes = b"GATEWAY",
        begin: bytes = b"FIX.4.4", timeout: float = 15.0,
    ) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sender, self.target, self.begin = sender, target, begin
        self.seq = 1
        self.buf = bytearray()
        self.clock = Clock()
        self.timeout = timeout
        self._hdr = b"\x0149=" + sender + b"\x0152=%s\x0156=" + target + b"\x01"

    # ---- plumbing ------------------------------------------------------------------------------
    def _msg(self, msg_type: bytes, body: bytes = b"") -> bytes:
        b = b"35=" + msg_type + b"\x0134=%d" % self.seq + self._hdr % self.clock.now() + body
        self.seq += 1
        return frame(self.begin, b)

    def send(self, msg_type: bytes, body: bytes = b"") -> None:
        self.sock.sendall(self._msg(msg_type, body))

    def recv_msgs(self) -> list[bytes]:
        data = self.sock.recv(1 << 20)
        if not data:
            raise ClientError("the acceptor closed the connection")
        self.buf += data
        return split(self.buf)

    def _admin(self, m: bytes) -> None:
        mt = _val(m, T35)
        if mt == b"1":
            self.send(b"0", b"112=" + (_val(m, T112) or b"") + b"\x01")
        elif mt in (b"3", b"j", b"5"):
            raise ClientError("unexpected " + m.replace(b"\x01", b"|").decode(errors="replace"))

    def expect(self, msg_type: bytes, deadline_s: float = 15.0) -> bytes:
        end = time.monotonic() + deadline_s
        while time.monotonic() < end:
            for m in self.recv_msgs():
                if _val(m, T35) == msg_type:
                    return m
                if msg_type != b"5":
                    self._admin(m)
        raise ClientError(f"no 35={msg_type.decode()} within {deadline_s}s")

    def logon(self, heartbeat: int = 30) -> None:
        self.send(b"A", b"98=0\x01108=%d\x01" % heartbeat)
        self.expect(b"A")

    def logout(self) -> None:
        try:
            self.send(b"5")
            self.expect(b"5", 5.0)
        except (ClientError, OSError):
            pass
        self.sock.close()

    # ---- the load --------------------------------------------------------------------------------
    def run_window(
        self, spec: OrderSpec, count: int, window: int, prefix: str, *, answer: str = "fill",
        deadline_s: float = 600.0,
    ) -> RunResult:
        pre = prefix.encode()
        pfx = T11 + pre
        plen = len(pfx)
        sides = spec.sides
        tail = [
            b"\x0121=1\x0138=" + spec.qty + b"\x0140=2\x0144="
            + (spec.buy_px if s == ord("1") else spec.sell_px) + b"\x0154=" + bytes([s])
            + b"\x0155=" + spec.symbol + b"\x0159=" + spec.tif + b"\x0160="
            for s in sides
        ]
        nside = len(sides)
        hdr = self._hdr
        begin = self.begin
        now_ts = self.clock.now
        sent_ns = [0] * count
        first_ms: list[float | None] = [None] * count
        done = [False] * count
        sock = self.sock
        sent = answered = inflight = rejected = reports = 0
        first_only = answer == "first"
        perf = time.perf_counter_ns
        hard_end = time.monotonic() + deadline_s
        steady = Steady(count, window)
        t0 = perf()
        while answered < count:
            if inflight < window and sent < count:
                ts = now_ts()
                out = []
                n0 = sent
                while inflight < window and sent < count:
                    body = (b"35=D\x0134=%d" % self.seq + hdr % ts + b"11=" + pre
                            + b"%d" % sent + tail[sent % nside] + ts + b"\x01")
                    out.append(frame(begin, body))
                    self.seq += 1
                    sent += 1
                    inflight += 1
                t = perf()
                for k in range(n0, sent):
                    sent_ns[k] = t
                sock.sendall(b"".join(out))
            if time.monotonic() > hard_end:
                raise ClientError(f"deadline: {answered}/{count} answered after {deadline_s}s")
            data = sock.recv(1 << 20)
            if not data:
                raise ClientError("the acceptor closed the connection")
            now = perf()
            self.buf += data
            for m in split(self.buf):
                i = m.find(pfx)
                if i < 0 or m.find(b"\x0135=8\x01") < 0:
                    self._admin(m)
                    continue
                i += plen
                k = int(m[i : m.index(b"\x01", i)])
                reports += 1
                if first_ms[k] is None:
                    first_ms[k] = (now - sent_ns[k]) / 1e6
                if done[k]:
                    continue
                status = _val(m, T39)
                if first_only or status in TERMINAL:
                    done[k] = True
                    answered += 1
                    inflight -= 1
                    if status == b"8":
                        rejected += 1
                        if rejected <= 3:
                            print("  rejected:", (_val(m, T58) or b"").decode(errors="replace"))
            steady.read(answered, now)
        elapsed = (perf() - t0) / 1e9
        lat = [x for x in first_ms if x is not None]
        return RunResult(count, window, elapsed, lat, rejected, reports, *steady.part())
