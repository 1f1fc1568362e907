"""gateway/server/handle.py: an operator's new sequence numbers are stored first, then the
session's; a Logon that comes while they are being stored keeps the session's own."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from gateway.fix.dictionary import standard
from gateway.fix.session import Session, SessionID, SessionSettings
from gateway.server.handle import SessionDef, SessionHandle
from gateway.store.records import Commit

SID = SessionID("FIX.4.4", "GATEWAY", "CLIENT1")


class _Connection:
    """Stands for the acceptor's connection of a Logon (only its presence counts here)."""

    closed = False


class _Store:
    """Stores a commit; ``during`` runs while it is being stored."""

    def __init__(self) -> None:
        self.commits: list[Commit] = []
        self.during = lambda: None

    async def commit(self, unit: Commit) -> None:
        self.during()
        self.commits.append(unit)


def _handle(store: _Store) -> SessionHandle:
    settings = SessionSettings(SID)
    dd = standard("FIX.4.4")
    session = Session(settings, dd, next_sender=7, next_target=9)
    return SessionHandle(SessionDef(settings, dd, {}), session, store,  # type: ignore[arg-type]
                         app=None, file_log=None, period_start=None)  # type: ignore[arg-type]


def test_renumbered_while_not_connected() -> None:
    store = _Store()
    h = _handle(store)
    asyncio.run(h.renumber(3, 4))
    assert [(c.next_sender, c.next_target) for c in store.commits] == [(3, 4)]
    assert (h.session.next_sender, h.session.next_target) == (3, 4)


def test_a_logon_while_the_numbers_are_stored_keeps_the_sessions_own() -> None:
    """(Compiled, the connection read after the store's commit was checked against what it was
    before the commit, None: a TypeError instead of this RuntimeError.)"""
    store = _Store()
    h = _handle(store)
    conn: Any = _Connection()

    def logon() -> None:
        h.connection = conn

    store.during = logon
    with pytest.raises(RuntimeError, match="logged on meanwhile: not renumbered"):
        asyncio.run(h.renumber(3, 4))
    assert (h.session.next_sender, h.session.next_target) == (7, 9)
