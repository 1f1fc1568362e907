"""The session state machine driven through an in-memory initiator/acceptor pair (STYLE 9).

Time is an argument (STYLE 2): every timing rule is exercised by moving the pair's fake clock.
"""

from __future__ import annotations

import pytest

from gateway.fix.codec import split_fields
from gateway.fix.dictionary import standard
from gateway.fix.session import (
    AppMessage,
    Close,
    LoggedOn,
    LoggedOut,
    Resend,
    ResetStore,
    Send,
    Session,
    SessionID,
    SessionSettings,
)
from gateway.fix.states import State

from .pair import T0, Initiator, Pair, Received, utc_timestamp


@pytest.fixture
def pair() -> Pair:
    p = Pair.create()
    p.logon(heart_bt_int=30)
    return p


def state(p: Pair) -> State:
    return p.session.state


def types(msgs: list[Received]) -> list[bytes]:
    return [m.msg_type for m in msgs]


def covered(resent: list[Received]) -> list[int]:
    """The sequence numbers a resend answer accounts for, in the order it accounts for them."""
    out: list[int] = []
    for m in resent:
        if m.msg_type == b"4":
            assert m.get(123) == b"Y", m
            out.extend(range(m.seq, int(m[36])))
        else:
            out.append(m.seq)
    return out


# --------------------------------------------------------------------------------------------
# logon and logout


def test_logon_and_logout_initiated_by_the_client() -> None:
    p = Pair.create()
    out = p.send(p.client.logon(p.now, heart_bt_int=30))
    assert types(out) == [b"A"]
    reply = out[0]
    assert (reply.seq, reply[49], reply[56], reply[98], reply[108]) == (
        1, b"GW", b"CLIENT", b"0", b"30"
    )
    assert reply.get(141) is None
    assert p.take_events().count(LoggedOn(reset=False)) == 1
    assert state(p) is State.LOGGED_ON
    assert (p.session.next_sender, p.session.next_target) == (2, 2)

    out = p.send(p.client.logout(p.now))
    assert types(out) == [b"5"]
    assert out[0].seq == 2
    assert p.closed == "logout"
    assert any(isinstance(e, LoggedOut) for e in p.take_events())
    assert state(p) is State.DISCONNECTED
    # the Logout answer is sent (and persisted) before the connection is closed
    kinds = [type(a) for a in p.actions]
    assert kinds.index(Close) > max(i for i, k in enumerate(kinds) if k is Send)


def test_logout_initiated_by_the_acceptor(pair: Pair) -> None:
    pair.session.logout(pair.now, "end of day")
    pair.pump()
    assert types(pair.client.received[-1:]) == [b"5"]
    assert pair.client.received[-1][58] == b"end of day"
    assert state(pair) is State.LOGOUT_SENT
    assert pair.closed is None
    pair.send(pair.client.logout(pair.now))
    assert pair.closed == "logout"
    assert types(pair.client.received[-1:]) == [b"5"]  # no second Logout in answer


# --------------------------------------------------------------------------------------------
# heartbeats, TestRequests and silence


def test_idle_heart_bt_int_sends_a_heartbeat(pair: Pair) -> None:
    assert pair.advance(29.9) == []
    out = pair.advance(0.1)
    assert types(out) == [b"0"]
    assert out[0].get(112) is None
    assert out[0].seq == 2
    assert out[0][52] == utc_timestamp(T0 + 30)
    assert pair.closed is None


def test_traffic_from_the_client_postpones_the_test_request(pair: Pair) -> None:
    pair.advance(20)
    pair.send(pair.client.heartbeat(pair.now))
    out = pair.advance(35.9)  # 30 s after our Logon: a Heartbeat, no TestRequest yet
    assert types(out) == [b"0"]
    assert types(pair.advance(0.2)) == [b"1"]  # 36 s after the client's Heartbeat


def test_silence_sends_test_request_then_closes(pair: Pair) -> None:
    pair.client.answer_test_requests = False
    assert types(pair.advance(35.9)) == [b"0"]  # the idle Heartbeat at 30 s only
    out = pair.advance(0.1)
    assert types(out) == [b"1"]  # 1.2 x HeartBtInt
    assert out[0][112] == b"TEST"
    assert pair.now == T0 + 36
    assert pair.advance(35.9) == [] and pair.closed is None
    pair.advance(0.1)  # 2.4 x HeartBtInt
    assert pair.closed == "Timed out waiting for heartbeat"
    assert pair.closed_at == T0 + 72
    assert any(isinstance(e, LoggedOut) for e in pair.take_events())


