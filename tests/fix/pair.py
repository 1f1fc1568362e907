"""An in-memory initiator wired to an acceptor :class:`Session` (STYLE 9, h11 ``ConnectionPair``).

The :class:`Initiator` is a deliberately small FIX client written for the tests only: it builds
messages with the codec's :func:`encode`, tracks its own MsgSeqNum, frames and splits what the
acceptor sends, and answers TestRequests. :class:`Pair` plays the acceptor's driver: it keeps a
dict-backed message store, carries out the session's actions in order (persist and deliver a
Send, serve a Resend from the store chunk by chunk, clear the store on ResetStore, record a
Close) and owns a fake clock that only the test advances. Nothing sleeps and nothing touches a
socket.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from gateway.fix.codec import Frame, FrameParser, encode, split_fields, verify_frame
from gateway.fix.dictionary import standard
from gateway.fix.session import (
    Action,
    AppMessage,
    Close,
    Event,
    Resend,
    ResetStore,
    Send,
    Session,
    SessionID,
    SessionSettings,
)

T0 = 1_700_000_000.0
"""The fake clock's start: 2023-11-14 22:13:20 UTC."""

Fields = list[tuple[int, bytes]]


def utc_timestamp(now: float) -> bytes:
    """UTCTimestamp with milliseconds, written independently of ``gateway.fix.fixtime``."""
    return datetime.fromtimestamp(now, UTC).strftime("%Y%m%d-%H:%M:%S.%f")[:-3].encode()


@dataclass(frozen=True, slots=True)
class Received:
    """One message the initiator read off the wire."""

    raw: bytes
    fields: Fields

    def get(self, tag: int) -> bytes | None:
        for t, v in self.fields:
            if t == tag:
                return v
        return None

    def __getitem__(self, tag: int) -> bytes:
        v = self.get(tag)
        if v is None:
            raise KeyError(tag)
        return v

    @property
    def msg_type(self) -> bytes:
        return self[35]

    @property
    def seq(self) -> int:
        return int(self[34])

    def __repr__(self) -> str:
        shown = self.raw.replace(b"\x01", b"|")
        return f"Received({shown!r})"


class Initiator:
    """The counterparty: sends what the test asks for and reads what the acceptor writes."""

    def __init__(
        self, begin_string: bytes = b"FIX.4.4", sender: bytes = b"CLIENT", target: bytes = b"GW"
    ) -> None:
        self.begin_string = begin_string
        self.sender = sender
        self.target = target
        self.next_seq = 1
        self.answer_test_requests = True
        self.received: list[Received] = []
        self._parser = FrameParser()
        self._outbox: list[bytes] = []

    # building -----------------------------------------------------------------------------
    def build(
        self,
        msg_type: bytes,
        body: Sequence[tuple[int, bytes]],
        now: float,
        *,
        seq: int | None = None,
        header: Iterable[tuple[int, bytes]] = (),
        sending_time: bytes | None = None,
    ) -> bytes:
        """One encoded message. Without ``seq`` it takes (and advances) the next MsgSeqNum."""
        if seq is None:
            seq = self.next_seq
            self.next_seq += 1
        hdr = [
            (34, b"%d" % seq),
            (49, self.sender),
            (52, sending_time if sending_time is not None else utc_timestamp(now)),
            (56, self.target),
            *header,
        ]
        hdr.sort(key=lambda f: f[0])
        return encode(self.begin_string, [(35, msg_type), *hdr, *body])

    def logon(
        self,
        now: float,
        heart_bt_int: int = 30,
        *,
        reset: bool = False,
        seq: int | None = None,
        next_expected: int | None = None,
    ) -> bytes:
        body = [(98, b"0"), (108, b"%d" % heart_bt_int)]
        if reset:
            body.append((141, b"Y"))
            if seq is None:
                self.next_seq = 1
        if next_expected is not None:
            body.append((789, b"%d" % next_expected))
        return self.build(b"A", body, now, seq=seq)

    def heartbeat(self, now: float, test_req_id: bytes | None = None) -> bytes:
        body = [(112, test_req_id)] if test_req_id is not None else []
        return self.build(b"0", body, now)

    def test_request(self, now: float, test_req_id: bytes = b"PING") -> bytes:
        return self.build(b"1", [(112, test_req_id)], now)

    def resend_request(self, now: float, begin: int, end: int = 0) -> bytes:
        return self.build(b"2", [(7, b"%d" % begin), (16, b"%d" % end)], now)

    def sequence_reset(
        self, now: float, new_seq: int, *, gap_fill: bool, seq: int | None = None
    ) -> bytes:
        body = [(36, b"%d" % new_seq)]
        header: list[tuple[int, bytes]] = []
        if gap_fill:
            body.append((123, b"Y"))
            header.append((43, b"Y"))
        return self.build(b"4", body, now, seq=seq, header=header)

    def logout(self, now: float, text: bytes | None = None) -> bytes:
        return self.build(b"5", [(58, text)] if text is not None else [], now)

    def new_order_single(
        self,
        now: float,
        cl_ord_id: bytes = b"ORD-1",
        *,
        side: bytes = b"1",
        seq: int | None = None,
        header: Iterable[tuple[int, bytes]] = (),
        sending_time: bytes | None = None,
    ) -> bytes:
        body = [
            (11, cl_ord_id),
            (38, b"0.015"),
            (40, b"2"),
            (44, b"97123.45"),
            (54, side),
            (55, b"BTC/USDT"),
            (59, b"1"),
            (60, utc_timestamp(now)),
        ]
        return self.build(
            b"D", body, now, seq=seq, header=header, sending_time=sending_time
        )

    # reading ------------------------------------------------------------------------------
    def receive(self, data: bytes, now: float) -> list[Received]:
        """Frame and split ``data``; every frame must be sound. TestRequests get a Heartbeat."""
        self._parser.feed(data)
        out: list[Received] = []
        for ev in self._parser.frames():
            assert isinstance(ev, Frame), f"acceptor wrote an unframeable stream: {ev}"
            problem = verify_frame(ev.data)
            assert problem is None, f"acceptor wrote a garbled message ({problem}): {ev.data!r}"
            msg = Received(ev.data, split_fields(ev.data))
            assert [t for t, _ in msg.fields[:3]] == [8, 9, 35], msg
            out.append(msg)
            if msg.msg_type == b"1" and self.answer_test_requests:
                self._outbox.append(self.heartbeat(now, msg.get(112)))
        self.received.extend(out)
        return out

    def take_outbox(self) -> list[bytes]:
        out, self._outbox = self._outbox, []
        return out


