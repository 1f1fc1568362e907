"""Property tests: the receive path survives any byte stream (STYLE 4).

(a) The codec and validation: FrameParser never raises; parse_message raises only GarbledMessage;
validate raises only SessionReject. (b) A logged-on Session fed random and mutated streams with
random clock moves: nothing escapes, and the sequence-number invariants hold after every step.
"""

from __future__ import annotations

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from gateway.fix.codec import (
    SOH,
    Frame,
    FrameParser,
    GarbledMessage,
    encode,
    split_fields,
    verify_frame,
)
from gateway.fix.dictionary import standard
from gateway.fix.session import (
    Close,
    Resend,
    ResetStore,
    Send,
    Session,
    SessionID,
    SessionNotReady,
    SessionSettings,
)
from gateway.fix.states import State
from gateway.fix.validation import SessionReject, ValidationSettings, parse_message, validate

from .pair import T0, Initiator, utc_timestamp

DD = standard("FIX.4.4")
PROPS = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
INTERESTING = [b"\x01", b"=", b"9", b"0", b"10=", b"9=", b"8=FIX.4.4\x01", b"35=", b"Y", b"\xff"]


def _samples() -> list[bytes]:
    c = Initiator()
    now = T0
    hdr = [(34, b"7"), (49, b"CLIENT"), (52, utc_timestamp(now)), (56, b"GW")]
    return [
        c.logon(now, 30),
        c.logon(now, 30, reset=True),
        c.new_order_single(now, b"ORD-1"),
        c.heartbeat(now, b"T1"),
        c.test_request(now),
        c.resend_request(now, 1, 0),
        c.sequence_reset(now, 9, gap_fill=True),
        c.logout(now, b"bye"),
        encode(b"FIX.4.4", [(35, b"E"), *hdr, (66, b"L"), (68, b"2"), (394, b"3"), (73, b"2"),
                            (11, b"A"), (67, b"1"), (453, b"1"), (448, b"P"), (447, b"D"),
                            (452, b"1"), (55, b"BTC/USDT"), (54, b"1"),
                            (11, b"B"), (67, b"2"), (55, b"ETH/USDT"), (54, b"2")]),
        encode(b"FIX.4.4", [(35, b"8"), *hdr, (6, b"97123.45"), (11, b"O"), (14, b"0.015"),
                            (17, b"E1"), (31, b"97123.45"), (32, b"0.015"), (37, b"1"),
                            (39, b"2"), (54, b"1"), (55, b"BTC/USDT"), (150, b"F"),
                            (151, b"0"), (60, utc_timestamp(now))]),
        encode(b"FIX.4.4", [(35, b"A"), *hdr, (95, b"3"), (96, b"a=b"), (98, b"0"),
                            (108, b"30")]),
        encode(b"FIX.4.4", [(35, b"0"), *hdr, (93, b"2"), (89, b"zz")]),
    ]


SAMPLES = _samples()


@st.composite
def mutate(draw: st.DrawFn, base: bytes) -> bytes:
    """``base`` with a few bytes flipped, inserted or deleted."""
    b = bytearray(base)
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from(["flip", "insert", "delete", "replace"]))
        i = draw(st.integers(0, len(b)))
        if kind == "flip" and i < len(b):
            b[i] ^= 1 << draw(st.integers(0, 7))
        elif kind == "insert":
            b[i:i] = draw(st.sampled_from(INTERESTING) | st.binary(min_size=1, max_size=3))
        elif kind == "delete":
            del b[i : i + draw(st.integers(1, 4))]
        elif kind == "replace" and i < len(b):
            b[i] = draw(st.sampled_from(b"0123456789=\x01AY"))
    return bytes(b)


def split(data: st.DataObject, stream: bytes) -> list[bytes]:
    points = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=6)))
    return [stream[a:b] for a, b in zip([0, *points], [*points, len(stream)], strict=True)]


def reframe(body: bytes) -> bytes:
    """Wrap a body with a correct BodyLength and CheckSum, so a mutation gets past them."""
    head = b"8=FIX.4.4\x019=%d\x01" % len(body)
    return head + body + b"10=%03d\x01" % (sum(head + body) % 256)


