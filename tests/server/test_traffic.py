"""gateway/server/traffic.py: what is written is counted per MsgType; refusals by their reason
(an ExecutionReport only when it is a rejection, 39=8), a PossDup resend not twice."""

from __future__ import annotations

from gateway.fix.codec import encode
from gateway.server.traffic import Traffic

SID = "FIX.4.4:GATEWAY->CLIENT1"


def _msg(msg_type: bytes, body: list[tuple[int, bytes]], poss_dup: bool = False) -> bytes:
    header = [(35, msg_type), (34, b"7"), (49, b"GATEWAY"), (52, b"20260101-00:00:00.000"),
              (56, b"CLIENT1")]
    if poss_dup:
        header.append((43, b"Y"))
    return encode(b"FIX.4.4", header + body)


def _er(status: bytes, reason: bytes | None = None, poss_dup: bool = False) -> bytes:
    body = [(11, b"c1"), (17, b"1.1"), (37, b"1"), (39, status), (150, status)]
    if reason is not None:
        body += [(58, b"risk: no"), (103, reason)]
    return _msg(b"8", body, poss_dup)


def test_counts_messages_and_only_the_refusals_among_them() -> None:
    t = Traffic()
    t.outbound(SID, [_er(b"0"), _er(b"2"), _er(b"8", b"3"), _er(b"8", b"3"),
                     _er(b"8", b"13"), _er(b"8", b"3", poss_dup=True),
                     _msg(b"3", [(45, b"5"), (58, b"bad"), (371, b"38"), (372, b"D"),
                                 (373, b"6")]),
                     _msg(b"0", [])])
    st = t.sessions[SID]
    assert st.messages_out == {"8": 6, "3": 1, "0": 1}
    assert st.rejects == {("ExecutionReport", "3"): 2, ("ExecutionReport", "13"): 1,
                          ("Reject", "6"): 1}


def test_a_field_ending_in_39_is_not_an_ord_status() -> None:
    # tag 139 (or 1039) equal to 8 is not OrdStatus (39) Rejected
    t = Traffic()
    t.outbound(SID, [_msg(b"8", [(11, b"c1"), (39, b"0"), (139, b"8"), (150, b"0")])])
    assert t.sessions[SID].rejects == {}
