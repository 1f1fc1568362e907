"""One session for both roles (h11's ``Connection(our_role)``): an initiator :class:`Session`
wired in memory to an acceptor :class:`Session`, each with its own dict store and the same fake
clock. Nothing sleeps and nothing touches a socket; what one writes the other reads.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from gateway.fix.codec import encode
from gateway.fix.dictionary import standard
from gateway.fix.fixtime import TimestampFormatter
from gateway.fix.session import (
    AppMessage,
    Close,
    Event,
    LoggedOn,
    LoggedOut,
    RejectReceived,
    Resend,
    ResetStore,
    Send,
    Session,
    SessionID,
    SessionNotReady,
    SessionSettings,
)
from gateway.fix.states import Role, State

T0 = 1_700_000_000.0


@dataclass
class End:
    """One side: its session, its store (for resend), what it was told and how it closed."""

    session: Session
    store: dict[int, bytes] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)
    written: list[bytes] = field(default_factory=list)
    closed: str | None = None

    def app_types(self) -> list[bytes]:
        return [e.message.msg_type for e in self.events if isinstance(e, AppMessage)]


def _session(role: Role, ours: str, theirs: str, begin: str = "FIX.4.4",
             **kw: object) -> Session:
    sid = SessionID(begin, ours, theirs)
    if begin == "FIXT.1.1":
        settings = SessionSettings(sid, role=role, default_appl_ver_id="FIX.5.0SP2",
                                   **kw)  # type: ignore[arg-type]
        apps = {"FIX.5.0SP2": standard("FIX.5.0SP2")}
        return Session(settings, standard("FIXT.1.1"), apps)
    settings = SessionSettings(sid, role=role, **kw)  # type: ignore[arg-type]
    return Session(settings, standard(begin))


class Link:
    """A transport between the two ends; ``drop`` loses the next messages one end writes."""

    def __init__(self, initiator: Session, acceptor: Session) -> None:
        self.now = T0
        self.ini = End(initiator)
        self.acc = End(acceptor)
        self.up = False
        self.drop: dict[int, int] = {}

    def connect(self) -> None:
        self.up = True
        self.ini.closed = self.acc.closed = None
        self.acc.session.connect(self.now)
        self.ini.session.connect(self.now)

    def logon(self, **kw: object) -> None:
        self.ini.session.logon(self.now, **kw)  # type: ignore[arg-type]
        self.pump()

    def advance(self, seconds: float) -> None:
        self.now += seconds
        for end in (self.ini, self.acc):
            deadline = end.session.next_deadline()
            if deadline is not None and deadline <= self.now:
                end.session.on_timer(self.now)
        self.pump()

    def pump(self) -> None:
        """Carry out both sessions' actions until neither has any left."""
        busy = True
        while busy:
            busy = False
            for end, other in ((self.ini, self.acc), (self.acc, self.ini)):
                actions = end.session.next_actions()
                busy = busy or bool(actions)
                for action in actions:
                    self._act(end, other, action)
                end.events.extend(end.session.events())

    def _act(self, end: End, other: End, action: object) -> None:
        if isinstance(action, Send):
            if action.persist:
                end.store[action.seq] = action.data
            if action.write:
                self._write(end, other, action.data)
        elif isinstance(action, Resend):
            r = end.session.resender(action.begin, action.end, self.now)
            stored = sorted((s, d) for s, d in end.store.items()
                            if action.begin <= s <= action.end)
            for data in [*r.add(stored), *r.finish()]:
                self._write(end, other, data)
        elif isinstance(action, ResetStore):
            end.store.clear()
        elif isinstance(action, Close):
            end.closed = action.reason
            if self.up:
                self.up = False
                other.session.connection_lost(self.now)

    def _write(self, end: End, other: End, data: bytes) -> None:
        if not self.up:
            return
        end.written.append(data)
        key = id(end)
        if self.drop.get(key, 0) > 0:
            self.drop[key] -= 1
            return
        other.session.receive_data(data, self.now)

    def lose_next(self, end: End, n: int = 1) -> None:
        self.drop[id(end)] = n


