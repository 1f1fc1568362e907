"""A small asyncio FIX initiator for loopback-TCP tests of the acceptor.

Written for the tests only: it builds messages with the codec's :func:`encode` (header 35, 34,
49, 52, 56 then the body), tracks its own MsgSeqNum, and frames what the acceptor sends with
:class:`FrameParser` + :func:`split_fields`. It never sleeps: every wait is a read bounded by a
timeout.
"""

# The ``timeout`` parameters are this client's interface (``await recv(timeout)``).
# ruff: noqa: ASYNC109

from __future__ import annotations

import asyncio
import socket
import ssl
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from gateway.fix.codec import Frame, FrameParser, encode, split_fields

Value = str | bytes | int
Fields = list[tuple[int, bytes]]


def utc_timestamp(when: datetime | None = None) -> bytes:
    """Current UTC time as ``YYYYMMDD-HH:MM:SS.sss``."""
    t = when or datetime.now(UTC)
    return t.strftime("%Y%m%d-%H:%M:%S.%f")[:-3].encode()


def _b(v: Value) -> bytes:
    if isinstance(v, bytes):
        return v
    return str(v).encode()


class ConnectionClosed(Exception):  # noqa: N818
    """The acceptor closed the connection (EOF, reset or a TLS alert)."""


@dataclass(frozen=True, slots=True)
class FixMessage:
    """One message read off the wire."""

    raw: bytes
    fields: Fields

    def get(self, tag: int) -> str | None:
        for t, v in self.fields:
            if t == tag:
                return v.decode(errors="replace")
        return None

    def __getitem__(self, tag: int) -> str:
        v = self.get(tag)
        if v is None:
            raise KeyError(f"tag {tag} missing from {self}")
        return v

    def __contains__(self, tag: object) -> bool:
        return any(t == tag for t, _ in self.fields)

    @property
    def msg_type(self) -> str:
        return self[35]

    @property
    def seq(self) -> int:
        return int(self[34])

    def as_dict(self) -> dict[int, str]:
        out: dict[int, str] = {}
        for t, v in self.fields:
            out.setdefault(t, v.decode(errors="replace"))
        return out

    def __str__(self) -> str:
        return self.raw.replace(b"\x01", b"|").decode(errors="replace")