@dataclass(slots=True)
class Pair:
    """An initiator and an acceptor session, a store and a clock. ``now`` moves only on request."""

    session: Session
    client: Initiator = field(default_factory=Initiator)
    now: float = T0
    store: dict[int, bytes] = field(default_factory=dict)
    resend_chunk: int = 1000
    actions: list[Action] = field(default_factory=list)
    """Every action the session produced, in order."""
    events: list[Event] = field(default_factory=list)
    closed: str | None = None
    closed_at: float | None = None
    resend_chunks: list[int] = field(default_factory=list)
    """Sizes of the chunks fed to the Resender, for the chunking tests."""

    @classmethod
    def create(
        cls,
        settings: SessionSettings | None = None,
        *,
        now: float = T0,
        next_sender: int = 1,
        next_target: int = 1,
    ) -> Pair:
        if settings is None:
            settings = SessionSettings(SessionID("FIX.4.4", "GW", "CLIENT"))
        session = Session(
            settings, standard("FIX.4.4"), next_sender=next_sender, next_target=next_target
        )
        pair = cls(session, now=now)
        session.connect(now)
        return pair

    # driving ------------------------------------------------------------------------------
    def send(self, *messages: bytes) -> list[Received]:
        """Initiator -> acceptor, then carry out what follows. Returns what the client read."""
        before = len(self.client.received)
        self.session.receive_data(b"".join(messages), self.now)
        self.pump()
        return self.client.received[before:]

    def logon(self, heart_bt_int: int = 30) -> Received:
        """Log on (asserting the acceptor answered with a Logon) and forget the outputs."""
        out = self.send(self.client.logon(self.now, heart_bt_int))
        assert [m.msg_type for m in out] == [b"A"], out
        self.take_events()
        return out[0]

    def advance(self, seconds: float) -> list[Received]:
        """Move the clock, firing ``on_timer`` at every deadline passed, as a driver would."""
        before = len(self.client.received)
        target = self.now + seconds
        for _ in range(10_000):
            deadline = self.session.next_deadline()
            if deadline is None or deadline > target:
                break
            self.now = max(self.now, deadline)
            marker = (len(self.actions), deadline)
            self.session.on_timer(self.now)
            self.pump()
            if (len(self.actions), self.session.next_deadline()) == marker:
                raise AssertionError(f"on_timer({self.now}) made no progress at its own deadline")
        else:
            raise AssertionError("timer loop did not settle")
        self.now = target
        return self.client.received[before:]

    def pump(self) -> None:
        """Carry out the session's actions, and let the client answer, until both are quiet."""
        while True:
            actions = self.session.next_actions()
            self.events.extend(self.session.events())
            if not actions:
                replies = self.client.take_outbox()
                if not replies or self.closed is not None:
                    return
                self.session.receive_data(b"".join(replies), self.now)
                continue
            self.actions.extend(actions)
            for a in actions:
                if isinstance(a, Send):
                    if a.persist:
                        self.store[a.seq] = a.data
                    self._deliver([a.data])
                elif isinstance(a, Resend):
                    self._serve(a)
                elif isinstance(a, ResetStore):
                    self.store.clear()
                elif isinstance(a, Close) and self.closed is None:
                    self.closed, self.closed_at = a.reason, self.now

    def _serve(self, a: Resend) -> None:
        resender = self.session.resender(a.begin, a.end, self.now)
        stored = sorted((s, d) for s, d in self.store.items() if a.begin <= s <= a.end)
        for i in range(0, len(stored), self.resend_chunk):
            chunk = stored[i : i + self.resend_chunk]
            self.resend_chunks.append(len(chunk))
            self._deliver(resender.add(chunk))
        self._deliver(resender.finish())

    def _deliver(self, chunks: list[bytes]) -> None:
        if self.closed is None and chunks:
            self.client.receive(b"".join(chunks), self.now)

    # inspecting ---------------------------------------------------------------------------
    def take_actions(self) -> list[Action]:
        out, self.actions = self.actions, []
        return out

    def take_events(self) -> list[Event]:
        out, self.events = self.events, []
        return out

    def app_messages(self) -> list[AppMessage]:
        return [e for e in self.take_events() if isinstance(e, AppMessage)]
