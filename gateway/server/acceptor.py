"""The asyncio FIX acceptor: many sessions on one port, told apart by their CompIDs.

It owns sockets, timers and the order of writes, nothing else: framing and every session rule
live in :mod:`gateway.fix`. One :class:`Connection` reads one socket; a
:class:`~gateway.server.handle.SessionHandle` carries out its session's actions, and outlives
its connections. Per connection the acceptor enforces the limits a shared gateway needs: a
maximum message size, an inbound message rate, a bounded outbound buffer, a deadline for a
partial message and for the Logon.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import ssl
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from gateway.fix.codec import Frame, FrameParser, Garbled, GarbledMessage, StreamError, split_fields
from gateway.fix.session import AuthenticationRequired, Session, SessionID

from .handle import Limits, SessionDef, SessionHandle, utc
from .ports import Application, FileLogFactory, FileLogPort, SessionStorePort

__all__ = ["Acceptor", "Connection", "Limits", "SessionDef", "Template", "check_password"]

log = logging.getLogger("fixgw.acceptor")


@dataclass(slots=True)
class Template:
    """Accepts any counterparty CompID in ``allowed`` for ``begin_string`` + our CompID."""

    begin_string: str
    sender_comp_id: str
    allowed: frozenset[str]
    make: Callable[[SessionID], SessionDef]


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
        self._handles: dict[SessionID, SessionHandle] = {}
        self._loading: dict[SessionID, asyncio.Lock] = {}
        self.store = store
        self.app = app
        self._file_log = file_log
        self.clock = clock
        self._server: asyncio.Server | None = None
        self._connections: set[Connection] = set()
        self._client_tasks: set[asyncio.Task[object]] = set()
        # before the first message names the session, the most generous configured limits apply
        known = [*definitions, *(t.make(SessionID(t.begin_string, t.sender_comp_id, "*"))
                                 for t in templates)]
        self.pre_logon = Limits(
            max_message_size=max((d.limits.max_message_size for d in known), default=1 << 20),
            first_message_timeout=max((d.settings.logon_timeout for d in known), default=10.0),
        )

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
        if self._client_tasks:
            await asyncio.wait(list(self._client_tasks), timeout=5)
        for h in self._handles.values():
            await h.flush()
        if self._server is not None:
            await self._server.wait_closed()
        for h in self._handles.values():
            if h.file_log is not None:
                h.file_log.close()

    def logged_on(self) -> dict[str, bool]:
        """Every session known so far (configured, or made from a template) -> logged on."""
        return {str(sid): h.session.is_logged_on for sid, h in self._handles.items()}

    async def _on_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = Connection(self, reader, writer)
        self._connections.add(conn)
        task = asyncio.current_task()
        if task is not None:
            self._client_tasks.add(task)
        try:
            await conn.run()
        except Exception:  # a bug must not take other sessions down
            log.exception("connection from %s failed", conn.peer)
        finally:
            self._connections.discard(conn)
            if task is not None:
                self._client_tasks.discard(task)

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

    async def handle(self, sid: SessionID) -> SessionHandle | None:
        """The session's handle, loading its sequence numbers from the store the first time."""
        h = self._handles.get(sid)
        if h is not None:
            return h
        d = self.definition_for(sid)
        if d is None:
            return None
        lock = self._loading.setdefault(sid, asyncio.Lock())
        async with lock:
            h = self._handles.get(sid)
            if h is None:
                rec = await self.store.load(str(sid))
                session = Session(
                    d.settings, d.session_dd, d.app_dds,
                    next_sender=rec.next_sender, next_target=rec.next_target,
                )
                file_log: FileLogPort | None = None
                if self._file_log is not None:
                    file_log = self._file_log(sid)
                h = self._handles[sid] = SessionHandle(
                    d, session, self.store, self.app, file_log,
                    d.schedule.period_start(rec.creation_time.timestamp()),
                )
        return h

    async def new_period_check(self, h: SessionHandle, now: float) -> None:
        """Sequence numbers start again at 1 in a new session period (schedules)."""
        current = h.definition.schedule.period_start(now)
        if current is not None and current != h.period_start:
            await self.store.reset(h.sid_str)
            h.session.next_sender = h.session.next_target = 1
            h.period_start = current

    def session(self, sid: SessionID) -> Session | None:
        h = self._handles.get(sid)
        return None if h is None else h.session

    async def flush(self, sid: SessionID) -> None:
        """Carry out what the application queued on ``sid`` (call after ``session.send``)."""
        h = self._handles.get(sid)
        if h is not None:
            await h.flush()


