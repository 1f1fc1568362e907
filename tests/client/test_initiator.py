"""gateway.initiator (the asyncio driver of an initiator Session) over an in-memory transport
whose other end is an acceptor Session: what the driver writes the acceptor reads at once,
what the acceptor sends is fed to the driver's reader."""

# ruff: noqa: ASYNC109

from __future__ import annotations

import asyncio
import time

from gateway.fix.dictionary import standard
from gateway.fix.session import Close, Send, Session, SessionID, SessionSettings
from gateway.fix.states import Role, State
from gateway.initiator import Initiator


def _session(role: Role, ours: str, theirs: str) -> Session:
    return Session(SessionSettings(SessionID("FIX.4.4", ours, theirs), role=role),
                   standard("FIX.4.4"))


class Wire:
    """Stands in for an asyncio StreamWriter; its other end is an acceptor Session."""

    def __init__(self, acceptor: Session) -> None:
        self.acceptor = acceptor
        self.reader = asyncio.StreamReader()
        self.closing = False
        acceptor.connect(time.time())

    def write(self, data: bytes) -> None:
        self.acceptor.receive_data(data, time.time())
        for a in self.acceptor.next_actions():
            if isinstance(a, Send) and a.write:
                self.reader.feed_data(a.data)
            elif isinstance(a, Close):
                self.reader.feed_eof()
        self.acceptor.events()

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        if not self.closing:
            self.closing = True
            if self.acceptor.state is not State.DISCONNECTED:
                self.acceptor.connection_lost(time.time())

    async def drain(self) -> None:
        return None

    async def wait_closed(self) -> None:
        return None


def test_a_session_outlives_a_closed_connection() -> None:
    """A connection closed without a Logout leaves nothing behind that the next connection
    of the same session could take for its own end."""

    async def body() -> None:
        ini = _session(Role.INITIATOR, "CLIENT", "GW")
        acc = _session(Role.ACCEPTOR, "GW", "CLIENT")
        w1 = Wire(acc)
        first = Initiator(ini, w1.reader, w1)  # type: ignore[arg-type]
        await first.logon(timeout=1.0)
        await first.close()
        w2 = Wire(acc)
        second = Initiator(ini, w2.reader, w2)  # type: ignore[arg-type]
        await second.logon(timeout=1.0)
        assert ini.is_logged_on and acc.is_logged_on

    asyncio.run(body())

