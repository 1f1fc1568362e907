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
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from gateway.fix.codec import Frame, FrameParser, Garbled, GarbledMessage, StreamError, split_fields
from gateway.fix.session import AuthenticationRequired, Session, SessionID
from gateway.store.errors import NodeFenced, StoreUnavailable

from .handle import Limits, SessionDef, SessionHandle, utc
from .journal import SeqJournal
from .ports import Application, FileLogFactory, FileLogPort, SessionStorePort
from .traffic import Traffic

__all__ = ["Acceptor", "Connection", "Limits", "SessionDef", "Template", "check_password"]

log = logging.getLogger("fixgw.acceptor")

PACED_LIMIT_S = 10.0
"""A connection held over its inbound rate (reading paused) this long is logged out."""


@dataclass(slots=True)
class Template:
    """Accepts any counterparty CompID in ``allowed`` for ``begin_string`` + our CompID."""

    begin_string: str
    sender_comp_id: str
    allowed: frozenset[str]
    make: Callable[[SessionID], SessionDef]


class LogonThrottle:
    """Failed Logons slow down the next ones from the same address, so that guessing costs the
    guesser time and cannot crowd out the real client (whose Logon is only delayed, never
    refused, while fewer than ``max_pending`` Logons of its address are being checked).

    After ``k`` failures in a row from an address, its next password check waits
    ``min(base * 2 ** (k - 1), cap)`` seconds; a success forgets the address. At most
    ``max_checks`` bcrypt checks run at once (bcrypt is deliberately slow: a flood of Logons
    must not take every thread).
    """

    def __init__(
        self, base: float = 0.25, cap: float = 4.0, max_pending: int = 8, max_checks: int = 2,
        max_addresses: int = 10_000, max_pending_total: int = 256,
    ) -> None:
        self.base, self.cap = base, cap
        self.max_pending = max_pending
        self.max_pending_total = max_pending_total
        self._failures: dict[str, int] = {}
        self._pending: dict[str, int] = {}
        self._checks = asyncio.Semaphore(max_checks)
        self._max_addresses = max_addresses

    @staticmethod
    def key(address: str) -> str:
        """Who an address counts as: itself, or its /64 for IPv6 (one host's share)."""
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return address
        if ip.version == 6:
            return str(ipaddress.ip_network(f"{ip}/64", strict=False))
        return str(ip)

    def delay(self, address: str) -> float:
        k = self._failures.get(self.key(address), 0)
        return 0.0 if k == 0 else min(self.base * 2 ** (k - 1), self.cap)

    async def check(
        self, address: str, verify: Callable[[], bool]
    ) -> tuple[bool, str]:
        """Run ``verify`` (in a thread) after the address's delay; (ok, why not)."""
        delay = self.delay(address)
        address = self.key(address)
        pending = self._pending.get(address, 0)
        if pending >= self.max_pending:
            return False, f"{pending} Logons from {address} are already being checked"
        if sum(self._pending.values()) >= self.max_pending_total:
            return False, "too many Logons are being checked"
        self._pending[address] = pending + 1
        try:
            if delay:
                await asyncio.sleep(delay)
            async with self._checks:
                ok = await asyncio.to_thread(verify)
        finally:
            left = self._pending[address] - 1
            if left:
                self._pending[address] = left
            else:
                del self._pending[address]
        if ok:
            self._failures.pop(address, None)
        else:
            if len(self._failures) >= self._max_addresses and address not in self._failures:
                self._failures.pop(next(iter(self._failures)))
            self._failures[address] = self._failures.get(address, 0) + 1
        return ok, ""


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
        message_log: tuple[bool, bool] = (True, True),
        clock: Callable[[], float] = time.time,
        journal: SeqJournal | None = None,
    ) -> None:
        self._defs = {d.sid: d for d in definitions}
        self._templates = list(templates)
        self._handles: dict[SessionID, SessionHandle] = {}
        self._loading: dict[SessionID, asyncio.Lock] = {}
        self.store = store
        self.app = app
        self._file_log = file_log
        self._message_log = message_log
        """Whether each message is logged to (the store, the file log)."""
        self.clock = clock
        self.journal = journal
        self.logout_while_down: Callable[[], bool] = lambda: True
        """Whether a Logout may be written while the store is down (its number kept by the
        journal); not when other nodes share the store."""
        self.owner_check: Callable[[str], Awaitable[str | None]] | None = None
        """Invariant 9: None when this node serves the session (claiming it if no live node
        does), else who does; a Logon for another node's session is refused."""
        self.logon_throttle = LogonThrottle()
        known = [*definitions, *(t.make(SessionID(t.begin_string, t.sender_comp_id, "*"))
                                 for t in templates)]
        self.traffic = Traffic({mt for d in known for dd in (d.session_dd, *d.app_dds.values())
                                for mt in dd.messages})
        """What crosses each session, counted (metrics, health) and its refusals logged."""
        self.disabled: dict[str, str] = {}
        """Sessions an operator disabled -> why: their Logons are refused."""
        self.outages = 0
        self.store_down: str | None = None
        """Why Logons are answered with a Logout (the store is down, or its outage is being
        caught up on); None: they are not."""
        self._server: asyncio.Server | None = None
        self._connections: set[Connection] = set()
        self._client_tasks: set[asyncio.Task[object]] = set()
        # before the first message names the session, the most generous configured limits apply
        self.pre_logon = Limits(
            max_message_size=max((d.limits.max_message_size for d in known), default=1 << 20),
            first_message_timeout=max((d.settings.logon_timeout for d in known), default=10.0),
        )

    # ------------------------------------------------------------------------------------------
    async def start(
        self, host: str = "127.0.0.1", port: int = 0, ssl_context: ssl.SSLContext | None = None
    ) -> tuple[str, int]:
        for sid in list(self._defs):  # loaded now: a session can be refused in an outage
            await self.handle(sid)
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

    def store_lost(self, why: str) -> None:
        """The store went down: every connection ends with a Logout saying so, and Logons get
        the same answer until :meth:`store_back`."""
        self.store_down = why
        self.outages += 1
        for h in list(self._handles.values()):
            task = asyncio.get_running_loop().create_task(h.store_lost(why, self.outages))
            self._client_tasks.add(task)
            task.add_done_callback(self._client_tasks.discard)

    async def store_back(self) -> None:
        """The store takes writes again and what the outage left is stored: accept Logons
        (unless it went down again meanwhile)."""
        outage = self.outages
        for h in list(self._handles.values()):
            await h.store_back(outage)
        if self.outages == outage:
            self.store_down = None

    async def reload(self, session_ids: set[str]) -> None:
        """Sessions this node takes over: their sequence numbers are read again from the store
        (the node that served them moved them on), in the handles as they are (a Logon may be
        holding one)."""
        for sid, h in list(self._handles.items()):
            if str(sid) in session_ids:
                rec = await self.store.load(str(sid))
                await h.reload(rec.next_sender, rec.next_target,
                               h.definition.schedule.period_start(rec.creation_time.timestamp()))

    async def end_session(self, session_id: str, why: str) -> None:
        """End ``session_id``'s connection, if any, with a Logout saying ``why`` (stored as any
        message: this node still owns the session's numbers)."""
        for sid, h in list(self._handles.items()):
            if str(sid) == session_id and h.connection is not None:
                await h.refuse(why, self.clock())
                conn = h.connection
                if conn is not None:
                    conn.abort(why)

    def abort_all(self, why: str) -> None:
        """End every connection at once, writing nothing more (this node must stop)."""
        self.store_down = why
        for conn in list(self._connections):
            conn.abort(why)

    # ------------------------------------------------------------------------------------------
    # what an operator sees and does (the admin API)

    def _handle_of(self, session_id: str) -> SessionHandle:
        for sid, h in self._handles.items():
            if str(sid) == session_id:
                return h
        raise KeyError(session_id)

    def sessions_state(self) -> list[dict[str, Any]]:
        """Every configured session (and each made from a template since the start), logged
        on or not: its sequence numbers, connection and counts."""
        out = []
        for sid in sorted(self._defs, key=str):
            key = str(sid)
            h = self._handles.get(sid)
            st = self.traffic.sessions.get(key)
            session = h.session if h is not None else None
            out.append({
                "session": key, "target_comp_id": sid.target_comp_id,
                "begin_string": sid.begin_string,
                "logged_on": bool(session is not None and session.is_logged_on),
                "connected": h is not None and h.connection is not None,
                "peer": h.peer if h is not None and h.connection is not None else None,
                "enabled": key not in self.disabled,
                "disabled_because": self.disabled.get(key),
                "next_sender_seq": session.next_sender if session is not None else 1,
                "next_target_seq": session.next_target if session is not None else 1,
                "last_logon": _iso(st.last_logon_ns) if st is not None else None,
                "last_disconnect": _iso(st.last_disconnect_ns) if st is not None else None,
                "last_disconnect_reason": st.last_disconnect_reason if st is not None else "",
                "logons": st.logons if st is not None else 0,
                "messages_in": sum(st.messages_in.values()) if st is not None else 0,
                "messages_out": sum(st.messages_out.values()) if st is not None else 0,
                "rejects": st.rejects_total if st is not None else 0,
            })
        return out

    async def logout_session(self, session_id: str, why: str) -> None:
        """Log ``session_id`` out (a Logout saying ``why``; the connection closes after the
        client's answer or the logout timeout). KeyError: no such session; LookupError: it is
        not logged on."""
        h = self._handle_of(session_id)
        if not h.session.is_logged_on:
            raise LookupError(f"{session_id} is not logged on")
        now = self.clock()
        h.session.logout(now, why[:200])
        h.dispatch(now)
        await h.flush()

    def disconnect_session(self, session_id: str, why: str) -> None:
        """Drop ``session_id``'s connection at once (no Logout). KeyError: no such session;
        LookupError: it is not connected."""
        h = self._handle_of(session_id)
        conn = h.connection
        if conn is None:
            raise LookupError(f"{session_id} is not connected")
        conn.abort(why)

    async def set_sequence_numbers(self, session_id: str, next_sender: int | None,
                                   next_target: int | None) -> tuple[int, int]:
        """Set the next MsgSeqNum the gateway sends and the one it expects, stored first;
        only while the session is not connected (the numbers of a live session move) and served
        by this node. Returns the numbers now. KeyError: no such session; RuntimeError: it is
        connected, or another node serves it (which one, said)."""
        h = self._handle_of(session_id)
        await self._served_here(session_id)
        s = h.session
        sender = s.next_sender if next_sender is None else next_sender
        target = s.next_target if next_target is None else next_target
        await h.renumber(sender, target)
        return s.next_sender, s.next_target

    async def _served_here(self, session_id: str) -> None:
        """Invariant 9: RuntimeError naming who serves ``session_id`` when this node does not
        (its owner keeps the numbers in memory and would store its own over a change made
        here). With no owner it is claimed here, as a Logon would."""
        check = self.owner_check
        if check is None:
            return
        try:
            elsewhere = await check(session_id)
        except (StoreUnavailable, NodeFenced) as exc:
            elsewhere = f"who serves {session_id} cannot be known now ({exc})"
        if elsewhere is not None:
            raise RuntimeError(elsewhere)

    async def set_enabled(self, session_id: str, enabled: bool, why: str) -> None:
        """A disabled session's Logons are refused (the connection is closed, saying why in
        the log); disabling a logged-on session logs it out. Until enabled again, or the
        gateway restarts. Disabling a session another node serves raises RuntimeError naming
        it (the refusal would not reach its client); enabling lifts this node's own refusal
        whoever serves it."""
        h = self._handle_of(session_id)
        if enabled:
            self.disabled.pop(session_id, None)
            return
        await self._served_here(session_id)
        self.disabled[session_id] = why
        if h.session.is_logged_on:
            await self.logout_session(session_id, f"session disabled: {why}")
        elif h.connection is not None:
            h.connection.abort(f"session disabled: {why}")

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
                # a Logout written while the store was down, just before a restart: its
                # number was kept aside (gateway.server.journal)
                kept = self.journal.recall(str(sid)) if self.journal is not None else None
                session = Session(
                    d.settings, d.session_dd, d.app_dds,
                    next_sender=max(rec.next_sender, kept or 0), next_target=rec.next_target,
                    # the application may say what is not worth resending (gap-filled)
                    allow_resend=getattr(self.app, "may_resend", None),
                )
                file_log: FileLogPort | None = None
                if self._file_log is not None:
                    file_log = self._file_log(sid)
                h = self._handles[sid] = SessionHandle(
                    d, session, self.store, self.app, file_log,
                    d.schedule.period_start(rec.creation_time.timestamp()),
                )
                h.log_to_store, h.log_to_file = self._message_log
                h.journal = self.journal
                h.traffic = self.traffic
                h.may_write_unstored = lambda: self.logout_while_down()
                if kept is not None and kept > rec.next_sender:
                    log.warning("%s: %d Logout(s) were written while the store was down: "
                                "sequence numbers go on from %d", sid, kept - rec.next_sender,
                                kept)
                    h.restored_unstored(rec.next_sender)
        return h

    async def new_period_check(self, h: SessionHandle, now: float) -> None:
        """Sequence numbers start again at 1 in a new session period (schedules)."""
        current = h.definition.schedule.period_start(now)
        if current is not None and current != h.period_start:
            log.warning("%s: sequence numbers reset to 1 (a new session period of its "
                        "schedule)", h.sid_str)
            await self.store.reset(h.sid_str)
            h.session.next_sender = h.session.next_target = 1
            h.sequences_reset()
            h.period_start = current

    def session(self, sid: SessionID) -> Session | None:
        h = self._handles.get(sid)
        return None if h is None else h.session

    async def flush(self, sid: SessionID) -> None:
        """Carry out what the application queued on ``sid`` (call after ``session.send``)."""
        h = self._handles.get(sid)
        if h is not None:
            await h.flush()


