"""Kill switches in the store: the rows behind :meth:`SessionRepository.save_kill_switch
<gateway.store.sessions.SessionRepository.save_kill_switch>` and ``load_kill_switches``.

A kill switch is engaged or released by an admin command for a scope -- a FIX session id, or
:data:`GATEWAY_SCOPE` (``*``) for the whole gateway -- and must outlive a restart. One row per
scope in ``kill_switches`` (:mod:`gateway.store.schema`), upserted: a released switch keeps its
row with ``engaged`` false, so the table also says when each scope last changed.
"""

from __future__ import annotations

from sqlalchemy import Connection, select

from gateway.store.db import insert_sql
from gateway.store.schema import REASON_LENGTH, SESSION_ID_LENGTH, kill_switches

GATEWAY_SCOPE = "*"
"""The scope of the gateway-wide kill switch."""

KILL_SWITCH_COLUMNS = ("scope", "engaged", "reason", "changed_at")
"""The column order of the rows :func:`upsert_kill_switch_sql` takes."""


def check_kill_switch(scope: str, reason: str) -> tuple[str, str]:
    """``(scope, reason)`` as stored: the scope must be 1..SESSION_ID_LENGTH characters
    (ValueError), the reason is cut to REASON_LENGTH characters."""
    if not isinstance(scope, str) or not scope or len(scope) > SESSION_ID_LENGTH:
        raise ValueError(f"kill switch scope must be 1..{SESSION_ID_LENGTH} characters: {scope!r}")
    return scope, str(reason)[:REASON_LENGTH]


def upsert_kill_switch_sql(mark: str) -> str:
    """The writer's upsert (rows in :data:`KILL_SWITCH_COLUMNS` order): the last write of a
    scope wins."""
    return insert_sql(
        kill_switches.name,
        KILL_SWITCH_COLUMNS,
        mark,
        conflict=["scope"],
        update=["engaged", "reason", "changed_at"],
    )


def load_kill_switches(conn: Connection) -> dict[str, str]:
    """Scope -> reason of every engaged switch (an order-read query of the writer)."""
    query = select(kill_switches.c.scope, kill_switches.c.reason).where(kill_switches.c.engaged)
    return {scope: reason for scope, reason in conn.execute(query)}
