"""One configured session on the asyncio side: its Session, its current connection (if any),
and the one place its actions are carried out, in order, under one lock.

Write-ahead (Invariant 1): every new outbound message is committed to the store, with the
sequence numbers, before its bytes reach the socket. Resends are served from the store in
chunks between the writes that precede and follow them, so they never interleave wrongly with
live traffic.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from gateway.fix.dictionary import DataDictionary
from gateway.fix.schedule import Schedule
from gateway.fix.session import (
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

from .ports import Application, FileLogPort, SessionStorePort

if TYPE_CHECKING:
    import ipaddress

    from .acceptor import Connection

    Network = ipaddress.IPv4Network | ipaddress.IPv6Network

log = logging.getLogger("fixgw.session")

RESEND_CHUNK = 1000


@dataclass(frozen=True, slots=True)
class Limits:
    max_message_size: int = 1 << 20
    max_outbound_bytes: int = 8 << 20
    """A reader this far behind is disconnected (memory stays bounded)."""
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
        self.period_start = period_start
        self.connection: Connection | None = None
        self.sid_str = str(definition.sid)
        self._lock = asyncio.Lock()
        self._saved: tuple[int, int] | None = None
        self._tasks: set[asyncio.Task[None]] = set()

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
                    self.app.on_message(session, ev.message, now)
                except Exception:
                    log.exception("%s: application failed on %r", self.sid_str, ev.message)
                    session.business_reject(ev.message, 4, now, text="Application error")
            elif isinstance(ev, LoggedOn):
                self.note("Logon complete", now)
                self.app.on_logon(session, now)
            elif isinstance(ev, LoggedOut):
                self.note(f"Logged out: {ev.reason}", now)
                self.app.on_logout(session, now)
            elif isinstance(ev, AuthenticationRequired):
                conn = self.connection
                if conn is not None:
                    task = asyncio.create_task(conn.authenticate(ev))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)

    # ------------------------------------------------------------------------------------------
    # actions

    async def flush(self) -> None:
        """Carry out the session's actions in order: persist+send, resend, reset, close."""
        async with self._lock:
            session = self.session
            while True:
                actions = session.next_actions()
                if not actions:
                    break
                batch: list[Send] = []
                for a in actions:
                    if isinstance(a, Send):
                        batch.append(a)
                        continue
                    await self._send_batch(batch)
                    batch = []
                    if isinstance(a, Resend):
                        await self._serve_resend(a)
                    elif isinstance(a, ResetStore):
                        await self.store.reset(self.sid_str)
                        self._saved = None
                    elif isinstance(a, Close):
                        conn = self.connection
                        if conn is not None:
                            conn.abort(a.reason)
                await self._send_batch(batch)
            # the target sequence number stays durable even when nothing was sent
            if (session.next_sender, session.next_target) != self._saved:
                await self.save_seq()

    async def save_seq(self) -> None:
        s = self.session
        await self.store.save(self.sid_str, next_sender=s.next_sender, next_target=s.next_target)
        self._saved = (s.next_sender, s.next_target)

    async def _send_batch(self, batch: list[Send]) -> None:
        if not batch:
            return
        s = self.session
        reports = [(a.ref, a.seq) for a in batch if a.ref is not None]
        attached = [a.attachment for a in batch if a.attachment is not None]
        await self.store.save(
            self.sid_str,
            sent=[(a.seq, a.data) for a in batch if a.persist],
            next_sender=s.next_sender,
            next_target=s.next_target,
            reports=reports,
            appends=[x.payload for x in attached],
        )
        for x in attached:
            x.committed()
        self._saved = (s.next_sender, s.next_target)
        self._write([a.data for a in batch if a.write])

    def _write(self, chunks: list[bytes]) -> None:
        conn = self.connection
        if conn is None or conn.closed or not chunks:
            return
        now = conn.acceptor.clock()
        when = utc(now)
        for c in chunks:
            self.store.log(self.sid_str, "out", c, when)
            if self.file_log is not None:
                self.file_log.outgoing(c, when)
        conn.write(b"".join(chunks), self.definition.limits.max_outbound_bytes)

    async def _serve_resend(self, a: Resend) -> None:
        conn = self.connection
        now = conn.acceptor.clock() if conn is not None else 0.0
        resender = self.session.resender(a.begin, a.end, now)
        cursor = a.begin
        while cursor <= a.end:
            stored = await self.store.get_sent(self.sid_str, cursor, a.end, RESEND_CHUNK)
            self._write(resender.add(stored))
            if len(stored) < RESEND_CHUNK:
                break
            cursor = stored[-1][0] + 1
        self._write(resender.finish())