def _iso(ns: int | None) -> str | None:
    """UTC ISO 8601 of a time in ns since the epoch."""
    if ns is None:
        return None
    return datetime.fromtimestamp(ns / 1e9, UTC).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z")


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
        self._authenticated = False
        self._write_step = 0
        self._paced = False
        self._paced_since: float | None = None

    # ------------------------------------------------------------------------------------------
    def now(self) -> float:
        return self.acceptor.clock()

    def abort(self, reason: str) -> None:
        """Close the socket (after what is already written) and release the session."""
        if not self.closed:
            self.closed = True
            self._close_reason = reason
            attached = self.handle is not None and self.handle.connection is self
            # a session's disconnect is said once, with its id (_detach); a connection that
            # never became a session is said here
            log.log(logging.DEBUG if attached else logging.INFO, "%s: closing: %s", self.peer,
                    reason)
            self.writer.close()
        self._detach()

    def _detach(self) -> None:
        """Release the session at once, so a reconnect is not taken for a duplicate."""
        h = self.handle
        if h is None or h.connection is not self:
            return
        h.connection = None
        now = self.acceptor.clock()
        dropped = h.session.is_logged_on and not h.session.sent_logout
        h.session.connection_lost(now)
        h.note(f"Disconnected ({self._close_reason or 'peer closed'})", now)
        self.acceptor.traffic.disconnected(h.sid_str, self.peer,
                                           self._close_reason or "closed by the client",
                                           dropped)
        h.dispatch(now)

    def write_now(self, data: bytes) -> None:
        """Write ``data`` as it is (a last message before closing)."""
        if not self.closed:
            self.writer.write(data)

    async def write_all(self, chunks: Sequence[bytes], limits: Limits) -> None:
        """Write ``chunks`` (whole messages) in pieces of about ``limits.write_chunk`` bytes
        (a quarter of ``max_outbound_bytes`` if that is less).
        Past the first piece, each waits until the client has read most of what is buffered,
        so a large batch reaches a client that reads, however large; one that stops reading
        is disconnected after ``slow_reader_timeout``. When what is buffered passes
        ``max_outbound_bytes`` after a batch's first piece (the client has not read what was
        written before), it is disconnected at once."""
        step = min(limits.write_chunk, max(limits.max_outbound_bytes // 4, 1))
        if step != self._write_step:
            # drain() waits while the transport holds more than its high-water mark
            self.writer.transport.set_write_buffer_limits(high=step, low=step // 4)
            self._write_step = step
        piece: list[bytes] = []
        size = 0
        first = True
        for c in chunks:
            piece.append(c)
            size += len(c)
            if size >= step:
                if not await self._write_piece(b"".join(piece), first, limits):
                    return
                piece, size, first = [], 0, False
        if piece:
            await self._write_piece(b"".join(piece), first, limits)

    async def _write_piece(self, data: bytes, first: bool, limits: Limits) -> bool:
        if self.closed:
            return False
        transport = self.writer.transport
        if not first:  # a large batch: wait for the client to read the piece before
            try:
                async with asyncio.timeout(limits.slow_reader_timeout):
                    await self.writer.drain()
            except TimeoutError:
                self._slow_reader(f"nothing read for {limits.slow_reader_timeout:g} s")
                return False
            except (ConnectionError, ssl.SSLError):
                return False
            if self.closed:
                return False
        self.writer.write(data)
        if transport.get_write_buffer_size() > limits.max_outbound_bytes:
            self._slow_reader("outbound buffer over the limit")
            return False
        return True

    def _slow_reader(self, why: str) -> None:
        if self.handle is not None:
            self.handle.note(f"Disconnecting: slow reader ({why})", self.acceptor.clock())
        self.abort("slow reader")
        self.writer.transport.abort()

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
            self._close_reason = self._close_reason or f"connection error: {exc}"
            log.log(logging.DEBUG if self.handle is not None else logging.INFO,
                    "%s: connection error: %s", self.peer, exc)
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
        try:
            h = await self.acceptor.handle(sid)
        except StoreUnavailable as exc:
            self.abort(f"{sid}: cannot load the session: {exc}")
            return False
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
        if str(sid) in self.acceptor.disabled:
            self.abort(f"{sid}: Logon refused: the session is disabled "
                       f"({self.acceptor.disabled[str(sid)]})")
            return False
        now = self.acceptor.clock()
        if not d.schedule.is_session_time(now):
            self.abort(f"{sid}: Logon outside of the session schedule")
            return False
        if d.username is not None or d.password_hash is not None:
            # the credentials are checked before the session is claimed: a wrong password
            # never holds the slot the real client needs
            ok, reason = await self._check_credentials(fields, d)
            if not ok:
                self.abort(f"{sid}: authentication failed: {reason}")
                return False
            self._authenticated = True
            now = self.acceptor.clock()
        check = self.acceptor.owner_check
        if check is not None:
            try:
                elsewhere = await check(str(sid))
            except (StoreUnavailable, NodeFenced) as exc:
                elsewhere = f"who serves it cannot be known now ({exc})"
            if elsewhere is not None:
                # no Logout: it would move the client's expected MsgSeqNum past the owner's
                # next message (QuickFIX counts a Logout whatever its number)
                h.note(f"Logon from {self.peer} refused: {elsewhere}", now)
                self.abort(f"{sid}: Logon refused: {elsewhere}")
                return False
            now = self.acceptor.clock()
        if h.connection is not None:
            self.abort(f"{sid}: session already connected (duplicate identity)")
            return False
        h.connection = self
        h.peer = self.peer
        self.handle = h
        await h.flush()  # what the previous connection left (stored, never written here)
        down = self.acceptor.store_down
        if down is not None:
            h.session.connect(now)
            h.note(f"Accepted connection from {self.peer}; Logon refused: the store is "
                   f"unavailable ({down})", now)
            await h.refuse(f"store unavailable: {down}", now)
            self.abort(f"{sid}: Logon refused: store unavailable")
            return False
        try:
            await self.acceptor.new_period_check(h, now)
        except (StoreUnavailable, NodeFenced) as exc:
            h.session.connect(now)
            await h.refuse(f"store unavailable: {exc}", now)
            self.abort(f"{sid}: Logon refused: {exc}")
            return False
        self.parser.max_size = d.limits.max_message_size
        self._tokens = float(d.limits.rate_burst)
        self._token_time = now
        h.ask_again_for_unanswered()
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
            limits = h.definition.limits
            if limits.rate_limit is not None and self._tokens < -limits.rate_burst:
                await h.flush()  # what the throttled messages were answered with, then wait
                await self._pace()
        await h.flush()
        now = self.acceptor.clock()
        self._partial_since = (self._partial_since or now) if self.parser.buffered else None

    async def _receive(self, data: bytes, flush: bool = True) -> None:
        h = self.handle
        assert h is not None
        now = self.acceptor.clock()
        when = utc(now)
        h.log_message("in", data, when)
        self.acceptor.traffic.inbound(h.sid_str, data)
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
        """Token bucket of the inbound rate. The bucket may go into debt, down to ``-burst``:
        :meth:`_pace` then stops reading until it is out of debt, so a flood costs the gateway
        at most about twice the rate in work, whatever the sender sends."""
        assert self.handle is not None
        limits = self.handle.definition.limits
        if limits.rate_limit is None:
            return True
        self._tokens = min(
            float(limits.rate_burst), self._tokens + (now - self._token_time) * limits.rate_limit
        )
        self._token_time = now
        self._tokens -= 1.0
        if self._tokens >= 0.0:
            self._paced_since = None
            return True
        return False

    async def _pace(self) -> None:
        """Stop reading (TCP pushes back on the sender) while the bucket is deep in debt."""
        h = self.handle
        assert h is not None
        rate = h.definition.limits.rate_limit
        assert rate is not None
        now = self.acceptor.clock()
        if not self._paced:
            self._paced = True
            h.note(f"Inbound rate over {rate:g} messages/s: reading paused while over it", now)
        if self._paced_since is None:
            self._paced_since = now
        elif now - self._paced_since > PACED_LIMIT_S:
            # over the rate all this while: a runaway client (and what it left in the socket
            # would hold the session long after it is gone)
            h.note(f"Disconnecting: inbound rate over {rate:g} messages/s for "
                   f"{PACED_LIMIT_S:g} s", now)
            h.session.refuse(now, f"message rate over {rate:g}/s for {PACED_LIMIT_S:g} s")
            await h.flush()
            self.abort("inbound rate limit")
            return
        await asyncio.sleep(-self._tokens / rate)

    async def _check_credentials(
        self, fields: list[tuple[int, bytes]], d: SessionDef
    ) -> tuple[bool, str]:
        """Username (553) and Password (554) of the first message, throttled per address."""
        values: dict[int, list[bytes]] = {}
        for tag, value in fields:
            if tag in (553, 554):
                values.setdefault(tag, []).append(value)
        if any(len(v) > 1 for v in values.values()):
            return False, "Username (553) or Password (554) given twice"
        username = values[553][0].decode(errors="replace") if 553 in values else None
        password = values[554][0].decode(errors="replace") if 554 in values else None
        password_hash = d.password_hash
        throttle = self.acceptor.logon_throttle
        try:
            async with asyncio.timeout(d.settings.logon_timeout):
                if d.username is not None and username != d.username:
                    # the same throttle and the same bcrypt work as a wrong password: a
                    # guesser learns nothing from the time it takes
                    ok, why = await throttle.check(
                        self.peer_ip or "",
                        lambda: password_hash is not None and check_password("", password_hash)
                        and False,
                    )
                    return False, why or "unknown Username (553)"
                if password_hash is None:
                    return True, ""
                ok, why = await throttle.check(
                    self.peer_ip or "", lambda: check_password(password, password_hash)
                )
        except TimeoutError:
            return False, "the credentials could not be checked within the logon timeout"
        return ok, why or ("" if ok else "wrong Password (554)")

    async def authenticate(self, ev: AuthenticationRequired) -> None:
        h = self.handle
        assert h is not None
        d = h.definition
        ok, reason = True, ""
        if not self._authenticated:  # checked before the session was claimed (_attach)
            ok, reason = False, "Logon not authenticated"
        elif d.username is not None and ev.username != d.username:
            ok, reason = False, "unknown Username (553)"
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