def _link(begin: str = "FIX.4.4", ini: dict[str, object] | None = None,
          acc: dict[str, object] | None = None) -> Link:
    return Link(_session(Role.INITIATOR, "CLIENT", "GW", begin, **(ini or {})),
                _session(Role.ACCEPTOR, "GW", "CLIENT", begin, **(acc or {})))


def _order(cl: bytes) -> list[tuple[int, bytes]]:
    return [(11, cl), (21, b"1"), (38, b"1"), (40, b"2"), (44, b"100"), (54, b"1"),
            (55, b"BTC/USDT"), (60, b"20231114-22:13:20.000")]


def _report(cl: bytes) -> list[tuple[int, bytes]]:
    return [(6, b"0"), (11, cl), (14, b"0"), (17, b"E-" + cl), (37, b"O-" + cl), (39, b"0"),
            (54, b"1"), (55, b"BTC/USDT"), (150, b"0"), (151, b"1")]


@pytest.mark.parametrize("begin", ["FIX.4.4", "FIXT.1.1"])
def test_the_initiator_logs_on_and_both_sides_exchange_messages(begin: str) -> None:
    link = _link(begin, ini={"heartbeat_interval": 20})
    link.connect()
    assert link.ini.session.state is State.AWAITING_LOGON
    link.logon()
    for end in (link.ini, link.acc):
        assert end.session.state is State.LOGGED_ON
        assert [e for e in end.events if isinstance(e, LoggedOn)] == [LoggedOn(False)]
        assert (end.session.next_sender, end.session.next_target) == (2, 2)
    assert link.acc.session.heart_bt_int == 20 == link.ini.session.heart_bt_int
    logon = link.ini.written[0]
    assert b"\x0135=A\x01" in logon and b"\x01108=20\x01" in logon
    if begin == "FIXT.1.1":
        assert b"\x011137=9\x01" in logon

    link.ini.session.send(b"D", _order(b"C1"), link.now)
    link.pump()
    link.acc.session.send(b"8", _report(b"C1"), link.now)
    link.pump()
    assert link.acc.app_types() == [b"D"]
    assert link.ini.app_types() == [b"8"]


def test_an_acceptor_does_not_send_a_logon() -> None:
    link = _link()
    link.connect()
    with pytest.raises(SessionNotReady):
        link.acc.session.logon(link.now)


def test_a_message_the_initiator_missed_is_asked_for_and_resent() -> None:
    link = _link()
    link.connect()
    link.logon()
    link.lose_next(link.acc)
    link.acc.session.send(b"8", _report(b"A"), link.now)
    link.acc.session.send(b"8", _report(b"B"), link.now)
    link.pump()
    # the second report showed the gap: ResendRequest, the first resent (PossDup), then the
    # second taken from the queue
    assert any(b"\x0135=2\x01" in w for w in link.ini.written)
    reports = [e.message for e in link.ini.events if isinstance(e, AppMessage)]
    assert [m.get(11) for m in reports] == [b"A", b"B"]
    assert reports[0].header.get(43) == b"Y"
    assert link.ini.session.next_target == link.acc.session.next_sender


def test_what_the_acceptor_missed_is_gap_filled_by_the_initiator() -> None:
    """An initiator that reconnects with a higher MsgSeqNum than the acceptor expects (its
    messages were lost): the acceptor asks for them; admin messages are gap-filled and the
    application message resent from the initiator's store."""
    link = _link()
    link.connect()
    link.logon()
    link.lose_next(link.ini, 2)
    link.ini.session.send(b"D", _order(b"LOST"), link.now)
    link.advance(30)  # a Heartbeat, lost too
    link.ini.session.send(b"D", _order(b"SEEN"), link.now)
    link.pump()
    assert [m.get(11) for e in link.acc.events if isinstance(e, AppMessage)
            for m in [e.message]] == [b"LOST", b"SEEN"]
    assert link.acc.session.next_target == link.ini.session.next_sender


