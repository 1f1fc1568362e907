"""One configured session on the asyncio side: its Session, its current connection (if any),
and the one place its actions are carried out, in order, under one lock.

Write-ahead (Invariant 1): every new outbound message is committed to the store, with the
sequence numbers, before its bytes reach the socket. Resends are served from the store in
chunks between the writes that precede and follow them, so they never interleave wrongly with
live traffic.

Every message the client sent is answered or refused (Invariant 8). The inbound sequence number
stored is never past a message whose answer is still being worked out off the session (the
application's *hold*: a status request answered after a store read), and when the store fails,
what was not committed is taken back: our messages never written lose their sequence numbers
(their order events and reports are kept by the application and told later), the client's
messages since the last commit count as not received (its resend brings them back), and the
connection ends with a Logout saying why -- the one message written without being stored, its
number saved once the store is back. While the store is down a Logon gets the same Logout.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal, Protocol

from gateway.fix.dictionary import DataDictionary
from gateway.fix.schedule import Schedule
from gateway.fix.session import (
    Action,
    AppMessage,
    AuthenticationRequired,
    Close,
    LoggedOn,
    LoggedOut,
    Note,
    Resend,
    ResetStore,
    Send,
    Session,
    SessionID,
    SessionSettings,
)
from gateway.fix.states import State
from gateway.store.errors import NodeFenced, StoreUnavailable
from gateway.store.records import Commit, OrderAppend

from .journal import SeqJournal
from .ports import Application, FileLogPort, SessionStorePort
from .traffic import Traffic

if TYPE_CHECKING:
    import ipaddress

    Network = ipaddress.IPv4Network | ipaddress.IPv6Network

log = logging.getLogger("fixgw.session")


class Transport(Protocol):
    """What a session's handle needs of the connection it is attached to (the acceptor's
    ``Connection`` is one)."""

    closed: bool

    def now(self) -> float: ...

    def abort(self, reason: str) -> None: ...

    def write_now(self, data: bytes) -> None: ...

    async def write_all(self, chunks: Sequence[bytes], limits: Limits) -> None: ...

    async def authenticate(self, ev: AuthenticationRequired) -> None: ...

RESEND_CHUNK = 1000


@dataclass(frozen=True, slots=True)
class Limits:
    max_message_size: int = 1 << 20
    max_outbound_bytes: int = 8 << 20
    """A reader this far behind is disconnected (memory stays bounded)."""
    write_chunk: int = 64 << 10
    """A large batch of messages (a mass cancel's reports, a resend) is written in pieces of
    about this many bytes, each once the client has read enough of the one before."""
    slow_reader_timeout: float = 2.0
    """A client that reads nothing of a large batch for this long is disconnected."""
    partial_message_timeout: float = 30.0
    """Bytes of an incomplete message held longer than this drop the connection."""
    first_message_timeout: float = 10.0
    rate_limit: float | None = None
    """Inbound messages per second (token bucket, burst = ``rate_burst``)."""
    rate_burst: int = 100
    rate_action: str = "reject"
    """"reject": excess application messages get BusinessMessageReject; "logout": Logout."""


@dataclass(slots=True)
class SessionDef:
    settings: SessionSettings
    session_dd: DataDictionary
    app_dds: dict[str, DataDictionary]
    username: str | None = None
    password_hash: bytes | None = None
    allowed_networks: Sequence[Network] | None = None
    limits: Limits = field(default_factory=Limits)
    schedule: Schedule = field(default_factory=Schedule)

    @property
    def sid(self) -> SessionID:
        return self.settings.session_id


def utc(now: float) -> datetime:
    return datetime.fromtimestamp(now, UTC)


class SessionHandle:
    def __init__(
        self,
        definition: SessionDef,
        session: Session,
        store: SessionStorePort,
        app: Application,
        file_log: FileLogPort | None,
        period_start: float | None,
    ) -> None:
        self.definition = definition
        self.session = session
        self.store = store
        self.app = app
        self.file_log = file_log
        self.log_to_store = True
        self.log_to_file = True
        """Where every message read or written is logged (``[gateway] message_log``): the
        store's message log, the file log (when there is one; its events go there anyway)."""
        self.period_start = period_start
        self.connection: Transport | None = None
        self.sid_str = str(definition.sid)
        self._lock = asyncio.Lock()
        self._saved: tuple[int, int] = (session.next_sender, session.next_target)
        """The sequence numbers last committed (as loaded, at first)."""
        self._holds: dict[int, asyncio.Future[bool | None]] = {}
        """Inbound MsgSeqNum -> the application's work on it that must end before the number
        is stored as received."""
        self.may_write_unstored: Callable[[], bool] = lambda: True
        self.journal: SeqJournal | None = None
        """Where the numbers of Logouts written while the store is down are kept."""
        self._journaled = False
        self._unanswered: int | None = None
        """The first inbound MsgSeqNum whose held work ended without an answer."""
        self.store_down: str | None = None
        """Why the store cannot commit (None: it can): nothing but a Logout is written."""
        self._outage = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self.traffic: Traffic | None = None
        """Where what crosses the session is counted (the acceptor's)."""
        self.peer: str | None = None
        """The address of the current connection."""

    # ------------------------------------------------------------------------------------------
    # events

    def note(self, text: str, now: float) -> None:
        if self.file_log is not None:
            self.file_log.event(text, utc(now))
        log.debug("%s: %s", self.sid_str, text)

    def dispatch(self, now: float, throttled: bool = False) -> None:
        """Hand the session's events to the application (and the event log).

        When ``throttled``, application messages get BusinessMessageReject (380=99, "Throttle
        limit exceeded") instead of being processed; administrative ones are still honoured.
        """
        session = self.session
        for ev in session.events():
            if isinstance(ev, Note):
                self.note(ev.text, now)
            elif isinstance(ev, AppMessage):
                if throttled:
                    session.business_reject(ev.message, 99, now, text="Throttle limit exceeded")
                    continue
                try:
                    pending = self.app.on_message(session, ev.message, now)
                except Exception:
                    log.exception("%s: application failed on %r", self.sid_str, ev.message)
                    session.business_reject(ev.message, 4, now, text="Application error")
                else:
                    if pending is not None:
                        self._hold(ev.message.seq_num or 0, pending)
            elif isinstance(ev, LoggedOn):
                self.note("Logon complete", now)
                if self.traffic is not None:
                    self.traffic.logged_on(self.sid_str, self.peer)
                self.app.on_logon(session, now)
            elif isinstance(ev, LoggedOut):
                self.note(f"Logged out: {ev.reason}", now)
                if self.traffic is not None and ev.reason != "disconnected":
                    by = {"counterparty": "by the client", "local": "by the gateway"}.get(
                        session.logout_initiator, "")
                    self.traffic.logged_out(self.sid_str, f"{ev.reason} {by}".strip(),
                                            session.logout_text)
                self.app.on_logout(session, now)
            elif isinstance(ev, AuthenticationRequired):
                conn = self.connection
                if conn is not None:
                    task = asyncio.create_task(conn.authenticate(ev))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)

    async def reload(self, next_sender: int, next_target: int, period_start: float | None) -> None:
        """The session's numbers as the store has them (another node served it meanwhile)."""
        async with self._lock:
            if self.connection is not None:
                log.error("%s: not reloaded: it is connected", self.sid_str)
                return
            self.session.next_sender, self.session.next_target = next_sender, next_target
            self._saved = (next_sender, next_target)
            self._unanswered = None
            self.period_start = period_start

    async def renumber(self, next_sender: int, next_target: int) -> None:
        """An operator's sequence numbers: stored first, then the session's; a store that
        refuses them leaves the session as it was. RuntimeError while it is connected."""
        async with self._lock:
            if self.connection is not None:
                raise RuntimeError(f"{self.sid_str} is connected: log it out first")
            target = min(next_target, min(self._holds)) if self._holds else next_target
            await self.store.commit(Commit(self.sid_str, next_sender=next_sender,
                                           next_target=target))
            if self._connection_now() is not None:  # a Logon came meanwhile: its numbers stand
                raise RuntimeError(f"{self.sid_str} logged on meanwhile: not renumbered")
            self.session.next_sender, self.session.next_target = next_sender, next_target
            self._saved = (next_sender, target)
            self._unanswered = None
            self._journal_stored()

    def _connection_now(self) -> Transport | None:
        """The connection, read after an ``await`` that may have brought one. (mypy narrows
        ``self.connection`` to None after a check that raised otherwise, for the rest of the
        function, and mypyc, compiling from those types, would check that the value read after
        the ``await`` is None -- a TypeError when a Logon came meanwhile. A method's result has
        the attribute's declared type.)"""
        return self.connection

    def restored_unstored(self, stored_sender: int) -> None:
        """The session was loaded with a next MsgSeqNum past the stored one (kept by the
        journal): the next save stores it, then the journal's copy goes."""
        self._saved = (stored_sender, self._saved[1])
        self._journaled = True

    def sequences_reset(self) -> None:
        """The store's sequence numbers were set back to 1/1 (a new session period)."""
        self._saved = (1, 1)
        self._journal_stored()

    def _hold(self, seq: int, pending: Awaitable[bool | None]) -> None:
        future = asyncio.ensure_future(pending)
        self._holds[seq] = future
        future.add_done_callback(functools.partial(self._released, seq))

    def _released(self, seq: int, future: asyncio.Future[bool | None]) -> None:
        if self._holds.get(seq) is future:
            del self._holds[seq]
        failed = future.cancelled() or future.exception() is not None
        if failed or future.result() is False:
            # no answer went out (the client left, or the work failed): the number is not
            # stored as received, and the client is asked for the message at its next Logon
            if failed and not future.cancelled():
                log.warning("%s: work on MsgSeqNum %d failed: %s", self.sid_str, seq,
                            future.exception())
            self._unanswered = seq if self._unanswered is None else min(self._unanswered, seq)
        task = asyncio.get_running_loop().create_task(self.flush())  # store the number now
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def durable_target(self) -> int:
        """The inbound MsgSeqNum to store as the next expected: the session's, or the first one
        the application still works on."""
        target = self.session.next_target
        if self._unanswered is not None:
            target = min(target, self._unanswered)
        return min(target, min(self._holds)) if self._holds else target

    def ask_again_for_unanswered(self) -> None:
        """At a new connection: a message left without an answer counts as not received, so
        the client's Logon (its number past it) brings a ResendRequest for it."""
        if self._unanswered is not None:
            self.session.rewind(self.session.next_sender, self._unanswered)
            self._unanswered = None

    # ------------------------------------------------------------------------------------------
    # actions

    async def flush(self) -> None:
        """Carry out the session's actions in order: persist+send, resend, reset, close."""
        async with self._lock:
            session = self.session
            if self.store_down is not None:
                self._flush_down()
                return
            left: list[Action] = []
            try:
                while True:
                    left = session.next_actions()
                    if not left:
                        break
                    while left:
                        sends = 0
                        while sends < len(left) and isinstance(left[sends], Send):
                            sends += 1
                        if sends:
                            await self._send_batch(left[:sends])  # type: ignore[arg-type]
                            left = left[sends:]
                            continue
                        a = left[0]
                        if isinstance(a, Resend):
                            try:
                                await self._serve_resend(a)
                            except Exception as exc:
                                # part of the resend may be written: a Logout after it would
                                # leave a gap before it, so the connection just ends
                                left = left[1:]
                                self._store_failed(exc, left, logout=False)
                                return
                        elif isinstance(a, ResetStore):
                            # every reset is said (a reset nobody notices is how a failover
                            # goes wrong unseen)
                            log.warning("%s: sequence numbers reset to 1 (was %d/%d: a Logon "
                                        "with ResetSeqNumFlag, or a reset_on_* setting)",
                                        self.sid_str, *self._saved)
                            await self.store.reset(self.sid_str)
                            self._saved = (1, 1)
                            self._journal_stored()
                        elif isinstance(a, Close):
                            conn = self.connection
                            if conn is not None:
                                conn.abort(a.reason)
                        left = left[1:]
                # the target sequence number stays durable even when nothing was sent
                if (session.next_sender, self.durable_target()) != self._saved:
                    await self.save_seq()
            except Exception as exc:
                self._store_failed(exc, left)

    async def save_seq(self) -> None:
        s = self.session
        saved = (s.next_sender, self.durable_target())
        await self.store.commit(Commit(self.sid_str, next_sender=saved[0], next_target=saved[1]))
        self._saved = saved
        self._journal_stored()

    def _journal_stored(self) -> None:
        """The store has the sequence numbers: the journal's copy goes."""
        if self._journaled and self.journal is not None:
            self.journal.forget(self.sid_str)
            self._journaled = False

    async def _send_batch(self, batch: list[Send]) -> None:
        if not batch:
            return
        s = self.session
        attached = [a.attachment for a in batch if a.attachment is not None]
        saved = (s.next_sender, self.durable_target())
        await self.store.commit(Commit(
            self.sid_str,
            sent=tuple((a.seq, a.data) for a in batch if a.persist),
            next_sender=saved[0],
            next_target=saved[1],
            reports=tuple((a.ref, a.seq) for a in batch if a.ref is not None),
            orders=tuple(_rows(x.payload) for x in attached),
        ))
        for x in attached:
            x.committed()
        self._saved = saved
        self._journal_stored()
        await self._write([a.data for a in batch if a.write])

    # ------------------------------------------------------------------------------------------
    # when the store fails

    def _store_failed(self, exc: BaseException, left: list[Action], logout: bool = True) -> None:
        """A commit failed: take back what was not durable (module docstring), then end the
        connection, saying why in a Logout when one can follow what was written."""
        why = f"store unavailable: {exc}" if "unavailable" not in str(exc) else str(exc)
        if isinstance(exc, NodeFenced):
            # another node serves the session now, with these numbers: write nothing more
            logout, why = False, str(exc)
        log.error("%s: %s; ending the connection", self.sid_str, why)
        self._take_back(left + self.session.next_actions(), exc)
        conn = self.connection
        now = conn.now() if conn is not None else 0.0
        self.note(f"Store failed: {why}", now)
        if logout:
            self.session.refuse(now, why[:200])
        elif conn is not None:
            conn.abort(why)
        self._flush_down()

    def _take_back(self, left: list[Action], exc: BaseException) -> None:
        """Actions not carried out: their messages were neither stored nor written."""
        s = self.session
        first: int | None = None
        for a in left:
            if isinstance(a, Send):
                first = a.seq if first is None else min(first, a.seq)
                if a.attachment is not None:
                    a.attachment.failed(exc)
            elif isinstance(a, Close) and self.connection is not None:
                self.connection.abort(a.reason)
        s.rewind(s.next_sender if first is None else first, self._saved[1])

    def _flush_down(self) -> None:
        """The store cannot commit: write a Logout (unstored: its number is kept by the
        journal until the store has it, and a resend gap-fills it) and close; nothing else
        goes out. A Logout whose number cannot be kept is not written (module docstring of
        :mod:`gateway.server.journal`)."""
        for a in self.session.next_actions():
            if isinstance(a, Send):
                conn = self.connection
                if (a.write and b"\x0135=5\x01" in a.data[:40] and conn is not None
                        and not conn.closed and self._keep_unstored(a.seq + 1)):
                    now = conn.now()
                    if self.traffic is not None:
                        self.traffic.outbound(self.sid_str, [a.data])
                    self.log_message("out", a.data, utc(now))
                    conn.write_now(a.data)
                    continue
                self._take_back([a], StoreUnavailable(self.store_down or "store unavailable"))
            elif isinstance(a, Close):
                conn = self.connection
                if conn is not None:
                    conn.abort(a.reason)
            elif isinstance(a, Resend) and self.connection is not None:
                self.connection.abort("a resend cannot be served: the store is down")

    async def store_lost(self, why: str, outage: int = 0) -> None:
        """The store went down (the acceptor's ``outage``-th time): end the connection with a
        Logout saying so; until :meth:`store_back`, a Logon gets the same answer."""
        async with self._lock:
            self.store_down = why
            self._outage = max(self._outage, outage)
            s = self.session
            self._take_back(s.next_actions(), StoreUnavailable(why))
            if s.state is not State.DISCONNECTED:
                conn = self.connection
                now = conn.now() if conn is not None else 0.0
                s.refuse(now, f"store unavailable: {why}"[:200])
            self._flush_down()

    async def refuse(self, why: str, now: float) -> None:
        """Answer the connection's Logon with a Logout that says why, and close."""
        self.session.refuse(now, why[:200])
        await self.flush()

    def _keep_unstored(self, next_sender: int) -> bool:
        journal = self.journal
        if not self.may_write_unstored():
            return False
        if journal is None or not journal.remember(self.sid_str, next_sender):
            return False
        self._journaled = True
        return True

    async def store_back(self, outage: int = 0) -> None:
        """The store takes writes again after the ``outage``-th outage: store the sequence
        numbers it moved (the Logouts written meanwhile). A later outage stays."""
        async with self._lock:
            if self._outage > outage:
                return
            self.store_down = None
            if (self.session.next_sender, self.durable_target()) != self._saved:
                await self.save_seq()
            self._journal_stored()

    def log_message(self, direction: Literal["in", "out"], data: bytes, when: datetime) -> None:
        """A message read or written, to the message log(s)."""
        if self.log_to_store:
            self.store.log(self.sid_str, direction, data, when)
        file_log = self.file_log
        if file_log is not None and self.log_to_file:
            if direction == "in":
                file_log.incoming(data, when)
            else:
                file_log.outgoing(data, when)

    async def _write(self, chunks: list[bytes]) -> None:
        conn = self.connection
        if conn is None or conn.closed or not chunks:
            return
        now = conn.now()
        when = utc(now)
        if self.traffic is not None:
            self.traffic.outbound(self.sid_str, chunks)
        for c in chunks:
            self.log_message("out", c, when)
        await conn.write_all(chunks, self.definition.limits)

    async def _serve_resend(self, a: Resend) -> None:
        conn = self.connection
        now = conn.now() if conn is not None else 0.0
        resender = self.session.resender(a.begin, a.end, now)
        cursor = a.begin
        while cursor <= a.end:
            stored = await self.store.get_sent(self.sid_str, cursor, a.end, RESEND_CHUNK)
            await self._write(resender.add(stored))
            if len(stored) < RESEND_CHUNK:
                break
            cursor = stored[-1][0] + 1
        await self._write(resender.finish())


def _rows(payload: object) -> OrderAppend:
    """What an attachment stores with its message: order rows (the order path's)."""
    if not isinstance(payload, OrderAppend):
        raise TypeError(f"an attachment carries order rows, not {type(payload).__name__}")
    return payload