def test_answered_test_request_keeps_the_session_up(pair: Pair) -> None:
    out = pair.advance(36)
    assert types(out) == [b"0", b"1"]
    # the client answered with a Heartbeat carrying the TestReqID
    assert pair.session.next_target == 3
    pair.advance(200)
    assert pair.closed is None


def test_test_request_from_the_client_is_answered(pair: Pair) -> None:
    out = pair.send(pair.client.test_request(pair.now, b"abc"))
    assert types(out) == [b"0"]
    assert out[0][112] == b"abc"


def test_timer_fires_at_its_own_deadline() -> None:
    """``on_timer(next_deadline())`` must do what the deadline is for.

    With HeartBtInt=7 the deadlines are last_received + 8.4 and + 16.8; added to an epoch time
    they round to a float that is a few hundred nanoseconds short, and on_timer compares
    ``now - last_received >= 16.8`` again: nothing happens at the announced deadline, and a
    driver that trusts ``next_deadline`` loops on it.
    """
    s = Session(SessionSettings(SessionID("FIX.4.4", "GW", "CLIENT")), standard("FIX.4.4"))
    client = Initiator()
    s.connect(T0)
    s.receive_data(client.logon(T0, heart_bt_int=7), T0)
    s.next_actions()
    seen: list[tuple[float, str]] = []
    for _ in range(3):
        deadline = s.next_deadline()
        assert deadline is not None
        s.on_timer(deadline)
        acts = s.next_actions()
        assert acts, f"on_timer did nothing at its deadline T0+{deadline - T0!r} after {seen}"
        seen.append((deadline - T0, repr(acts[0])[:60]))
    assert isinstance(acts[0], Close)


# --------------------------------------------------------------------------------------------
# sequence numbers


def test_seq_too_high_sends_resend_request_and_processes_the_queue_after_gap_fill(
    pair: Pair,
) -> None:
    c = pair.client
    c.next_seq = 5  # 2, 3 and 4 are "lost"
    out = pair.send(c.new_order_single(pair.now, b"ORD-5"))
    assert types(out) == [b"2"]
    assert (out[0][7], out[0][16]) == (b"2", b"0")
    assert pair.app_messages() == []
    assert pair.session.next_target == 2

    # the client gap-fills 2..4: the queued order 5 is then processed
    out = pair.send(c.sequence_reset(pair.now, 5, gap_fill=True, seq=2))
    apps = pair.app_messages()
    assert [a.message.get(11) for a in apps] == [b"ORD-5"]
    assert pair.session.next_target == 6
    assert out == []


def test_seq_too_high_recovered_by_resent_messages_in_order(pair: Pair) -> None:
    c = pair.client
    lost = [c.new_order_single(pair.now, b"ORD-%d" % i) for i in (2, 3)]
    pair.send(c.new_order_single(pair.now, b"ORD-4"))
    assert types(pair.client.received[-1:]) == [b"2"]
    assert pair.app_messages() == []
    pair.advance(1)
    resent = [
        c.new_order_single(
            pair.now, b"ORD-%d" % seq, seq=seq,
            header=[(43, b"Y"), (122, utc_timestamp(T0))],
        )
        for seq in (2, 3)
    ]
    assert lost  # the originals were never delivered
    pair.send(*resent)
    assert [a.message.get(11) for a in pair.app_messages()] == [b"ORD-2", b"ORD-3", b"ORD-4"]
    assert pair.session.next_target == 5


def test_seq_too_low_without_poss_dup_logs_out_and_closes(pair: Pair) -> None:
    c = pair.client
    pair.send(c.heartbeat(pair.now))  # seq 2
    out = pair.send(c.new_order_single(pair.now, seq=1))
    text = "MsgSeqNum too low, expecting 3 but received 1"
    assert types(out) == [b"5"]
    assert out[0][58] == text.encode()
    assert pair.closed == text
    kinds = [type(a) for a in pair.actions]
    assert kinds[-2:] == [Send, Close]
    assert pair.app_messages() == []


def test_poss_dup_too_low_is_ignored(pair: Pair) -> None:
    c = pair.client
    pair.send(c.new_order_single(pair.now, b"ORD-2"))
    assert len(pair.app_messages()) == 1
    pair.advance(1)
    before = len(pair.actions)
    out = pair.send(
        c.new_order_single(pair.now, b"ORD-2", seq=2, header=[(43, b"Y"), (122, utc_timestamp(T0))])
    )
    assert out == []
    assert pair.actions[before:] == []
    assert pair.app_messages() == []
    assert pair.closed is None
    assert pair.session.next_target == 3


# --------------------------------------------------------------------------------------------
# serving ResendRequests


