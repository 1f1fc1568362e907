"""The session's state tables (STYLE 15: the table sets the state): what each step leads to,
and that a step the table does not list is refused."""

from __future__ import annotations

import pytest

from gateway.fix.states import (
    LOGGED_ON_STATES,
    LOGOUT_SENT_STATES,
    STEPS,
    TRANSITIONS,
    State,
    Step,
    StepError,
    step,
)

from .pair import Pair


def test_every_state_has_its_rows() -> None:
    assert set(STEPS) == set(State) == set(TRANSITIONS)
    for state in State:
        assert STEPS[state][Step.CLOSED] is State.DISCONNECTED
        assert STEPS[state][Step.CONNECTED] is State.AWAITING_LOGON or state is State.DISCONNECTED


def test_a_step_the_table_does_not_list_is_our_error() -> None:
    with pytest.raises(StepError):
        step(State.DISCONNECTED, Step.LOGGED_ON)
    with pytest.raises(StepError):
        step(State.AUTHENTICATING, Step.LOGGED_ON)


def test_logon_received_and_logout_sent_are_states() -> None:
    p = Pair.create()
    assert not p.session.received_logon and p.session.state is State.AWAITING_LOGON
    p.logon()
    assert p.session.state in LOGGED_ON_STATES and p.session.received_logon
    assert not p.session.sent_logout
    p.session.logout(p.now, "bye")
    p.pump()
    assert p.session.state is State.LOGOUT_SENT
    assert p.session.state in LOGOUT_SENT_STATES and p.session.sent_logout
    assert p.session.received_logon


def test_a_logon_refused_with_a_logout_closes() -> None:
    p = Pair.create()
    p.session.refuse(p.now, "store unavailable")
    p.pump()
    assert p.session.state is State.DISCONNECTED
    assert p.closed == "store unavailable"
    assert [m.msg_type for m in p.client.received] == [b"5"]
