"""What the asyncio layer needs from the rest of the gateway (structural interfaces)."""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import datetime
from typing import Protocol

from gateway.fix.message import Message
from gateway.fix.session import Session, SessionID
from gateway.store.records import Commit, SessionRecord


class SessionStorePort(Protocol):
    async def load(self, session_id: str) -> SessionRecord: ...

    def commit(self, unit: Commit) -> Awaitable[None]:
        """Store ``unit`` in one transaction; the awaitable resolves once committed
        (Invariant 1)."""

    def log(self, session_id: str, direction: str, data: bytes, when: datetime) -> None: ...

    async def get_sent(
        self, session_id: str, begin: int, end: int, limit: int = 1000
    ) -> list[tuple[int, bytes]]: ...

    async def reset(self, session_id: str) -> None: ...


class Application(Protocol):
    """The application behind the sessions (the order path, or the conformance echo).

    Called on the event loop; must not block. It answers by calling ``session.send`` (the
    driver flushes what it queued) or schedules its own async work.
    """

    def on_logon(self, session: Session, now: float) -> None: ...

    def on_logout(self, session: Session, now: float) -> None: ...

    def on_message(
        self, session: Session, message: Message, now: float
    ) -> Awaitable[bool | None] | None:
        """Handle ``message``. When its answer is worked out later (after a store read), return
        that work: the message's sequence number is stored as received only once it is done
        (a crash before makes the client resend it); when it ends without an answer (False,
        or an error) the client is asked for the message again at its next Logon."""


class FileLogPort(Protocol):
    def incoming(self, data: bytes, when: datetime) -> None: ...

    def outgoing(self, data: bytes, when: datetime) -> None: ...

    def event(self, text: str, when: datetime) -> None: ...

    def close(self) -> None: ...


class FileLogFactory(Protocol):
    def __call__(self, sid: SessionID) -> FileLogPort: ...