class FixClient:
    """One initiator connection (``SenderCompID`` = ``sender``, ``TargetCompID`` = ``target``)."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        sender: str,
        target: str = "GATEWAY",
        begin: str = "FIX.4.4",
        next_seq: int = 1,
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.sender = sender
        self.target = target
        self.begin = begin
        self.next_seq = next_seq
        self.parser = FrameParser(max_size=1 << 26)
        self._ready: deque[FixMessage] = deque()
        self.closed = False

    @classmethod
    async def connect(
        cls,
        host: str,
        port: int,
        *,
        sender: str = "CLIENT1",
        target: str = "GATEWAY",
        begin: str = "FIX.4.4",
        next_seq: int = 1,
        ssl_context: ssl.SSLContext | None = None,
        server_hostname: str | None = None,
        rcvbuf: int | None = None,
        timeout: float = 5.0,
        local_addr: tuple[str, int] | None = None,
    ) -> FixClient:
        """Open a TCP (or TLS) connection. ``rcvbuf`` shrinks SO_RCVBUF (a slow reader)."""
        if rcvbuf is not None:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            sock.setblocking(False)
            await asyncio.wait_for(asyncio.get_running_loop().sock_connect(sock, (host, port)),
                                   timeout)
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(sock=sock, ssl=ssl_context,
                                        server_hostname=server_hostname), timeout
            )
        else:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(host, port, ssl=ssl_context,
                                        server_hostname=server_hostname,
                                        local_addr=local_addr), timeout
            )
        return cls(reader, writer, sender=sender, target=target, begin=begin, next_seq=next_seq)

    # ------------------------------------------------------------------------------------------
    # sending

    def build(
        self,
        msg_type: str,
        body: Iterable[tuple[int, Value]] = (),
        *,
        seq: int | None = None,
        header: Iterable[tuple[int, Value]] = (),
        sending_time: bytes | None = None,
    ) -> bytes:
        """Encode a message; without ``seq`` it takes (and advances) the next MsgSeqNum."""
        if seq is None:
            seq = self.next_seq
            self.next_seq += 1
        fields: list[tuple[int, bytes]] = [
            (35, msg_type.encode()),
            (34, b"%d" % seq),
            (49, self.sender.encode()),
            (52, sending_time or utc_timestamp()),
            (56, self.target.encode()),
        ]
        fields += [(t, _b(v)) for t, v in header]
        fields += [(t, _b(v)) for t, v in body]
        return encode(self.begin.encode(), fields)

    async def send_raw(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def send(
        self,
        msg_type: str,
        body: Iterable[tuple[int, Value]] = (),
        *,
        seq: int | None = None,
        header: Iterable[tuple[int, Value]] = (),
    ) -> int:
        """Send one message; returns the MsgSeqNum it carried."""
        use = self.next_seq if seq is None else seq
        await self.send_raw(self.build(msg_type, body, seq=seq, header=header))
        return use

    # ------------------------------------------------------------------------------------------
    # receiving

    def _take_frames(self) -> None:
        for ev in self.parser.frames():
            if isinstance(ev, Frame):
                self._ready.append(FixMessage(ev.data, split_fields(ev.data)))
            else:
                raise AssertionError(f"the acceptor sent something unframeable: {ev}")

    async def _read_more(self, timeout: float) -> None:
        if self.closed:
            raise ConnectionClosed("already closed")
        try:
            data = await asyncio.wait_for(self.reader.read(1 << 16), timeout)
        except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError) as exc:
            self.closed = True
            raise ConnectionClosed(repr(exc)) from None
        if not data:
            self.closed = True
            raise ConnectionClosed("EOF")
        self.parser.feed(data)
        self._take_frames()

    async def recv(self, timeout: float = 5.0) -> FixMessage:
        """The next message; TimeoutError when none arrives, ConnectionClosed on EOF."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self._ready:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"{self.sender}: no message within {timeout}s")
            await self._read_more(remaining)
        return self._ready.popleft()

    async def recv_type(
        self, msg_type: str, timeout: float = 5.0, *, skip: tuple[str, ...] = ("0",)
    ) -> FixMessage:
        """The next message of ``msg_type``, skipping those of the types in ``skip``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            m = await self.recv(max(deadline - loop.time(), 0.001))
            if m.msg_type == msg_type:
                return m
            if m.msg_type not in skip:
                raise AssertionError(f"{self.sender}: expected 35={msg_type}, got {m}")

    async def expect_closed(self, timeout: float = 5.0) -> list[FixMessage]:
        """Wait until the acceptor closes the connection; returns what arrived before that.

        AssertionError when the connection is still open after ``timeout``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        got: list[FixMessage] = []
        while True:
            while self._ready:
                got.append(self._ready.popleft())
            if self.closed:
                return got
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(
                    f"{self.sender}: connection still open after {timeout}s "
                    f"(received {[str(m) for m in got]})"
                )
            try:
                await self._read_more(remaining)
            except ConnectionClosed:
                pass
            except TimeoutError:
                continue

    # ------------------------------------------------------------------------------------------
    # conveniences

    async def logon(
        self,
        *,
        heartbeat: int = 30,
        reset: bool = False,
        username: str | None = None,
        password: str | None = None,
        extra: Iterable[tuple[int, Value]] = (),
        timeout: float = 5.0,
    ) -> FixMessage:
        """Send a Logon and return the first message that answers it (not necessarily 35=A)."""
        body: list[tuple[int, Value]] = [(98, 0), (108, heartbeat)]
        if reset:
            body.append((141, "Y"))
        if username is not None:
            body.append((553, username))
        if password is not None:
            body.append((554, password))
        body += list(extra)
        if self.begin == "FIXT.1.1":
            body.append((1137, "9"))
        await self.send("A", body)
        return await self.recv(timeout)

    async def test_request(self, req_id: str, timeout: float = 5.0) -> FixMessage:
        """TestRequest -> the Heartbeat that answers it (other Heartbeats are skipped)."""
        await self.send("1", [(112, req_id)])
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            m = await self.recv_type("0", max(deadline - loop.time(), 0.001))
            if m.get(112) == req_id:
                return m

    async def close(self) -> None:
        self.closed = True
        try:
            self.writer.close()
            await asyncio.wait_for(self.writer.wait_closed(), 2.0)
        except (ConnectionError, ssl.SSLError, TimeoutError):
            pass