def _execution_report(i: int) -> list[tuple[int, bytes]]:
    return [
        (6, b"0"), (11, b"ORD-%d" % i), (14, b"0"), (17, b"EXEC-%d" % i), (37, b"%d" % i),
        (39, b"0"), (54, b"1"), (55, b"BTC/USDT"), (150, b"0"), (151, b"0.015"),
    ]


def test_resend_request_resends_app_messages_and_gap_fills_admin(pair: Pair) -> None:
    s = pair.session
    original_times: dict[int, bytes] = {}
    pair.advance(1)
    for i in range(3):  # seq 2, 3, 4
        seq = s.send(b"8", _execution_report(i), pair.now)
        original_times[seq] = utc_timestamp(pair.now)
    pair.pump()
    pair.send(pair.client.heartbeat(pair.now))  # no TestRequest within the next 30 s
    pair.advance(30)  # Heartbeat, seq 5
    seq = s.send(b"8", _execution_report(9), pair.now)  # seq 6
    original_times[seq] = utc_timestamp(pair.now)
    pair.pump()
    assert s.next_sender == 7
    pair.advance(5)
    expected = s.next_target

    out = pair.send(pair.client.resend_request(pair.now, 1, 0))
    assert s.next_target == expected + 1  # the ResendRequest itself is consumed
    assert [a for a in pair.actions if isinstance(a, Resend)] == [Resend(1, 6)]
    # Logon(1) gap-filled to 2; 2, 3, 4 resent; Heartbeat(5) gap-filled to 6; 6 resent
    assert [(m.msg_type, m.seq) for m in out] == [
        (b"4", 1), (b"8", 2), (b"8", 3), (b"8", 4), (b"4", 5), (b"8", 6),
    ]
    assert [int(m[36]) for m in out if m.msg_type == b"4"] == [2, 6]
    now = utc_timestamp(pair.now)
    for m in out:
        assert m[43] == b"Y"
        assert m[52] == now
        if m.msg_type == b"8":
            assert m[122] == original_times[m.seq]
            assert m[122] != m[52]
            assert m[17] == b"EXEC-%d" % (m.seq - 2 if m.seq < 6 else 9)
    assert covered(out) == [1, 2, 3, 4, 5, 6]
    assert s.next_sender == 7  # resending consumes no sequence numbers


def test_resend_of_numbers_missing_from_the_store_is_gap_filled(pair: Pair) -> None:
    s = pair.session
    for i in range(4):  # 2..5
        s.send(b"8", _execution_report(i), pair.now)
    pair.pump()
    del pair.store[3], pair.store[5]
    out = pair.send(pair.client.resend_request(pair.now, 2, 5))
    assert [(m.msg_type, m.seq) for m in out] == [(b"8", 2), (b"4", 3), (b"8", 4), (b"4", 5)]
    assert covered(out) == [2, 3, 4, 5]


def test_resend_of_five_thousand_messages_served_in_chunks_of_a_thousand(pair: Pair) -> None:
    s = pair.session
    for i in range(5000):  # seq 2 .. 5001
        if i in (998, 999):  # 1000 and 1001: admin messages across the first chunk boundary
            pair.advance(30)
        else:
            s.send(b"8", _execution_report(i), pair.now)
            pair.pump()
    last = s.next_sender - 1
    assert last == 5001
    # a Heartbeat and then a TestRequest (the client is silent)
    assert [pair.store[n].split(b"\x01")[2] for n in (1000, 1001)] == [b"35=0", b"35=1"]

    pair.advance(1)
    out = pair.send(pair.client.resend_request(pair.now, 1, 0))
    assert pair.resend_chunks == [1000] * 5 + [1]
    assert covered(out) == list(range(1, last + 1))  # in order, nothing missing, no repeats
    seqs = [m.seq for m in out]
    assert seqs == sorted(seqs)
    fills = [(m.seq, int(m[36])) for m in out if m.msg_type == b"4"]
    assert fills == [(1, 2), (1000, 1002)]
    apps = [m for m in out if m.msg_type == b"8"]
    assert len(apps) == 4998
    assert all(m[43] == b"Y" and m.get(122) is not None for m in apps)


# --------------------------------------------------------------------------------------------
# SequenceReset


def test_sequence_reset_reset_mode_moves_next_target(pair: Pair) -> None:
    c = pair.client
    # reset mode ignores the message's own MsgSeqNum
    pair.send(c.sequence_reset(pair.now, 10, gap_fill=False, seq=99))
    assert pair.session.next_target == 10
    c.next_seq = 10
    pair.send(c.new_order_single(pair.now, b"ORD-10"))
    assert [a.message.get(11) for a in pair.app_messages()] == [b"ORD-10"]
    assert pair.session.next_target == 11
    assert pair.closed is None