class Connection:
    """Reads one socket, feeds its frames to the session, runs the session's timers."""

    def __init__(
        self, acceptor: Acceptor, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.acceptor = acceptor
        self.reader = reader
        self.writer = writer
        peer = writer.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        self.peer_ip = peer[0] if isinstance(peer, tuple) else None
        self.handle: SessionHandle | None = None
        self.parser = FrameParser(acceptor.pre_logon.max_message_size)
        self._pending: list[Frame | Garbled] = []
        self.closed = False
        self._close_reason = ""
        self._partial_since: float | None = None
        self._timer: asyncio.Task[None] | None = None
        self._tokens = 0.0
        self._token_time = 0.0

    # ------------------------------------------------------------------------------------------
    def abort(self, reason: str) -> None:
        """Close the socket (after what is already written) and release the session."""
        if not self.closed:
            self.closed = True
            self._close_reason = reason
            log.info("%s: closing: %s", self.peer, reason)
            self.writer.close()
        self._detach()

    def _detach(self) -> None:
        """Release the session at once, so a reconnect is not taken for a duplicate."""
        h = self.handle
        if h is None or h.connection is not self:
            return
        h.connection = None
        now = self.acceptor.clock()
        h.session.connection_lost(now)
        h.note(f"Disconnected ({self._close_reason or 'peer closed'})", now)
        h.dispatch(now)

    def write(self, data: bytes, max_buffered: int) -> None:
        if self.closed:
            return
        self.writer.write(data)
        transport = self.writer.transport
        if transport.get_write_buffer_size() > max_buffered:
            if self.handle is not None:
                self.handle.note(
                    "Disconnecting: slow reader (outbound buffer over the limit)",
                    self.acceptor.clock(),
                )
            self.abort("slow reader")
            transport.abort()

    async def run(self) -> None:
        try:
            first = await self._first_frame()
            if first is None:
                return
            if not await self._attach(first):
                return
            self._timer = asyncio.create_task(self._timer_loop())
            await self._receive(first)
            await self._process(self._pending)
            self._pending = []
            while not self.closed:
                data = await self.reader.read(1 << 16)
                if not data:
                    break
                self.parser.feed(data)
                await self._drain_frames()
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError) as exc:
            log.info("%s: connection error: %s", self.peer, exc)
        finally:
            await self._finish()

    async def _first_frame(self) -> bytes | None:
        deadline = self.acceptor.clock() + self.acceptor.pre_logon.first_message_timeout
        while True:
            events = self.parser.frames()
            for i, ev in enumerate(events):
                if isinstance(ev, Frame):
                    rest = events[i + 1 :]
                    if any(isinstance(e, StreamError) for e in rest):
                        self.abort("unrecoverable stream after the first message")
                        return None
                    self._pending = [e for e in rest if isinstance(e, Frame | Garbled)]
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
        h = await self.acceptor.handle(sid)
        if h is None:
            self.abort(f"unknown session {sid}")
            return False
        d = h.definition
        if d.allowed_networks is not None:
            try:
                ip = ipaddress.ip_address(self.peer_ip or "")
            except ValueError:
                ip = None
            if ip is None or not any(ip in net for net in d.allowed_networks):
                self.abort(f"{sid}: address {self.peer_ip} not allowed")
                return False
        now = self.acceptor.clock()
        if not d.schedule.is_session_time(now):
            self.abort(f"{sid}: Logon outside of the session schedule")
            return False
        if h.connection is not None:
            self.abort(f"{sid}: session already connected (duplicate identity)")
            return False
        h.connection = self
        self.handle = h
        async with asyncio.timeout(30):
            await h.flush()  # what the previous connection left (stored, never written here)
        await self.acceptor.new_period_check(h, now)
        self.parser.max_size = d.limits.max_message_size
        self._tokens = float(d.limits.rate_burst)
        self._token_time = now
        h.session.connect(now)
        h.note(f"Accepted connection from {self.peer}", now)
        return True

    async def _drain_frames(self) -> None:
        await self._process(self.parser.frames())

    async def _process(self, events: Sequence[Frame | Garbled | StreamError]) -> None:
        h = self.handle
        assert h is not None
        for ev in events:
            if self.closed:
                return
            if isinstance(ev, StreamError):
                h.note(f"Disconnecting: unrecoverable stream: {ev.reason}", self.acceptor.clock())
                await h.flush()
                self.abort(ev.reason)
                return
            if isinstance(ev, Garbled):
                now = self.acceptor.clock()
                h.session.receive_garbled(ev.reason, now)
                h.dispatch(now)
                continue
            await self._receive(ev.data, flush=False)
        await h.flush()
        now = self.acceptor.clock()
        self._partial_since = (self._partial_since or now) if self.parser.buffered else None

    async def _receive(self, data: bytes, flush: bool = True) -> None:
        h = self.handle
        assert h is not None
        now = self.acceptor.clock()
        when = utc(now)
        h.store.log(h.sid_str, "in", data, when)
        if h.file_log is not None:
            h.file_log.incoming(data, when)
        session = h.session
        if self._take_token(now):
            session.receive_frame(data, now)
            h.dispatch(now)
        elif h.definition.limits.rate_action == "logout":
            session.logout(now, "message rate limit exceeded")
            h.dispatch(now)
        else:
            session.receive_frame(data, now)
            h.dispatch(now, throttled=True)
        if flush:
            await h.flush()

    def _take_token(self, now: float) -> bool:
        assert self.handle is not None
        limits = self.handle.definition.limits
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

    async def authenticate(self, ev: AuthenticationRequired) -> None:
        h = self.handle
        assert h is not None
        d = h.definition
        ok, reason = True, ""
        if d.username is not None and ev.username != d.username:
            ok, reason = False, "unknown Username (553)"
        elif d.password_hash is not None:
            ok = await asyncio.to_thread(check_password, ev.password, d.password_hash)
            reason = "" if ok else "wrong Password (554)"
        if h.connection is not self:
            return
        now = self.acceptor.clock()
        h.session.logon_authenticated(ok, reason, now)
        h.dispatch(now)
        await h.flush()

    # ------------------------------------------------------------------------------------------
    async def _timer_loop(self) -> None:
        h = self.handle
        assert h is not None
        session = h.session
        limits = h.definition.limits
        while not self.closed:
            deadline = session.next_deadline()
            now = self.acceptor.clock()
            wait = 1.0 if deadline is None else min(max(deadline - now, 0.0), 1.0)
            await asyncio.sleep(wait)
            if self.closed:
                return
            now = self.acceptor.clock()
            session.on_timer(now)
            if session.is_logged_on and not h.definition.schedule.is_session_time(now):
                session.logout(now, "end of the session schedule")
            if (
                self._partial_since is not None
                and now - self._partial_since > limits.partial_message_timeout
            ):
                h.note("Disconnecting: partial message held too long", now)
                self.abort("partial message timeout")
            h.dispatch(now)
            await h.flush()

    async def _finish(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if not self.closed:
            self.closed = True
            self.writer.close()
        h = self.handle
        self._detach()
        if h is not None:
            try:
                await h.flush()  # persists what was queued but never written
            except Exception:
                log.exception("%s: could not save the session state", h.sid_str)
        try:
            await self.writer.wait_closed()
        except (ConnectionError, ssl.SSLError):
            pass
