"""The asyncio driver of a :class:`~gateway.fix.session.Session` in the initiator role.

The session decides everything FIX (Logon and its answer, sequence numbers, gaps, resends,
heartbeats, TestRequests, the Logout handshake); this driver only carries out its actions on
one TCP (or TLS) connection, as ``gateway.server`` does for the acceptor: it writes what the
session sends, keeps what it sent in a message store so a ResendRequest can be answered
(:meth:`Session.resender`: application messages resent with PossDupFlag, the rest gap-filled),
reads frames, and calls the session's timer at its deadlines. ``fixgw client`` and the tests'
initiators use it.

The store is a mapping MsgSeqNum -> bytes; the default keeps this connection's messages in
memory (nothing survives the process, so older numbers are gap-filled on request). Sequence
numbers outlive the process only through ``on_sequence``, called with (next to send, next
expected) before anything is written and after what was read is processed; ``on_write`` and
``on_read`` see every message that goes out and comes in, ``on_note`` the session's notes.
"""

# Waiting a bounded time for the counterparty is this driver's interface (``timeout``), as the
# session's own deadlines run inside it.
# ruff: noqa: ASYNC109

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections import deque
from collections.abc import Callable, Iterable, MutableMapping

from gateway.fix.codec import Frame, FrameParser, StreamError
from gateway.fix.message import Message
from gateway.fix.session import (
    AppMessage,
    Close,
    LoggedOut,
    Note,
    RejectReceived,
    Resend,
    ResetStore,
    Send,
    Session,
)
from gateway.fix.states import Role, State