def test_sequence_reset_reset_mode_backwards_is_rejected(pair: Pair) -> None:
    c = pair.client
    c.next_seq = 5
    pair.send(c.sequence_reset(pair.now, 10, gap_fill=False, seq=2))
    out = pair.send(c.sequence_reset(pair.now, 4, gap_fill=False, seq=10))
    assert types(out) == [b"3"]
    assert out[0][373] == b"5"
    assert pair.session.next_target == 10


def test_sequence_reset_gap_fill_mode(pair: Pair) -> None:
    c = pair.client
    out = pair.send(c.sequence_reset(pair.now, 7, gap_fill=True))  # seq 2
    assert out == []
    assert pair.session.next_target == 7
    c.next_seq = 7
    pair.send(c.heartbeat(pair.now))
    assert pair.session.next_target == 8


def test_sequence_reset_gap_fill_with_seq_too_high_asks_for_a_resend(pair: Pair) -> None:
    c = pair.client
    out = pair.send(c.sequence_reset(pair.now, 9, gap_fill=True, seq=4))
    assert types(out) == [b"2"]
    assert out[0][7] == b"2"
    assert pair.session.next_target == 2


# --------------------------------------------------------------------------------------------
# Logon with ResetSeqNumFlag


def test_logon_with_reset_seq_num_flag_resets_before_answering() -> None:
    p = Pair.create(next_sender=41, next_target=17)
    p.store.update({n: b"old" for n in range(1, 41)})
    out = p.send(p.client.logon(p.now, reset=True))
    assert types(out) == [b"A"]
    assert (out[0].seq, out[0][141]) == (1, b"Y")
    kinds = [type(a) for a in p.actions]
    assert kinds[:2] == [ResetStore, Send]
    assert sorted(p.store) == [1]
    assert LoggedOn(reset=True) in p.take_events()
    assert (p.session.next_sender, p.session.next_target) == (2, 2)


def test_logon_with_reset_while_logged_on(pair: Pair) -> None:
    c = pair.client
    for i in range(3):
        pair.send(c.new_order_single(pair.now, b"ORD-%d" % i))
    pair.session.send(b"8", _execution_report(0), pair.now)
    pair.pump()
    pair.take_actions()
    out = pair.send(c.logon(pair.now, reset=True))
    assert types(out) == [b"A"]
    assert (out[0].seq, out[0][141]) == (1, b"Y")
    actions = pair.take_actions()
    assert isinstance(actions[0], ResetStore)
    assert isinstance(actions[1], Send) and actions[1].seq == 1
    assert (pair.session.next_sender, pair.session.next_target) == (2, 2)
    assert pair.closed is None


# --------------------------------------------------------------------------------------------
# timeouts and the first message


def test_logout_timeout(pair: Pair) -> None:
    pair.session.logout(pair.now)
    pair.pump()
    assert pair.advance(1.99) == [] and pair.closed is None
    pair.advance(0.01)
    assert pair.closed == "Timed out waiting for logout response"
    assert pair.closed_at == T0 + 2


def test_logon_timeout() -> None:
    p = Pair.create()
    assert p.session.next_deadline() == T0 + 10
    p.advance(9.99)
    assert p.closed is None
    p.advance(0.01)
    assert p.closed == "no Logon received within the logon timeout"
    assert p.client.received == []


def test_first_message_not_a_logon_closes() -> None:
    p = Pair.create()
    out = p.send(p.client.heartbeat(p.now))
    assert out == []
    assert p.closed == "first message is not a Logon"
    assert not any(isinstance(a, Send) for a in p.actions)
    assert state(p) is State.DISCONNECTED


def test_first_message_garbled_closes() -> None:
    p = Pair.create()
    logon = bytearray(p.client.logon(p.now))
    logon[-3] ^= 1  # CheckSum digit
    p.send(bytes(logon))
    assert p.closed is not None
    assert p.client.received == []


# --------------------------------------------------------------------------------------------
# rejects


def test_bad_enum_value_is_rejected_with_ref_tag_and_reason(pair: Pair) -> None:
    out = pair.send(pair.client.new_order_single(pair.now, side=b"Z"))  # Side (54)
    assert types(out) == [b"3"]
    rej = out[0]
    assert (rej[45], rej[371], rej[372], rej[373]) == (b"2", b"54", b"D", b"5")
    assert rej[58] == b"Value is incorrect (out of range) for this tag"
    assert pair.app_messages() == []
    assert pair.session.next_target == 3
    assert pair.closed is None


