"""Play a parsed acceptance script against a FIX acceptor over TCP."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from .script import SOH, Comparator, Mode, Script, Step, StepKind, checksum, render, show


class ScriptFailure(AssertionError):
    """The acceptor did not behave as the script expects."""


class FramingError(Exception):
    """The byte stream from the acceptor is not a sequence of well-formed FIX messages."""


class FixFramer:
    """Cut a byte stream into FIX messages ``8=...|9=N|...|10=xxx|``.

    Bytes are added with :meth:`feed` as they arrive; :meth:`next_message` returns a complete
    message or ``None`` when more bytes are needed. The CheckSum of each message is verified.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()

    @property
    def pending(self) -> bytes:
        return bytes(self._buffer)

    def feed(self, data: bytes) -> None:
        self._buffer += data

    def next_message(self) -> bytes | None:
        buf = self._buffer
        if not buf:
            return None
        if not b"8=".startswith(bytes(buf[:2])):
            raise FramingError(f"message does not start with 8=: {show(bytes(buf[:200]))!r}")
        begin_end = buf.find(SOH)
        if begin_end < 0:
            return None
        length_end = buf.find(SOH, begin_end + 1)
        if length_end < 0:
            return None
        length_field = bytes(buf[begin_end + 1 : length_end])
        if not length_field.startswith(b"9=") or not length_field[2:].isdigit():
            raise FramingError(f"second field is not BodyLength: {show(bytes(buf[:200]))!r}")
        trailer_at = length_end + 1 + int(length_field[2:])
        end = trailer_at + 7  # 10=xxx<SOH>
        if len(buf) < end:
            return None
        message = bytes(buf[:end])
        trailer = message[trailer_at:]
        if not (trailer.startswith(b"10=") and trailer.endswith(SOH)):
            raise FramingError(
                f"BodyLength {int(length_field[2:])} does not lead to the CheckSum field: "
                f"{show(message)!r}"
            )
        if trailer[3:6] != checksum(message[:trailer_at]):
            raise FramingError(
                f"wrong CheckSum {trailer[3:6].decode('latin-1')!r}, "
                f"computed {checksum(message[:trailer_at]).decode()}: {show(message)!r}"
            )
        del buf[:end]
        return message


class _Closed(Exception):
    """The acceptor closed the connection."""


class _Timeout(Exception):
    pass


