"""The asyncio FIX acceptor: many sessions on one port, told apart by their CompIDs.

It owns sockets, timers and the order of writes, nothing else: framing and every session rule
live in :mod:`gateway.fix`. One :class:`Connection` drives one socket; a session (and its
sequence numbers) outlives its connections. Per connection it enforces the limits a shared
gateway needs: a maximum message size, an inbound message rate, a bounded outbound buffer, a
deadline for a partial message and for the Logon.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import ssl
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from gateway.fix.codec import Frame, FrameParser, Garbled, GarbledMessage, StreamError, split_fields
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

from .ports import Application, FileLogFactory, FileLogPort, SessionStorePort

log = logging.getLogger("fixgw.acceptor")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


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


@dataclass(slots=True)
class Template:
    """Accepts any counterparty CompID in ``allowed`` for ``begin_string`` + our CompID."""

    begin_string: str
    sender_comp_id: str
    allowed: frozenset[str]
    make: Callable[[SessionID], SessionDef]


@dataclass(slots=True, eq=False)
class _Entry:
    definition: SessionDef
    session: Session
    period_start: float | None
    connection: Connection | None = None


def _utc(now: float) -> datetime:
    return datetime.fromtimestamp(now, UTC)


def check_password(password: str | None, password_hash: bytes) -> bool:
    """bcrypt check (run off the event loop: it is deliberately slow)."""
    import bcrypt

    if password is None:
        return False
    try:
        return bcrypt.checkpw(password.encode(), password_hash)
    except ValueError:
        return False


class Acceptor:
    def __init__(
        self,
        definitions: Sequence[SessionDef],
        store: SessionStorePort,
        app: Application,
        *,
        templates: Sequence[Template] = (),
        file_log: FileLogFactory | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._defs = {d.sid: d for d in definitions}
        self._templates = list(templates)
        self._entries: dict[SessionID, _Entry] = {}
        self._loading: dict[SessionID, asyncio.Lock] = {}
        self.store = store
        self.app = app
        self._file_log = file_log
        self._logs: dict[SessionID, FileLogPort] = {}
        self.clock = clock
        self._server: asyncio.Server | None = None
        self._connections: set[Connection] = set()

    # ------------------------------------------------------------------------------------------
    async def start(
        self, host: str = "127.0.0.1", port: int = 0, ssl_context: ssl.SSLContext | None = None
    ) -> tuple[str, int]:
        self._server = await asyncio.start_server(
            self._on_client, host, port, ssl=ssl_context, limit=1 << 16
        )
        sock = self._server.sockets[0].getsockname()
        return str(sock[0]), int(sock[1])

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for conn in list(self._connections):
            conn.abort("acceptor stopping")
        if self._server is not None:
            await self._server.wait_closed()
        for fl in self._logs.values():
            fl.close()

    async def _on_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = Connection(self, reader, writer)
        self._connections.add(conn)
        try:
            await conn.run()
        except Exception:  # a bug must not take other sessions down
            log.exception("connection from %s failed", conn.peer)
        finally:
            self._connections.discard(conn)

    # ------------------------------------------------------------------------------------------
    def definition_for(self, sid: SessionID) -> SessionDef | None:
        d = self._defs.get(sid)
        if d is not None:
            return d
        for t in self._templates:
            if (
                t.begin_string == sid.begin_string
                and t.sender_comp_id == sid.sender_comp_id
                and sid.target_comp_id in t.allowed
            ):
                d = t.make(sid)
                self._defs[sid] = d
                return d
        return None

    async def entry(self, sid: SessionID) -> _Entry | None:
        e = self._entries.get(sid)
        if e is not None:
            return e
        d = self.definition_for(sid)
        if d is None:
            return None
        lock = self._loading.setdefault(sid, asyncio.Lock())
        async with lock:
            e = self._entries.get(sid)
            if e is None:
                rec = await self.store.load(str(sid))
                session = Session(
                    d.settings, d.session_dd, d.app_dds,
                    next_sender=rec.next_sender, next_target=rec.next_target,
                )
                e = self._entries[sid] = _Entry(
                    d, session, d.schedule.period_start(rec.creation_time.timestamp())
                )
        return e

    async def new_period_check(self, e: _Entry, now: float) -> None:
        """Sequence numbers start again at 1 in a new session period (schedules)."""
        current = e.definition.schedule.period_start(now)
        if current is not None and current != e.period_start:
            await self.store.reset(str(e.definition.sid))
            e.session.next_sender = e.session.next_target = 1
            e.period_start = current

    def session(self, sid: SessionID) -> Session | None:
        e = self._entries.get(sid)
        return None if e is None else e.session

    def file_log(self, sid: SessionID) -> FileLogPort | None:
        if self._file_log is None:
            return None
        fl = self._logs.get(sid)
        if fl is None:
            fl = self._logs[sid] = self._file_log(sid)
        return fl

    async def flush(self, sid: SessionID) -> None:
        """Write what the application queued on ``sid`` (call after ``session.send``)."""
        e = self._entries.get(sid)
        if e is not None and e.connection is not None:
            await e.connection.flush()


class Connection:
    def __init__(
        self, acceptor: Acceptor, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.acceptor = acceptor
        self.reader = reader
        self.writer = writer
        peer = writer.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        self.peer_ip = peer[0] if isinstance(peer, tuple) else None
        self.entry: _Entry | None = None
        self.parser = FrameParser(Limits().max_message_size)
        self._lock = asyncio.Lock()
        self._closed = False
        self._close_reason = ""
        self._partial_since: float | None = None
        self._timer: asyncio.Task[None] | None = None
        self._tokens = 0.0
        self._token_time = 0.0
        self._sid_str = ""
        self._log: FileLogPort | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._saved: tuple[int, int] | None = None

    # ------------------------------------------------------------------------------------------
    def abort(self, reason: str) -> None:
        if not self._closed:
            self._closed = True
            self._close_reason = reason
            log.info("%s: closing: %s", self.peer, reason)
            self.writer.close()
        self._detach()

    def _detach(self) -> None:
        """Release the session at once, so a reconnect is not taken for a duplicate."""
        entry = self.entry
        if entry is None or entry.connection is not self:
            return
        entry.connection = None
        entry.session.connection_lost(self.acceptor.clock())
        self._event(f"Disconnected ({self._close_reason or 'peer closed'})")
        self._dispatch_events()

    async def run(self) -> None:
        try:
            first = await self._first_frame()
            if first is None:
                return
            if not await self._attach(first):
                return
            self._timer = asyncio.create_task(self._timer_loop())
            await self._receive(first)
            while not self._closed:
                data = await self.reader.read(1 << 16)
                if not data:
                    break
                self._feed(data)
                await self._drain_frames()
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError) as exc:
            log.info("%s: connection error: %s", self.peer, exc)
        finally:
            await self._finish()

    async def _first_frame(self) -> bytes | None:
        limits = Limits()
        deadline = self.acceptor.clock() + limits.first_message_timeout
        while True:
            for ev in self.parser.frames():
                if isinstance(ev, Frame):
                    return ev.data
                if isinstance(ev, StreamError | Garbled):
                    self.abort(f"first message unusable: {ev.reason}")
                    return None
            timeout = deadline - self.acceptor.clock()
            if timeout <= 0:
                self.abort("no Logon received in time")
                return None
            try:
                data = await asyncio.wait_for(self.reader.read(1 << 16), timeout)
            except TimeoutError:
                self.abort("no Logon received in time")
                return None
            if not data:
                self.abort("closed before logging on")
                return None
            self.parser.feed(data)

    async def _attach(self, first: bytes) -> bool:
        try:
            fields = split_fields(first)
        except GarbledMessage as exc:
            self.abort(f"first message garbled: {exc}")
            return False
        head = dict(fields[:12])
        begin, theirs, ours = head.get(8), head.get(49), head.get(56)
        if not begin or not theirs or not ours:
            self.abort("first message without BeginString or CompIDs")
            return False
        sid = SessionID(begin.decode(errors="replace"), ours.decode(errors="replace"),
                        theirs.decode(errors="replace"))
        entry = await self.acceptor.entry(sid)
        if entry is None:
            self.abort(f"unknown session {sid}")
            return False
        d = entry.definition
        if d.allowed_networks is not None:
            try:
                ip = ipaddress.ip_address(self.peer_ip or "")
            except ValueError:
                ip = None
            if ip is None or not any(ip in net for net in d.allowed_networks):
                self.abort(f"{sid}: address {self.peer_ip} not allowed")
                return False
        if entry.connection is not None:
            self.abort(f"{sid}: session already connected (duplicate identity)")
            return False
        now = self.acceptor.clock()
        if not d.schedule.is_session_time(now):
            self.abort(f"{sid}: Logon outside of the session schedule")
            return False
        await self.acceptor.new_period_check(entry, now)
        if entry.connection is not None:
            self.abort(f"{sid}: session already connected (duplicate identity)")
            return False
        entry.connection = self
        self.entry = entry
        self.parser.max_size = d.limits.max_message_size
        self._tokens = float(d.limits.rate_burst)
        self._token_time = self.acceptor.clock()
        self._sid_str = str(sid)
        self._log = self.acceptor.file_log(sid)
        entry.session.connect(self.acceptor.clock())
        self._event(f"Accepted connection from {self.peer}")
        return True

    def _feed(self, data: bytes) -> None:
        self.parser.feed(data)

    async def _drain_frames(self) -> None:
        for ev in self.parser.frames():
            if isinstance(ev, StreamError):
                self._event(f"Disconnecting: unrecoverable stream: {ev.reason}")
                await self.flush()
                self.abort(ev.reason)
                return
            if isinstance(ev, Garbled):
                assert self.entry is not None
                self.entry.session.receive_garbled(ev.reason, self.acceptor.clock())
                self._dispatch_events()
                continue
            await self._receive(ev.data, flush=False)
        await self.flush()
        now = self.acceptor.clock()
        self._partial_since = (self._partial_since or now) if self.parser.buffered else None

    async def _receive(self, data: bytes, flush: bool = True) -> None:
        entry = self.entry
        assert entry is not None
        now = self.acceptor.clock()
        when = _utc(now)
        self.acceptor.store.log(self._sid_str, "in", data, when)
        if self._log is not None:
            self._log.incoming(data, when)
        session = entry.session
        if not self._take_token(now):
            if entry.definition.limits.rate_action == "logout":
                session.logout(now, "message rate limit exceeded")
                self._dispatch_events()
                await self.flush()
                return
            session.receive_frame(data, now)
            self._throttle_events()
        else:
            session.receive_frame(data, now)
            self._dispatch_events()
        if flush:
            await self.flush()

    def _take_token(self, now: float) -> bool:
        assert self.entry is not None
        limits = self.entry.definition.limits
        if limits.rate_limit is None:
            return True
        self._tokens = min(
            float(limits.rate_burst), self._tokens + (now - self._token_time) * limits.rate_limit
        )
        self._token_time = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False

    def _throttle_events(self) -> None:
        """Over the rate: administrative messages are still honoured; application messages
        get BusinessMessageReject (380=99, "Throttle limit exceeded") instead of processing."""
        assert self.entry is not None
        session = self.entry.session
        now = self.acceptor.clock()
        for ev in session.events():
            if isinstance(ev, AppMessage):
                session.business_reject(ev.message, 99, now, text="Throttle limit exceeded")
            else:
                self._handle_event(ev)

    def _dispatch_events(self) -> None:
        assert self.entry is not None
        for ev in self.entry.session.events():
            self._handle_event(ev)

    def _handle_event(self, ev: object) -> None:
        entry = self.entry
        assert entry is not None
        session = entry.session
        now = self.acceptor.clock()
        app = self.acceptor.app
        if isinstance(ev, Note):
            self._event(ev.text)
        elif isinstance(ev, AppMessage):
            try:
                app.on_message(session, ev.message, now)
            except Exception:
                log.exception("%s: application failed on %r", self._sid_str, ev.message)
                session.business_reject(ev.message, 4, now, text="Application error")
        elif isinstance(ev, LoggedOn):
            self._event("Logon complete")
            app.on_logon(session, now)
        elif isinstance(ev, LoggedOut):
            self._event(f"Logged out: {ev.reason}")
            app.on_logout(session, now)
        elif isinstance(ev, AuthenticationRequired):
            task = asyncio.create_task(self._authenticate(ev))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _authenticate(self, ev: AuthenticationRequired) -> None:
        entry = self.entry
        assert entry is not None
        d = entry.definition
        ok, reason = True, ""
        if d.username is not None and ev.username != d.username:
            ok, reason = False, "unknown Username (553)"
        elif d.password_hash is not None:
            ok = await asyncio.to_thread(check_password, ev.password, d.password_hash)
            reason = "" if ok else "wrong Password (554)"
        entry.session.logon_authenticated(ok, reason, self.acceptor.clock())
        self._dispatch_events()
        await self.flush()

    def _event(self, text: str) -> None:
        if self._log is not None:
            self._log.event(text, _utc(self.acceptor.clock()))
        log.debug("%s: %s", self._sid_str or self.peer, text)

    # ------------------------------------------------------------------------------------------
    async def flush(self) -> None:
        """Carry out the session's actions in order: persist+send, resend, reset, close."""
        entry = self.entry
        if entry is None:
            return
        async with self._lock:
            session = entry.session
            store = self.acceptor.store
            while True:
                actions = session.next_actions()
                if not actions:
                    break
                batch: list[Send] = []
                for a in actions:
                    if isinstance(a, Send):
                        batch.append(a)
                        continue
                    await self._write_sends(batch)
                    batch = []
                    if isinstance(a, Resend):
                        await self._serve_resend(a)
                    elif isinstance(a, ResetStore):
                        await store.reset(self._sid_str)
                    elif isinstance(a, Close):
                        self.abort(a.reason)
                await self._write_sends(batch)
            # keep the target sequence number durable even when nothing was sent
            if (session.next_target, session.next_sender) != self._saved:
                await store.save(
                    self._sid_str,
                    next_sender=session.next_sender,
                    next_target=session.next_target,
                )
                self._saved = (session.next_target, session.next_sender)

    async def _write_sends(self, batch: list[Send]) -> None:
        if not batch:
            return
        entry = self.entry
        assert entry is not None
        session = entry.session
        await self.acceptor.store.save(
            self._sid_str,
            sent=[(s.seq, s.data) for s in batch if s.persist],
            next_sender=session.next_sender,
            next_target=session.next_target,
        )
        self._saved = (session.next_target, session.next_sender)
        self._write([s.data for s in batch])

    def _write(self, chunks: list[bytes]) -> None:
        if self._closed or not chunks:
            return
        now = self.acceptor.clock()
        when = _utc(now)
        for c in chunks:
            self.acceptor.store.log(self._sid_str, "out", c, when)
            if self._log is not None:
                self._log.outgoing(c, when)
        self.writer.write(b"".join(chunks))
        assert self.entry is not None
        limit = self.entry.definition.limits.max_outbound_bytes
        transport = self.writer.transport
        if transport.get_write_buffer_size() > limit:
            self._event("Disconnecting: slow reader (outbound buffer over the limit)")
            self.abort("slow reader")
            transport.abort()

    async def _serve_resend(self, a: Resend) -> None:
        entry = self.entry
        assert entry is not None
        now = self.acceptor.clock()
        resender = entry.session.resender(a.begin, a.end, now)
        cursor, chunk_size = a.begin, 1000
        while cursor <= a.end:
            stored = await self.acceptor.store.get_sent(self._sid_str, cursor, a.end, chunk_size)
            self._write(resender.add(stored))
            if len(stored) < chunk_size:
                break
            cursor = stored[-1][0] + 1
        self._write(resender.finish())

    # ------------------------------------------------------------------------------------------
    async def _timer_loop(self) -> None:
        entry = self.entry
        assert entry is not None
        session = entry.session
        limits = entry.definition.limits
        while not self._closed:
            now = self.acceptor.clock()
            deadline = session.next_deadline()
            wait = 1.0 if deadline is None else min(max(deadline - now, 0.0), 1.0)
            await asyncio.sleep(wait)
            if self._closed:
                return
            now = self.acceptor.clock()
            session.on_timer(now)
            if session.is_logged_on and not entry.definition.schedule.is_session_time(now):
                session.logout(now, "end of the session schedule")
            if (
                self._partial_since is not None
                and now - self._partial_since > limits.partial_message_timeout
            ):
                self._event("Disconnecting: partial message held too long")
                self.abort("partial message timeout")
            self._dispatch_events()
            await self.flush()

    async def _finish(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if not self._closed:
            self._closed = True
            self.writer.close()
        entry = self.entry
        self._detach()
        if entry is not None:
            session = entry.session
            try:
                await self.acceptor.store.save(
                    self._sid_str, next_sender=session.next_sender, next_target=session.next_target
                )
            except Exception:
                log.exception("%s: could not save sequence numbers", self._sid_str)
        try:
            await self.writer.wait_closed()
        except (ConnectionError, ssl.SSLError):
            pass


def session_def_from(base: SessionDef, sid: SessionID) -> SessionDef:
    """A copy of ``base`` for another SessionID (used by templates)."""
    return replace(base, settings=replace(base.settings, session_id=sid))