class InitiatorClosed(Exception):  # noqa: N818
    """The session ended: ``reason`` is the session's (or the transport's), ``logout_text``
    the counterparty's Logout Text (58) when it sent one."""

    def __init__(self, reason: str, logout_text: str | None, logged_on: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.logout_text = logout_text
        self.logged_on = logged_on
        """Whether the session had logged on before it ended."""


class Initiator:
    """One connection of an initiator session."""

    def __init__(
        self,
        session: Session,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        store: MutableMapping[int, bytes] | None = None,
        on_write: Callable[[bytes], None] | None = None,
        on_read: Callable[[bytes], None] | None = None,
        on_sequence: Callable[[int, int], None] | None = None,
        on_note: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if session.role is not Role.INITIATOR:
            raise ValueError(f"{session.sid} is not an initiator session")
        self.session = session
        self.reader = reader
        self.writer = writer
        self.store: MutableMapping[int, bytes] = {} if store is None else store
        self._on_write = on_write
        self._on_read = on_read
        self._on_sequence = on_sequence
        self._on_note = on_note
        self._clock = clock
        self._parser = FrameParser(max_size=1 << 24)
        self._ready: deque[Message] = deque()
        self.closed: str | None = None
        """Why the connection ended (None while it is up)."""
        self._logged_on_once = False
        session.connect(clock())

    @classmethod
    async def connect(
        cls,
        session: Session,
        host: str,
        port: int,
        *,
        ssl_context: ssl.SSLContext | None = None,
        timeout: float = 5.0,
        **kw: object,
    ) -> Initiator:
        """Open the connection (OSError or TimeoutError when it cannot be opened)."""
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, ssl=ssl_context), timeout)
        return cls(session, reader, writer, **kw)  # type: ignore[arg-type]

    # --- the session's actions ----------------------------------------------------------

    async def _flush(self) -> None:
        """Carry out what the session asked for, in order; then take its events."""
        s = self.session
        actions = s.next_actions()
        if self._on_sequence is not None and any(isinstance(a, Send) for a in actions):
            self._on_sequence(s.next_sender, s.next_target)  # before anything is written
        for action in actions:
            if isinstance(action, Send):
                if action.persist:
                    self.store[action.seq] = action.data
                if action.write:
                    self._write(action.data)
            elif isinstance(action, Resend):
                resender = s.resender(action.begin, action.end, self._clock())
                stored = sorted((seq, data) for seq, data in self.store.items()
                                if action.begin <= seq <= action.end)
                for data in [*resender.add(stored), *resender.finish()]:
                    self._write(data)
            elif isinstance(action, ResetStore):
                self.store.clear()
            elif isinstance(action, Close):
                self._closed(action.reason)
        for ev in s.events():
            if isinstance(ev, AppMessage | RejectReceived):
                self._ready.append(ev.message)
            elif isinstance(ev, LoggedOut) and self.closed is None:
                self._closed(ev.reason)
            elif isinstance(ev, Note) and self._on_note is not None:
                self._on_note(ev.text)
        if s.is_logged_on:
            self._logged_on_once = True
        if self.closed is None:
            with contextlib.suppress(ConnectionError, OSError):
                await self.writer.drain()

    def _write(self, data: bytes) -> None:
        if self.closed is None and not self.writer.is_closing():
            if self._on_write is not None:
                self._on_write(data)
            self.writer.write(data)

    def _closed(self, reason: str) -> None:
        if self.closed is None:
            self.closed = reason
            self.writer.close()

    def _error(self) -> InitiatorClosed:
        return InitiatorClosed(self.closed or "closed", self.session.logout_text,
                               self._logged_on_once)

    # --- reading ----------------------------------------------------------------------------

    async def _read(self, until: float) -> None:
        """Read what arrives before ``until`` (the clock's time) or the session's deadline."""
        s = self.session
        now = self._clock()
        deadline = s.next_deadline()
        if deadline is not None and deadline <= now:
            s.on_timer(now)
            await self._flush()
            return
        wait = until - now if deadline is None else min(until, deadline) - now
        try:
            data = await asyncio.wait_for(self.reader.read(1 << 16), max(wait, 0.0))
        except TimeoutError:
            return
        except (ConnectionError, OSError):
            data = b""
        now = self._clock()
        if not data:
            s.connection_lost(now)
            self._closed(self.closed or "the counterparty closed the connection")
            await self._flush()
            return
        self._parser.feed(data)
        for ev in self._parser.frames():
            if isinstance(ev, StreamError):
                s.connection_lost(now)
                self._closed(f"unreadable stream: {ev.reason}")
                break
            if isinstance(ev, Frame):
                if self._on_read is not None:
                    self._on_read(ev.data)
                s.receive_frame(ev.data, now)
            else:
                s.receive_garbled(ev.reason, now)
        await self._flush()
        if self._on_sequence is not None:
            self._on_sequence(s.next_sender, s.next_target)

    # --- what the user does -------------------------------------------------------------

    async def logon(self, *, reset: bool = False, body: Iterable[tuple[int, bytes]] = (),
                    timeout: float = 10.0) -> None:
        """Send the Logon and wait for its answer; InitiatorClosed when it is refused."""
        self.session.logon(self._clock(), reset=reset, body=body)
        await self._flush()
        until = self._clock() + timeout
        while not self.session.is_logged_on:
            if self.closed is not None:
                raise self._error()
            if self._clock() >= until:
                raise InitiatorClosed(f"no Logon answer within {timeout:g}s", None, False)
            await self._read(until)

    async def send(self, msg_type: bytes, body: Iterable[tuple[int, bytes]]) -> int:
        """Send an application message; returns its MsgSeqNum."""
        if self.closed is not None:
            raise self._error()
        seq = self.session.send(msg_type, body, self._clock())
        await self._flush()
        return seq

    async def receive(self, timeout: float) -> Message | None:
        """The next application message or session-level Reject, in MsgSeqNum order; None
        when none arrives within ``timeout``; InitiatorClosed when the session ends."""
        until = self._clock() + timeout
        while not self._ready:
            if self.closed is not None:
                raise self._error()
            if self._clock() >= until:
                return None
            await self._read(until)
        return self._ready.popleft()

    async def logout(self, text: str | None = None, *, timeout: float = 5.0) -> None:
        """Start the Logout handshake and wait until it is done (or ``timeout``)."""
        if self.closed is not None:
            return
        self.session.logout(self._clock(), text)
        await self._flush()
        until = self._clock() + timeout
        while self.closed is None and self._clock() < until:
            await self._read(until)

    async def close(self) -> None:
        s = self.session
        if s.state is not State.DISCONNECTED:
            s.connection_lost(self._clock())
        # what the session says about this connection ends with it (the session outlives it:
        # the next connection must not take this one's LoggedOut for its own)
        s.next_actions()
        s.events()
        self._closed(self.closed or "closed")
        with contextlib.suppress(ConnectionError, OSError, TimeoutError, ssl.SSLError):
            await asyncio.wait_for(self.writer.wait_closed(), 2.0)