def test_a_reconnect_continues_the_sequence_and_recovers_the_gap() -> None:
    link = _link()
    link.connect()
    link.logon()
    link.ini.session.logout(link.now, "bye")
    link.pump()
    assert link.ini.session.state is State.DISCONNECTED
    assert link.ini.session.logout_initiator == "local"
    assert link.acc.session.logout_initiator == "counterparty"
    assert link.acc.session.logout_text == "bye"
    # while the initiator is away, the acceptor's report is stored but never written
    link.acc.session.connect(link.now)
    link.acc.store[link.acc.session.next_sender] = b""  # a number used by nothing written
    sent_while_away = link.acc.session.next_sender
    link.acc.session.next_sender += 1
    link.up = True
    link.ini.session.connect(link.now)
    link.logon()
    assert link.ini.session.is_logged_on and link.acc.session.is_logged_on
    # the initiator saw the acceptor's Logon too high, asked, and was gap-filled over it
    assert link.ini.session.next_target == link.acc.session.next_sender
    assert sent_while_away < link.ini.session.next_target


def test_a_logon_with_reset_starts_both_at_one() -> None:
    link = _link()
    link.connect()
    link.logon()
    link.ini.session.logout(link.now)
    link.pump()
    link.connect()
    link.logon(reset=True)
    assert b"\x01141=Y\x01" in link.ini.written[-1] or any(
        b"\x01141=Y\x01" in w for w in link.ini.written)
    for end in (link.ini, link.acc):
        assert end.session.is_logged_on
        assert (end.session.next_sender, end.session.next_target) == (2, 2)


def test_a_refused_logon_is_answered_and_closes_with_the_reason() -> None:
    link = _link()
    link.connect()
    link.ini.session.next_sender = 1
    link.acc.session.next_target = 5  # the initiator's numbers are behind: too low
    link.logon()
    assert link.ini.session.state is State.DISCONNECTED
    assert link.ini.session.logout_text is not None
    assert "MsgSeqNum too low" in link.ini.session.logout_text
    assert not any(isinstance(e, LoggedOn) for e in link.ini.events)
    # it answered the Logout (stored; the acceptor had closed before it could be written)
    assert any(b"\x0135=5\x01" in w for w in link.ini.store.values())


def test_no_answer_to_the_logon_times_out() -> None:
    link = _link(ini={"logon_timeout": 5.0})
    link.connect()
    link.ini.session.logon(link.now)
    link.up = False  # the Logon is lost
    link.ini.session.next_actions()
    link.up = True
    link.advance(5.0)
    assert link.ini.closed == "no Logon received within the logon timeout"


def test_a_logon_before_ours_is_not_an_answer() -> None:
    ini = _session(Role.INITIATOR, "CLIENT", "GW")
    impostor = _session(Role.INITIATOR, "GW", "CLIENT")
    ini.connect(T0)
    impostor.connect(T0)
    impostor.logon(T0)
    (send,) = impostor.next_actions()
    assert isinstance(send, Send)
    ini.receive_data(send.data, T0)
    assert ini.next_actions() == [Close("Received logon response before sending request")]


def test_both_sides_keep_the_line_alive_at_the_initiators_interval() -> None:
    link = _link(ini={"heartbeat_interval": 10})
    link.connect()
    link.logon()
    link.advance(10)
    assert any(b"\x0135=0\x01" in w for w in link.ini.written)
    assert any(b"\x0135=0\x01" in w for w in link.acc.written)
    for _ in range(6):
        link.advance(10)
    assert link.ini.session.is_logged_on and link.acc.session.is_logged_on


def test_silence_from_the_acceptor_makes_the_initiator_test_then_drop() -> None:
    link = _link(ini={"heartbeat_interval": 10})
    link.connect()
    link.logon()
    link.lose_next(link.acc, 1000)
    link.advance(12)
    assert any(b"\x0135=1\x01" in w for w in link.ini.written)  # TestRequest
    link.advance(12)
    assert link.ini.closed == "Timed out waiting for heartbeat"
    assert any(isinstance(e, LoggedOut) for e in link.ini.events)