class Connection:
    """One client TCP connection with its framer."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.framer = FixFramer()
        self.eof = False

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def receive(self, timeout: float) -> bytes:
        """Next message; raises :class:`_Closed` on end of stream, :class:`_Timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            message = self.framer.next_message()
            if message is not None:
                return message
            if self.eof:
                raise _Closed
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _Timeout
            self.sock.settimeout(remaining)
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                raise _Timeout from None
            except (ConnectionResetError, ConnectionAbortedError):
                data = b""
            if not data:
                self.eof = True
            else:
                self.framer.feed(data)

    def close_gracefully(self, timeout: float) -> None:
        """Half-close, wait (bounded) until the acceptor closes its side, then close.

        Waiting for the acceptor's end of stream means it has seen the disconnection before the
        next step (or the next script) logs on to the same session again. Whatever the acceptor
        sends meanwhile is discarded.
        """
        try:
            if not self.eof:
                self.sock.shutdown(socket.SHUT_WR)
                deadline = time.monotonic() + timeout
                while (remaining := deadline - time.monotonic()) > 0:
                    self.sock.settimeout(remaining)
                    if not self.sock.recv(65536):
                        break
        except OSError:
            pass
        finally:
            self.sock.close()


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Player:
    """Plays scripts against the acceptor at ``host:port``.

    ``expect_timeout``: how long an ``E`` step waits for its message; ``disconnect_timeout``: how
    long ``eDISCONNECT`` waits for the acceptor to close; ``close_timeout``: how long closing a
    connection from the client side waits for the acceptor to close its side (no failure).
    """

    host: str
    port: int
    comparator: Comparator
    expect_timeout: float = 20.0
    disconnect_timeout: float = 10.0
    connect_timeout: float = 5.0
    close_timeout: float = 5.0
    clock: Callable[[], datetime] = _utcnow
    _connections: dict[int, Connection] = field(default_factory=dict, init=False)
    _script_name: str = field(default="<script>", init=False)

    @property
    def mode(self) -> Mode:
        return self.comparator.mode

    def play(self, script: Script) -> None:
        """Play every step; raises :class:`ScriptFailure` at the first deviation."""
        self._script_name = script.name
        try:
            for step in script.steps:
                try:
                    self._step(step)
                except FramingError as exc:
                    raise self._failure_at(step, f"bad data from the acceptor: {exc}") from None
        finally:
            for connection in self._connections.values():
                connection.close_gracefully(self.close_timeout)
            self._connections.clear()

    # ------------------------------------------------------------------ steps

    def _step(self, step: Step) -> None:
        kind = step.kind
        if kind is StepKind.CONNECT:
            self._connect(step)
        elif kind is StepKind.DISCONNECT:
            self._open(step, "disconnect")
            self._connections.pop(step.connection).close_gracefully(self.close_timeout)
        elif kind is StepKind.SEND:
            self._send(step)
        elif kind is StepKind.EXPECT:
            self._expect(step)
        else:
            self._expect_disconnect(step)

    def _connect(self, step: Step) -> None:
        if step.connection in self._connections:
            raise self._failure_at(step, f"connection {step.connection} is already open")
        try:
            sock = socket.create_connection((self.host, self.port), timeout=self.connect_timeout)
        except OSError as exc:
            raise self._failure_at(
                step, f"cannot connect to {self.host}:{self.port}: {exc}"
            ) from None
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._connections[step.connection] = Connection(sock)

    def _open(self, step: Step, what: str) -> Connection:
        connection = self._connections.get(step.connection)
        if connection is None:
            raise self._failure_at(step, f"cannot {what}: connection {step.connection} not open")
        return connection

    def _send(self, step: Step) -> None:
        connection = self._open(step, "send")
        data = render(step.template, self.clock())
        try:
            connection.send(data)
        except OSError as exc:
            # The acceptor closed the connection before this message could be sent. Tolerated
            # in lenient mode (the next step will find the connection closed).
            if self.mode is Mode.STRICT:
                raise self._failure_at(
                    step, f"acceptor closed the connection, cannot send: {exc}", sent=data
                ) from None
            connection.eof = True

    def _expect(self, step: Step) -> None:
        connection = self._open(step, "receive")
        expected = render(step.template, self.clock())
        try:
            received = connection.receive(self.expect_timeout)
        except _Timeout:
            raise self._failure_at(
                step,
                f"no message from the acceptor within {self.expect_timeout:g} s",
                expected=expected,
            ) from None
        except _Closed:
            raise self._failure_at(
                step,
                "the acceptor closed the connection"
                + (
                    f" (leaving {show(connection.framer.pending)!r})"
                    if connection.framer.pending
                    else ""
                ),
                expected=expected,
            ) from None
        reason = self.comparator.compare(expected, received)
        if reason is not None:
            raise self._failure_at(
                step,
                f"message mismatch ({self.mode.value}): {reason}",
                expected=expected,
                received=received,
            )

    def _expect_disconnect(self, step: Step) -> None:
        connection = self._open(step, "wait for disconnection")
        deadline = time.monotonic() + self.disconnect_timeout
        while True:
            try:
                message = connection.receive(max(0.0, deadline - time.monotonic()))
            except _Closed:
                if connection.framer.pending:
                    raise self._failure_at(
                        step,
                        "the acceptor closed the connection in the middle of a message: "
                        f"{show(connection.framer.pending)!r}",
                    ) from None
                break
            except _Timeout:
                raise self._failure_at(
                    step,
                    f"the acceptor did not close the connection within "
                    f"{self.disconnect_timeout:g} s",
                ) from None
            if self.mode is Mode.LENIENT and b"\x0135=5\x01" in message:
                continue  # lenient: a Logout just before the disconnection is tolerated
            raise self._failure_at(
                step,
                "expected the acceptor to disconnect, but it sent a message",
                received=message,
            )
        connection.sock.close()
        del self._connections[step.connection]

    # ------------------------------------------------------------------ failures

    def _failure_at(
        self,
        step: Step,
        reason: str,
        *,
        expected: bytes | None = None,
        received: bytes | None = None,
        sent: bytes | None = None,
    ) -> ScriptFailure:
        lines = [f"{self._script_name}:{step.line_no}: connection {step.connection}: {reason}"]
        if sent is not None:
            lines.append(f"  sent:     {show(sent)}")
        if expected is not None:
            lines.append(f"  expected: {show(expected)}")
        if received is not None:
            lines.append(f"  received: {show(received)}")
        return ScriptFailure("\n".join(lines))