def test_business_message_reject(pair: Pair) -> None:
    pair.send(pair.client.new_order_single(pair.now, b"ORD-7"))
    (app,) = pair.app_messages()
    pair.session.business_reject(
        app.message, 2, pair.now, tag=55, text="Unknown Security", ref_id=b"ORD-7"
    )
    pair.pump()
    rej = pair.client.received[-1]
    assert rej.msg_type == b"j"
    assert (rej[45], rej[372], rej[379], rej[380]) == (b"2", b"D", b"ORD-7", b"2")
    assert rej[58] == b"Unknown Security (55)"
    assert rej.seq == 2
    assert pair.store[2] == rej.raw
    assert pair.session.next_target == 3  # business_reject does not consume a target number


def test_app_message_event_carries_typed_fields(pair: Pair) -> None:
    pair.send(pair.client.new_order_single(pair.now, b"ORD-9"))
    (app,) = pair.app_messages()
    assert isinstance(app, AppMessage)
    m = app.message
    assert m.msg_type == b"D"
    assert m.get_str(55) == "BTC/USDT"
    assert str(m.get_decimal(44)) == "97123.45"
    assert m.get_time_ns(60) == int(T0) * 1_000_000_000


# --------------------------------------------------------------------------------------------
# hostile input


def test_a_tag_written_with_leading_zeros_is_rejected(pair: Pair) -> None:
    """``0000000000554`` reads as 554 (Password) to a lenient parser: the message is refused
    with 373=0 naming the tag, not processed."""
    order = pair.client.new_order_single(pair.now, b"ORD-Z").replace(b"\x0155=", b"\x01055=")
    raw = _reframe(order)
    out = pair.send(raw)
    assert types(out) == [b"3"]
    rej = out[0]
    assert (rej[371], rej[373]) == (b"55", b"0")
    assert b"leading zeros" in rej[58]
    assert pair.app_messages() == []


def test_a_logon_with_a_padded_password_tag_is_refused() -> None:
    p = Pair.create()
    logon = p.client.logon(p.now)
    padded = _reframe(logon.replace(b"\x0198=0", b"\x010000000000554=secret\x0198=0"))
    p.send(padded)
    assert p.closed is not None
    assert not p.session.is_logged_on


@pytest.mark.parametrize(("tag", "length"), [(11, 65), (1, 65), (58, 1025)])
def test_overlong_values_are_rejected_naming_the_field(pair: Pair, tag: int, length: int) -> None:
    order = pair.client.new_order_single(pair.now, b"ORD-L")
    pair.client.next_seq -= 1
    if tag == 11:
        order = order.replace(b"\x0111=ORD-L", b"\x0111=" + b"x" * length)
    else:
        order = order.replace(b"\x0111=ORD-L", b"\x01%d=%s\x0111=ORD-L" % (tag, b"x" * length))
    out = pair.send(_reframe(_sorted_body(order)))
    assert types(out) == [b"3"]
    rej = out[0]
    assert (rej[371], rej[373]) == (b"%d" % tag, b"5")
    assert b"longer than" in rej[58]
    assert pair.app_messages() == []
    # one character less passes
    pair.client.next_seq = pair.session.next_target
    ok = pair.client.new_order_single(pair.now, b"ORD-L")
    pair.client.next_seq -= 1
    if tag == 11:
        ok = ok.replace(b"\x0111=ORD-L", b"\x0111=" + b"x" * (length - 1))
    else:
        ok = ok.replace(b"\x0111=ORD-L", b"\x01%d=%s\x0111=ORD-L" % (tag, b"x" * (length - 1)))
    assert types(pair.send(_reframe(_sorted_body(ok)))) == []
    assert len(pair.app_messages()) == 1


def _sorted_body(data: bytes) -> bytes:
    """Body fields in tag order (the inserted ones land where validation expects them)."""
    fields = split_fields(data)
    cut = next(i for i, f in enumerate(fields) if f[0] == 56) + 1
    body = sorted((f for f in fields[cut:] if f[0] != 10), key=lambda f: f[0])
    return b"".join(b"%d=%s\x01" % f for f in [*fields[:cut], *body, (10, b"000")])


def _reframe(data: bytes) -> bytes:
    """``data`` with BodyLength and CheckSum made right again."""
    fields = data.split(b"\x01")
    assert fields[-1] == b"" and fields[-2].startswith(b"10=")
    begin = fields[0][2:]
    body = b"".join(f + b"\x01" for f in fields[2:-2])
    head = b"8=" + begin + b"\x019=%d\x01" % len(body)
    msg = head + body
    return msg + b"10=%03d\x01" % (sum(msg) & 0xFF)