def test_a_session_reject_reaches_the_initiator_as_an_event() -> None:
    link = _link()
    link.connect()
    link.logon()
    body = [(t, v) for t, v in _order(b"NOID") if t != 11]  # no ClOrdID
    seq = link.ini.session.send(b"D", body, link.now)
    link.pump()
    (rej,) = [e.message for e in link.ini.events if isinstance(e, RejectReceived)]
    assert rej.get(45) == b"%d" % seq and rej.get(371) == b"11"


def test_next_expected_msg_seq_num_recovers_what_the_initiator_missed() -> None:
    both = {"send_next_expected_msg_seq_num": True}
    link = _link(ini=both, acc=both)
    link.connect()
    link.logon()
    link.lose_next(link.acc)
    link.acc.session.send(b"8", _report(b"MISSED"), link.now)
    link.pump()
    link.ini.session.connection_lost(link.now)
    link.acc.session.connection_lost(link.now)
    link.up = False
    link.connect()
    link.logon()
    # the initiator's Logon said what it expects (789); the acceptor resent the report right
    # after its Logon; the report reached the application once
    logons = [w for w in link.ini.written if b"\x0135=A\x01" in w]
    assert b"\x01789=2\x01" in logons[1]  # the acceptor's Logon (1) seen, its report (2) not
    after_logon = link.acc.written[[b"\x0135=A\x01" in w for w in link.acc.written].index(
        True, 1) + 1]
    assert b"\x0135=8\x01" in after_logon and b"\x0143=Y\x01" in after_logon
    reports = [e.message.get(11) for e in link.ini.events if isinstance(e, AppMessage)]
    assert reports == [b"MISSED"]
    assert link.ini.session.next_target == link.acc.session.next_sender


def _logon_from_gw(seq: int, now: float, extra: list[tuple[int, bytes]]) -> bytes:
    ts = TimestampFormatter(3).format(now)
    return encode(b"FIX.4.4", [(35, b"A"), (34, b"%d" % seq), (49, b"GW"), (52, ts),
                               (56, b"CLIENT"), (98, b"0"), (108, b"30"), *extra])


def test_a_logon_refused_while_its_credentials_are_checked() -> None:
    """The store goes down, an operator ends the session or the rate limit trips while an
    acceptor checks a Logon's credentials: refused with a Logout, no StepError."""
    link = _link(acc={"require_authentication": True})
    link.connect()
    link.logon()
    acc = link.acc.session
    assert acc.state is State.AUTHENTICATING
    acc.refuse(link.now, "store unavailable: boom")
    link.pump()
    assert acc.state is State.DISCONNECTED
    assert link.ini.session.logout_text == "store unavailable: boom"


def test_the_initiator_answers_a_reset_logon_it_did_not_ask_for() -> None:
    """QuickFIX's nextLogon: a Logon with ResetSeqNumFlag=Y the initiator did not send is
    answered with its own Logon (141=Y, MsgSeqNum 1)."""
    ini = _session(Role.INITIATOR, "CLIENT", "GW")
    ini.next_sender = ini.next_target = 5
    ini.connect(T0)
    ini.logon(T0)
    ini.next_actions()
    ini.receive_frame(_logon_from_gw(1, T0, [(141, b"Y")]), T0)
    assert ini.state is State.LOGGED_ON
    sent = [a.data for a in ini.next_actions() if isinstance(a, Send)]
    assert any(b"\x0135=A\x01" in d and b"\x01141=Y\x01" in d and b"\x0134=1\x01" in d
               for d in sent), sent
    assert (ini.next_sender, ini.next_target) == (2, 2)


def test_a_reset_logon_before_ours_is_a_request() -> None:
    ini = _session(Role.INITIATOR, "CLIENT", "GW")
    ini.connect(T0)
    ini.receive_frame(_logon_from_gw(1, T0, [(141, b"Y")]), T0)
    assert ini.state is State.LOGGED_ON
    assert any(isinstance(a, Send) and b"\x0135=A\x01" in a.data for a in ini.next_actions())