def _body(msg: bytes) -> bytes:
    start = msg.index(b"\x01", msg.index(b"\x019=") + 1) + 1
    return msg[start : msg.rindex(b"10=")]


mutated_inside = st.sampled_from(SAMPLES).map(_body).flatmap(mutate).map(reframe)

streams = st.one_of(
    st.binary(max_size=400),
    st.lists(st.sampled_from(INTERESTING) | st.binary(max_size=4), max_size=60).map(b"".join),
    st.lists(st.sampled_from(SAMPLES).flatmap(mutate), min_size=1, max_size=4).map(b"".join),
    st.lists(mutated_inside, min_size=1, max_size=4).map(b"".join),
)


# --------------------------------------------------------------------------------------------
# (a) codec and validation


@PROPS
@given(st.data(), streams, st.sampled_from([64, 300, 1 << 20]))
def test_codec_and_validation_raise_only_documented_errors(
    data: st.DataObject, stream: bytes, max_size: int
) -> None:
    parser = FrameParser(max_size)
    for chunk in split(data, stream):
        parser.feed(chunk)
        for ev in parser.frames():  # never raises
            if not isinstance(ev, Frame):
                continue
            _structure(ev.data)
    _structure(stream)  # parse_message on bytes that were never framed


def _structure(raw: bytes) -> None:
    verify_frame(raw)  # returns a reason, never raises
    try:
        split_fields(raw)
    except GarbledMessage:
        pass
    try:
        parse_message(raw, None, None, verify=False)
    except GarbledMessage:
        pass
    try:
        msg = parse_message(raw, DD, DD)
    except GarbledMessage:
        return
    assert verify_frame(raw) is None
    for vs in (ValidationSettings(), ValidationSettings.strict()):
        try:
            validate(msg, DD, DD, vs)
        except SessionReject as exc:
            assert isinstance(exc.reason, int) and isinstance(exc.tag, int)


@PROPS
@given(st.data(), st.lists(st.sampled_from(SAMPLES), min_size=1, max_size=5))
def test_any_split_of_valid_messages_gives_the_messages(
    data: st.DataObject, msgs: list[bytes]
) -> None:
    parser = FrameParser()
    out: list[bytes] = []
    for chunk in split(data, b"".join(msgs)):
        parser.feed(chunk)
        out.extend(ev.data for ev in parser.frames() if isinstance(ev, Frame))
    assert out == msgs
    assert parser.buffered == 0


# --------------------------------------------------------------------------------------------
# (b) the session


class Checked:
    """A Session and a driver that checks the invariants after every step."""

    def __init__(self, settings: SessionSettings) -> None:
        self.s = Session(settings, DD)
        self.client = Initiator()
        self.now = T0
        self.store: dict[int, bytes] = {}
        self.last_persisted = 0
        self.prev = (1, 1)
        self.closed = False
        self.s.connect(self.now)
        self.feed(self.client.logon(self.now, 30))
        assert self.s.state is State.LOGGED_ON

    def feed(self, data: bytes) -> None:
        self.s.receive_data(data, self.now)
        self.drain()

    def timer(self) -> None:
        self.s.on_timer(self.now)
        self.drain()

    def drain(self) -> None:
        """Carry out the actions in order, as the acceptor's driver does, checking each."""
        reset = False
        while True:
            actions = self.s.next_actions()
            if not actions:
                break
            for a in actions:
                event(type(a).__name__)
                if isinstance(a, ResetStore):
                    reset = True
                    self.last_persisted = 0
                    self.store.clear()
                elif isinstance(a, Send):
                    event("sent " + a.data.split(SOH)[2].decode("latin-1"))
                    assert not self.closed, f"Send after Close: {a}"
                    if a.persist:
                        assert a.seq == self.last_persisted + 1, (a.seq, self.last_persisted)
                        self.last_persisted = a.seq
                        self.store[a.seq] = a.data
                    assert verify_frame(a.data) is None
                elif isinstance(a, Resend):
                    assert 1 <= a.begin <= a.end <= self.last_persisted, (a, self.last_persisted)
                    self._serve(a)
                elif isinstance(a, Close):
                    self.closed = True
        self.s.events()
        self.check(reset)

    def _serve(self, a: Resend) -> None:
        r = self.s.resender(a.begin, a.end, self.now)
        stored = sorted((n, d) for n, d in self.store.items() if a.begin <= n <= a.end)
        out: list[bytes] = []
        for i in range(0, len(stored), 3):
            out += r.add(stored[i : i + 3])
        out += r.finish()
        for m in out:
            assert verify_frame(m) is None

    def check(self, reset: bool) -> None:
        s = self.s
        assert isinstance(s.state, State)
        assert s.next_sender >= 1 and s.next_target >= 1
        assert s.next_sender == self.last_persisted + 1
        cur = (s.next_sender, s.next_target)
        if not reset:
            assert cur[0] >= self.prev[0] and cur[1] >= self.prev[1], (self.prev, cur)
        self.prev = cur
        if self.closed:
            assert s.state is State.DISCONNECTED

    def reconnect(self) -> None:
        """What the driver does after a Close: report the lost transport, accept a new one."""
        self.s.connection_lost(self.now)
        self.drain()
        self.closed = False
        self.s.connect(self.now)
        self.drain()


