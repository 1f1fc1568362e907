"""The session repository: what the FIX sessions keep -- sequence numbers, the messages sent
(for resend), the message log -- and the order path's switches kept with them (a Logon's
cancel-on-disconnect choice, the kill switches).

A session's driver stores its :class:`~gateway.store.records.Commit` (messages, sequence
numbers, the ExecIDs the messages carry and the order rows they tell of) in one transaction,
and writes the messages only once it has committed (Invariant 1). Many sessions' commits share
one transaction (the writer's group commit, :mod:`gateway.store.writer`). Re-saving a (session,
seq) overwrites it (PossDupFlag resends, SequenceReset-GapFill); a session never loaded is
created.

The statements, the batch's session writes and the requests every order makes (a commit, a
message log line) are in :mod:`gateway.store.writes`, compiled with the order path; this module
checks the arguments and makes the requests.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from sqlalchemy import Connection, delete, select

from gateway.store.records import Commit, OrderAppend, SessionRecord
from gateway.store.schema import messages, sessions
from gateway.store.switches import check_kill_switch, load_kill_switches
from gateway.store.writer import Tx, Waiter, Writer, aware
from gateway.store.writes import (
    Direction,
    KnownSessions,
    LogLine,
    SessionStatements,
    SessionWrites,
    check_session_id,
    session_commit,
)

COD_MODES = frozenset(("off", "disconnect", "logout", "both"))
"""The cancel-on-disconnect modes an override may be
(:meth:`SessionRepository.save_cod_override`)."""


# --- requests (those every order makes: gateway.store.writes) -----------------------------------


@dataclass(slots=True, eq=False)
class _SetCodOverride:
    waiter: Waiter
    known: KnownSessions
    session_id: str
    mode: str | None
    now: datetime
    """The creation time of the session's row if it has none yet."""
    reads: ClassVar[bool] = False

    def apply(self, tx: Tx) -> None:
        tx.writes(SessionWrites, self.known).cod_overrides[self.session_id] = (
            self.session_id, 1, 1, tx.bind_time(self.now), self.mode
        )


@dataclass(slots=True, eq=False)
class _SetKillSwitch:
    waiter: Waiter
    known: KnownSessions
    scope: str
    engaged: bool
    reason: str
    now: datetime
    reads: ClassVar[bool] = False

    def apply(self, tx: Tx) -> None:
        tx.writes(SessionWrites, self.known).kill_switches[self.scope] = (
            self.scope, self.engaged, self.reason, tx.bind_time(self.now)
        )


@dataclass(slots=True, eq=False)
class _Load:
    waiter: Waiter
    known: KnownSessions
    session_id: str
    now: datetime
    reads: ClassVar[bool] = True

    def apply(self, tx: Tx) -> SessionRecord:
        tx.flush()
        conn = tx.conn
        conn.execute(
            tx.statements(SessionStatements).create_session,
            {"session_id": self.session_id, "next_sender": 1, "next_target": 1,
             "creation_time": self.now},
        )
        row = conn.execute(
            select(sessions.c.next_sender, sessions.c.next_target, sessions.c.creation_time)
            .where(sessions.c.session_id == self.session_id)
        ).one()
        self.known.learn(tx, (self.session_id,))
        return SessionRecord(int(row[0]), int(row[1]), row[2])


@dataclass(slots=True, eq=False)
class _GetSent:
    waiter: Waiter
    session_id: str
    begin: int
    end: int
    limit: int
    reads: ClassVar[bool] = True

    def apply(self, tx: Tx) -> list[tuple[int, bytes]]:
        tx.flush()
        query = (
            select(messages.c.seq, messages.c.data)
            .where(messages.c.session_id == self.session_id)
            .where(messages.c.seq >= self.begin)
            .order_by(messages.c.seq)
            .limit(self.limit)
        )
        if self.end != 0:
            query = query.where(messages.c.seq <= self.end)
        return [(int(seq), bytes(data)) for seq, data in tx.conn.execute(query)]


@dataclass(slots=True, eq=False)
class _Reset:
    waiter: Waiter
    known: KnownSessions
    session_id: str
    now: datetime
    reads: ClassVar[bool] = True

    def apply(self, tx: Tx) -> None:
        tx.flush()
        conn = tx.conn
        conn.execute(delete(messages).where(messages.c.session_id == self.session_id))
        conn.execute(
            tx.statements(SessionStatements).reset_session,
            {"session_id": self.session_id, "next_sender": 1, "next_target": 1,
             "creation_time": self.now},
        )
        self.known.learn(tx, (self.session_id,))


# --- the API ------------------------------------------------------------------------------------


