"""The session's states and which message types each accepts, as data (STYLE 3).

A (state, MsgType) pair the table does not allow is a protocol error: the session notes it and
drops the connection (FIX Session Layer Test Case 1e: first message not a Logon; a second Logon
without ResetSeqNumFlag while logged on).
"""

from __future__ import annotations

from enum import Enum

from .errors import StepError as StepError
from .tags import LOGON, LOGOUT, REJECT, SEQUENCE_RESET


class _IdentityEnum(Enum):
    """Hashed by identity (members are singletons, equal only to themselves): CPython 3.11's
    ``Enum.__hash__`` is a Python function, called at each dict or set lookup of a member --
    six an order in the session's send and receive (``connectors.base.IdentityEnum``, which
    this package does not import)."""

    __hash__ = object.__hash__


class Role(_IdentityEnum):
    """Which side of the connection the session is (h11's ``our_role``): the acceptor waits
    for the counterparty's Logon and answers it; the initiator sends the Logon and waits for
    the answer. Everything after the Logon is the same for both."""

    ACCEPTOR = "acceptor"
    INITIATOR = "initiator"


class State(_IdentityEnum):
    DISCONNECTED = "disconnected"  # no transport
    AWAITING_LOGON = "awaiting_logon"  # transport up, nothing valid received yet
    LOGON_SENT = "logon_sent"  # (initiator) our Logon is sent, its answer awaited
    AUTHENTICATING = "authenticating"  # Logon received, credentials being checked off-loop
    LOGGED_ON = "logged_on"
    LOGOUT_SENT = "logout_sent"  # we sent Logout and wait for the answer (LogoutTimeout)
    REFUSED = "refused"  # a Logout before logon (ours answering a Logon, or answering the
    # counterparty's refusal of our Logon): the connection closes


ANY = b"*any*"

# state -> {MsgType (or ANY) -> the state the message leads to}. The handlers refine the target
# (a Logout received moves to DISCONNECTED once answered; a rejected Logon never logs on).
TRANSITIONS: dict[State, dict[bytes, State]] = {
    State.DISCONNECTED: {},
    State.REFUSED: {},
    State.AWAITING_LOGON: {LOGON: State.AUTHENTICATING},
    # the initiator waits for the Logon that answers its own; a Logout refuses it, and
    # SequenceReset and Reject are valid before logon (QuickFIX's validLogonState)
    State.LOGON_SENT: {
        LOGON: State.LOGGED_ON,
        LOGOUT: State.DISCONNECTED,
        SEQUENCE_RESET: State.LOGON_SENT,
        REJECT: State.LOGON_SENT,
    },
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


class Step(_IdentityEnum):
    """What moves the session from one state to another, besides the messages it receives."""

    CONNECTED = "connected"  # a transport is up
    LOGON_SENT = "logon sent"  # (initiator) we sent our Logon
    LOGON_HELD = "logon held"  # a Logon waits for its credentials' check
    LOGON_CHECKED = "logon checked"  # the check is done (the Logon is then completed or not)
    LOGGED_ON = "logged on"  # the Logon is answered (acceptor) or the answer came (initiator)
    LOGOUT_SENT = "logout sent"  # we sent Logout and wait for the answer
    CLOSED = "closed"  # the transport is gone, or must go


STEPS: dict[State, dict[Step, State]] = {
    State.DISCONNECTED: {Step.CONNECTED: State.AWAITING_LOGON, Step.CLOSED: State.DISCONNECTED},
    State.AWAITING_LOGON: {
        Step.LOGON_SENT: State.LOGON_SENT,
        Step.LOGON_HELD: State.AUTHENTICATING,
        Step.LOGGED_ON: State.LOGGED_ON,
        Step.LOGOUT_SENT: State.REFUSED,  # a Logout answering the Logon: closed next
        Step.CONNECTED: State.AWAITING_LOGON,
        Step.CLOSED: State.DISCONNECTED,
    },
    State.LOGON_SENT: {
        Step.LOGGED_ON: State.LOGGED_ON,
        Step.LOGOUT_SENT: State.REFUSED,  # the answer to a Logout that refused our Logon
        Step.CONNECTED: State.AWAITING_LOGON,
        Step.CLOSED: State.DISCONNECTED,
    },
    State.AUTHENTICATING: {
        Step.LOGON_CHECKED: State.AWAITING_LOGON,
        Step.LOGOUT_SENT: State.REFUSED,  # refused while its credentials are checked
        Step.CONNECTED: State.AWAITING_LOGON,
        Step.CLOSED: State.DISCONNECTED,
    },
    State.LOGGED_ON: {
        Step.LOGGED_ON: State.LOGGED_ON,  # a Logon with ResetSeqNumFlag=Y while logged on
        Step.LOGOUT_SENT: State.LOGOUT_SENT,
        Step.CONNECTED: State.AWAITING_LOGON,
        Step.CLOSED: State.DISCONNECTED,
    },
    State.LOGOUT_SENT: {
        Step.LOGGED_ON: State.LOGGED_ON,  # a Logon with ResetSeqNumFlag=Y, answered
        Step.LOGOUT_SENT: State.LOGOUT_SENT,
        Step.CONNECTED: State.AWAITING_LOGON,
        Step.CLOSED: State.DISCONNECTED,
    },
    State.REFUSED: {
        Step.LOGOUT_SENT: State.REFUSED,
        Step.CONNECTED: State.AWAITING_LOGON,
        Step.CLOSED: State.DISCONNECTED,
    },
}
"""The session's own steps: state -> {step -> the state it leads to}. The session changes its
state only through this table (:meth:`Session._step`); a step a state does not list is our own
misuse (:class:`StepError`)."""

LOGGED_ON_STATES = frozenset({State.LOGGED_ON, State.LOGOUT_SENT})
"""The states in which the counterparty's Logon was received (and answered)."""
LOGOUT_SENT_STATES = frozenset({State.LOGOUT_SENT, State.REFUSED})
"""The states in which we sent a Logout."""


def step(state: State, what: Step) -> State:
    """The state ``what`` leads to from ``state``."""
    target = STEPS[state].get(what)
    if target is None:
        raise StepError(f"{what.value} is not a step from {state.value}")
    return target


def next_state(state: State, msg_type: bytes) -> State | None:
    """The state ``msg_type`` leads to from ``state``; None when it is not allowed there."""
    row = TRANSITIONS[state]
    target = row.get(msg_type)
    if target is None:
        target = row.get(ANY)
    return target