SESSION_SETTINGS = st.builds(
    SessionSettings,
    st.just(SessionID("FIX.4.4", "GW", "CLIENT")),
    send_next_expected_msg_seq_num=st.booleans(),
    reset_on_logout=st.booleans(),
    reset_on_disconnect=st.booleans(),
    validation=st.sampled_from([ValidationSettings(), ValidationSettings.strict()]),
)


@st.composite
def client_message(draw: st.DrawFn, c: Initiator, now: float) -> bytes:
    """A message from the client with a MsgSeqNum near (or at) the one the acceptor expects."""
    offset = draw(st.sampled_from([0, 0, 0, 0, 1, 3, -1, -2]))
    c.next_seq = max(1, c.next_seq + offset)
    kind = draw(st.integers(0, 9))
    poss_dup = [(43, b"Y"), (122, utc_timestamp(now - 1))] if draw(st.booleans()) else []
    if kind == 0:
        return c.heartbeat(now)
    if kind == 1:
        return c.test_request(now)
    if kind == 2:
        return c.resend_request(now, draw(st.integers(0, 12)), draw(st.integers(0, 12)))
    if kind == 3:
        return c.sequence_reset(now, draw(st.integers(1, 15)), gap_fill=draw(st.booleans()))
    if kind == 4:
        return c.logout(now)
    if kind == 5:
        next_expected = draw(st.none() | st.integers(0, 12))
        return c.logon(now, 30, reset=draw(st.booleans()), next_expected=next_expected)
    if kind == 6:
        return c.new_order_single(now, side=draw(st.sampled_from([b"1", b"2", b"Z"])),
                                  header=poss_dup)
    return c.new_order_single(now, header=poss_dup)


@PROPS
@given(st.data())
def test_session_survives_random_streams_and_keeps_its_invariants(data: st.DataObject) -> None:
    d = Checked(data.draw(SESSION_SETTINGS))
    for _ in range(data.draw(st.integers(1, 12))):
        op = data.draw(st.sampled_from(["msgs", "msgs", "mutated", "noise", "time", "send"]))
        if op == "time":
            d.now += data.draw(st.floats(0, 100, allow_nan=False))
            d.timer()
            continue
        if op == "send":
            try:
                d.s.send(b"8", [(11, b"X"), (150, b"0")], d.now)
            except SessionNotReady:
                assert not d.s.is_logged_on
            d.drain()
            continue
        if d.s.state is State.DISCONNECTED and data.draw(st.booleans()):
            d.reconnect()
            d.feed(d.client.logon(d.now, 30, reset=data.draw(st.booleans())))
        if op == "noise":
            stream = data.draw(streams)
        else:
            msgs = [data.draw(client_message(d.client, d.now)) for _ in range(data.draw(
                st.integers(1, 4)))]
            stream = b"".join(msgs)
            if op == "mutated":
                stream = data.draw(mutate(stream))
        for chunk in split(data, stream):
            d.feed(chunk)
        if data.draw(st.booleans()):
            deadline = d.s.next_deadline()
            if deadline is not None and deadline >= d.now:
                d.now = deadline
                d.timer()
