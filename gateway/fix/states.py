"""The session's states and which message types each accepts, as data (STYLE 3).

A (state, MsgType) pair the table does not allow is a protocol error: the session notes it and
drops the connection (FIX Session Layer Test Case 1e: first message not a Logon; a second Logon
without ResetSeqNumFlag while logged on).
"""

from __future__ import annotations

from enum import Enum

from .tags import LOGON, LOGOUT, REJECT, SEQUENCE_RESET


class State(Enum):
    DISCONNECTED = "disconnected"  # no transport
    AWAITING_LOGON = "awaiting_logon"  # transport up, nothing valid received yet
    AUTHENTICATING = "authenticating"  # Logon received, credentials being checked off-loop
    LOGGED_ON = "logged_on"
    LOGOUT_SENT = "logout_sent"  # we sent Logout and wait for the answer (LogoutTimeout)


ANY = b"*any*"

# state -> {MsgType (or ANY) -> the state the message leads to}. The handlers refine the target
# (a Logout received moves to DISCONNECTED once answered; a rejected Logon never logs on).
TRANSITIONS: dict[State, dict[bytes, State]] = {
    State.DISCONNECTED: {},
    State.AWAITING_LOGON: {LOGON: State.AUTHENTICATING},
    # frames that arrive while the Logon is being authenticated are held, not dispatched
    State.AUTHENTICATING: {},
    State.LOGGED_ON: {
        LOGON: State.LOGGED_ON,  # only with ResetSeqNumFlag=Y (checked by the handler)
        LOGOUT: State.DISCONNECTED,
        ANY: State.LOGGED_ON,
    },
    State.LOGOUT_SENT: {
        LOGOUT: State.DISCONNECTED,
        SEQUENCE_RESET: State.LOGOUT_SENT,
        REJECT: State.LOGOUT_SENT,
        ANY: State.LOGOUT_SENT,
    },
}


def next_state(state: State, msg_type: bytes) -> State | None:
    """The state ``msg_type`` leads to from ``state``; None when it is not allowed there."""
    row = TRANSITIONS[state]
    target = row.get(msg_type)
    if target is None:
        target = row.get(ANY)
    return target