class SessionRepository:
    """The sessions' side of the store (module docstring), on ``writer``."""

    def __init__(self, writer: Writer) -> None:
        self.writer = writer
        self._known = KnownSessions()

    async def load(self, session_id: str) -> SessionRecord:
        """The session's state; creates it as (1, 1, now) when absent."""
        check_session_id(session_id)
        w = self.writer
        result: SessionRecord = await w.call(
            _Load(w.waiter(), self._known, session_id, w.now()))
        return result

    def commit(self, unit: Commit) -> Awaitable[None]:
        """Store ``unit`` in one transaction (:class:`~gateway.store.records.Commit`).

        The awaitable resolves only once committed (write-ahead: write to the socket
        afterwards); a bad argument raises at the call. If the awaiting task is cancelled the
        commit may still happen. An ExecID reported again stays reported (the MsgSeqNum kept
        may be the first one: nothing reads it). The request is made by compiled code
        (:func:`~gateway.store.writes.session_commit`): two an order."""
        return session_commit(self.writer, self._known, unit)

    async def save(
        self,
        session_id: str,
        *,
        sent: Sequence[tuple[int, bytes]] = (),
        next_sender: int | None = None,
        next_target: int | None = None,
        reports: Sequence[tuple[str, int]] = (),
        appends: Sequence[OrderAppend] = (),
    ) -> None:
        """:meth:`commit` of the unit these make (sent messages ``(MsgSeqNum, raw bytes)``,
        the new sequence numbers, ``(ExecID, MsgSeqNum)`` of the reports among ``sent``, order
        rows from :func:`~gateway.store.rows.build_append`)."""
        await self.commit(Commit(session_id, tuple(sent), next_sender, next_target,
                                 tuple(reports), tuple(appends)))

    def log(self, session_id: str, direction: str, data: bytes, when: datetime) -> None:
        """Append to the message log (fire-and-forget; joins the next group commit).

        Never blocks. Secrets (Password 554, Signature 89, ...) are masked by the writer, see
        :func:`gateway.audit.filelog.mask_secrets`. A log entry whose commit fails is dropped
        and reported through :mod:`logging`.
        """
        check_session_id(session_id)
        if direction != "in" and direction != "out":
            raise ValueError(f"direction must be 'in' or 'out', not {direction!r}")
        checked: Direction = "in" if direction == "in" else "out"
        self.writer.submit(LogLine(session_id, checked, bytes(data), aware(when), self._known))

    async def get_sent(
        self, session_id: str, begin: int, end: int, limit: int = 1000
    ) -> list[tuple[int, bytes]]:
        """Sent messages with ``begin <= seq <= end`` (``end`` 0 = infinity), by seq, at most
        ``limit`` of them (answering a ResendRequest 2: BeginSeqNo 7, EndSeqNo 16)."""
        check_session_id(session_id)
        if begin < 0 or end < 0:
            raise ValueError(f"negative sequence range {begin}..{end}")
        if limit < 1:
            raise ValueError(f"limit must be positive, not {limit}")
        w = self.writer
        result: list[tuple[int, bytes]] = await w.call(
            _GetSent(w.waiter(), session_id, begin, end, limit))
        return result

    async def reset(self, session_id: str) -> None:
        """Delete the sent messages; sequence numbers back to 1/1 with a new creation time.

        The message log is kept (audit).
        """
        check_session_id(session_id)
        w = self.writer
        await w.call(_Reset(w.waiter(), self._known, session_id, w.now()))

    def save_cod_override(self, session_id: str, mode: str | None) -> asyncio.Future[None]:
        """Store the cancel-on-disconnect mode the session's Logon chose with tag 8013 (None:
        the Logon chose none, the configured mode holds); a session never loaded is created.

        Queued at once, not when a task first runs: whatever the caller saves afterwards (the
        Logon reply) commits in the same transaction or a later one, so a client that got its
        Logon reply has its choice stored. The future resolves after the commit."""
        check_session_id(session_id)
        if mode is not None and mode not in COD_MODES:
            raise ValueError(f"cancel-on-disconnect mode must be one of {sorted(COD_MODES)}, "
                             f"not {mode!r}")
        w = self.writer
        future: asyncio.Future[None] = w.call(
            _SetCodOverride(w.waiter(), self._known, session_id, mode, w.now()))
        return future

    async def load_cod_overrides(self) -> dict[str, str]:
        """Session id -> the mode stored by :meth:`save_cod_override`, for every session whose
        last Logon chose one."""
        return await self.writer.query(_load_cod_overrides)

    def save_kill_switch(self, scope: str, engaged: bool, reason: str = "") -> asyncio.Future[None]:
        """Record that the kill switch of ``scope`` (a session id, or "*" for the whole
        gateway) was engaged or released (by an admin command). Queued at once (joins the
        writer's next batch, in order with what is queued after it); the future resolves after
        the commit.

        ``scope`` must be 1..255 characters (ValueError); ``reason`` is cut to 200 characters.
        Rows are upserted by scope (a released switch keeps its row, not engaged); see
        :mod:`gateway.store.switches`."""
        scope, reason = check_kill_switch(scope, reason)
        w = self.writer
        future: asyncio.Future[None] = w.call(
            _SetKillSwitch(w.waiter(), self._known, scope, bool(engaged), reason, w.now()))
        return future

    async def load_kill_switches(self) -> dict[str, str]:
        """scope -> reason, for every scope whose switch is engaged (released ones are
        absent)."""
        return await self.writer.query(load_kill_switches)


def _load_cod_overrides(conn: Connection) -> dict[str, str]:
    query = select(sessions.c.session_id, sessions.c.cod_override).where(
        sessions.c.cod_override.is_not(None)
    )
    return {sid: mode for sid, mode in conn.execute(query)}


