"""QuickFIX (the ``quickfix`` package: the C++ engine) as the initiator of interop tests.

:func:`settings_text` writes the SessionSettings of one initiator session; :class:`Recorder`
is the QuickFIX Application: each callback becomes an :class:`Event` put on a queue, which an
:class:`Inbox` drains (it keeps the history and waits, with a deadline, for a condition on it);
:class:`Initiator` runs a ``SocketInitiator`` for one session.

QuickFIX calls the Application on its own thread; nothing here blocks that thread.
"""

from __future__ import annotations

import functools
import queue
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

import quickfix as fix

REPO_ROOT = Path(__file__).resolve().parents[2]
FIX_SPECS = REPO_ROOT / "gateway" / "fix" / "specs"
SOH = "\x01"

_DICTIONARIES = {
    "FIX.4.4": "FIX44.xml",
    "FIXT.1.1": "FIXT11.xml",
    "FIX.5.0": "FIX50.xml",
    "FIX.5.0SP2": "FIX50SP2.xml",
}


@dataclass(frozen=True)
class Version:
    """One session of ``fixgw conformance-server`` as the initiator sees it."""

    id: str
    begin_string: str
    sender_comp_id: str
    """QuickFIX's CompID (the acceptor's counterparty)."""
    target_comp_id: str = "ISLD"
    default_appl_ver_id: str | None = None
    """FIXT only: the application version (DefaultApplVerID)."""


FIX44 = Version("FIX.4.4", "FIX.4.4", "TW44")
FIX50SP2 = Version("FIXT.1.1-FIX.5.0SP2", "FIXT.1.1", "TW50SP2", default_appl_ver_id="FIX.5.0SP2")
VERSIONS = (FIX44, FIX50SP2)


def settings_text(
    version: Version,
    *,
    host: str,
    port: int,
    workdir: Path,
    reset_on_logon: bool = True,
    reconnect_interval: int = 1,
    heart_bt_int: int = 30,
    extra: Mapping[str, str] | None = None,
) -> str:
    """A QuickFIX SessionSettings file with one initiator session, fully validating."""
    default = {
        "ConnectionType": "initiator",
        "SocketConnectHost": host,
        "SocketConnectPort": str(port),
        "ReconnectInterval": str(reconnect_interval),
        "HeartBtInt": str(heart_bt_int),
        "StartTime": "00:00:00",
        "EndTime": "00:00:00",
        "FileStorePath": str(workdir / "store"),
        "FileLogPath": str(workdir / "log"),
        "ResetOnLogon": "Y" if reset_on_logon else "N",
        "LogonTimeout": "5",
        "LogoutTimeout": "5",
        "UseDataDictionary": "Y",
        "ValidateUserDefinedFields": "Y",
        "ValidateFieldsOutOfOrder": "Y",
        "ValidateFieldsHaveValues": "Y",
        "AllowUnknownMsgFields": "N",
        "CheckLatency": "Y",
        "SocketNodelay": "Y",
    }
    default.update(extra or {})
    session = {
        "BeginString": version.begin_string,
        "SenderCompID": version.sender_comp_id,
        "TargetCompID": version.target_comp_id,
    }
    if version.default_appl_ver_id is None:
        session["DataDictionary"] = str(FIX_SPECS / _DICTIONARIES[version.begin_string])
    else:
        session["DefaultApplVerID"] = version.default_appl_ver_id
        session["TransportDataDictionary"] = str(FIX_SPECS / _DICTIONARIES[version.begin_string])
        session["AppDataDictionary"] = str(FIX_SPECS / _DICTIONARIES[version.default_appl_ver_id])
    lines = ["[DEFAULT]", *(f"{k}={v}" for k, v in default.items()), "", "[SESSION]"]
    lines += [f"{k}={v}" for k, v in session.items()]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- events


@dataclass(frozen=True)
class Event:
    """One Application callback: ``kind`` is created, logon, logout, from_admin, to_admin,
    from_app, to_app or error (an exception in our own callback code)."""

    kind: str
    session: str
    raw: str = ""

    @functools.cached_property
    def fields(self) -> list[tuple[int, str]]:
        out: list[tuple[int, str]] = []
        for part in self.raw.split(SOH):
            tag, sep, value = part.partition("=")
            if sep and tag.isdigit():
                out.append((int(tag), value))
        return out

    def get(self, tag: int) -> str | None:
        for t, v in self.fields:
            if t == tag:
                return v
        return None

    @property
    def msg_type(self) -> str | None:
        return self.get(35)

    @property
    def seq(self) -> int:
        return int(self.get(34) or 0)

    @property
    def poss_dup(self) -> bool:
        return self.get(43) == "Y"

    @property
    def incoming(self) -> bool:
        return self.kind in ("from_admin", "from_app")

    def __str__(self) -> str:
        text = self.raw.replace(SOH, "|")
        return f"{self.kind:<10} {text}" if text else f"{self.kind:<10} {self.session}"


class Recorder(fix.Application):  # type: ignore[misc]
    """A QuickFIX Application that only records: every callback goes to ``events``."""

    def __init__(self) -> None:
        super().__init__()
        self.events: queue.Queue[Event] = queue.Queue()

    def _put(self, kind: str, session_id: fix.SessionID, message: fix.Message | None) -> None:
        try:
            raw = "" if message is None else message.toString()
            self.events.put(Event(kind, session_id.toString(), raw))
        except Exception as exc:  # never raise into the engine
            self.events.put(Event("error", "", f"{kind}: {exc!r}"))

    def onCreate(self, sessionID: fix.SessionID) -> None:
        self._put("created", sessionID, None)

    def onLogon(self, sessionID: fix.SessionID) -> None:
        self._put("logon", sessionID, None)

    def onLogout(self, sessionID: fix.SessionID) -> None:
        self._put("logout", sessionID, None)

    def toAdmin(self, message: fix.Message, sessionID: fix.SessionID) -> None:
        self._put("to_admin", sessionID, message)

    def fromAdmin(self, message: fix.Message, sessionID: fix.SessionID) -> None:
        self._put("from_admin", sessionID, message)

    def toApp(self, message: fix.Message, sessionID: fix.SessionID) -> None:
        self._put("to_app", sessionID, message)

    def fromApp(self, message: fix.Message, sessionID: fix.SessionID) -> None:
        self._put("from_app", sessionID, message)


class Inbox:
    """The events seen so far (``history``), refilled from the Recorder's queue on demand."""

    def __init__(self, source: queue.Queue[Event]) -> None:
        self._source = source
        self.history: list[Event] = []

    def drain(self) -> list[Event]:
        while True:
            try:
                self.history.append(self._source.get_nowait())
            except queue.Empty:
                return self.history

    def wait_until(
        self, condition: Callable[[Sequence[Event]], bool], what: str, timeout: float = 10.0
    ) -> list[Event]:
        """Blocks until ``condition(history)`` holds; AssertionError after ``timeout``."""
        deadline = time.monotonic() + timeout
        self.drain()
        while not condition(self.history):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"QuickFIX: timed out waiting for {what}\n{self.dump()}")
            try:
                self.history.append(self._source.get(timeout=remaining))
            except queue.Empty:
                continue
            self.drain()
        return self.history

    def index_of(self, kind: str, since: int = 0) -> int | None:
        for i in range(since, len(self.history)):
            if self.history[i].kind == kind:
                return i
        return None

    def dump(self, last: int = 80) -> str:
        lines = [str(e) for e in self.drain()[-last:]]
        body = "\n  ".join(lines)
        return f"QuickFIX callbacks (last {len(lines)}):\n  {body}"


# --------------------------------------------------------------------------- messages


def _utc_timestamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%d-%H:%M:%S.%f")[:-3]


def new_order_single(cl_ord_id: str, symbol: str = "BTC-USD", qty: int = 100) -> fix.Message:
    """A well-formed market NewOrderSingle (valid in FIX 4.4 and FIX 5.0SP2)."""
    msg = fix.Message()
    msg.getHeader().setField(35, "D")
    for tag, value in (
        (11, cl_ord_id), (21, "1"), (38, str(qty)), (40, "1"), (54, "1"), (55, symbol),
        (60, _utc_timestamp()),
    ):
        msg.setField(tag, value)
    return msg


def order_cancel_request(
    cl_ord_id: str, orig_cl_ord_id: str, symbol: str = "BTC-USD"
) -> fix.Message:
    """A well-formed OrderCancelRequest (the conformance application rejects it: 35=j)."""
    msg = fix.Message()
    msg.getHeader().setField(35, "F")
    for tag, value in (
        (11, cl_ord_id), (38, "100"), (41, orig_cl_ord_id), (54, "1"), (55, symbol),
        (60, _utc_timestamp()),
    ):
        msg.setField(tag, value)
    return msg


# --------------------------------------------------------------------------- the initiator


class Initiator:
    """A QuickFIX ``SocketInitiator`` with one session; use as a context manager (stops)."""

    def __init__(
        self,
        version: Version,
        *,
        host: str,
        port: int,
        workdir: Path,
        reset_on_logon: bool = True,
        reconnect_interval: int = 1,
        extra: Mapping[str, str] | None = None,
    ) -> None:
        self.version = version
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.config_path = workdir / "quickfix.cfg"
        self.config_path.write_text(
            settings_text(
                version, host=host, port=port, workdir=workdir, reset_on_logon=reset_on_logon,
                reconnect_interval=reconnect_interval, extra=extra,
            )
        )
        self.settings = fix.SessionSettings(str(self.config_path))
        self.app = Recorder()
        self.inbox = Inbox(self.app.events)
        self._store_factory = fix.FileStoreFactory(self.settings)
        self._log_factory = fix.FileLogFactory(self.settings)
        self._initiator: fix.SocketInitiator | None = fix.SocketInitiator(
            self.app, self._store_factory, self.settings, self._log_factory
        )
        self.session_id = fix.SessionID(
            version.begin_string, version.sender_comp_id, version.target_comp_id
        )
        self._running = False

    def __enter__(self) -> Initiator:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        assert self._initiator is not None, "already stopped"
        self._initiator.start()
        self._running = True

    def stop(self) -> None:
        """Stops the engine at once (call :meth:`logout` first for a clean Logout) and frees
        it: QuickFIX keeps one process-wide registry of sessions by SessionID, and a session
        left alive (say by a failed test's traceback) would shadow the next test's one."""
        initiator, self._initiator = self._initiator, None
        if initiator is not None:
            if self._running:
                initiator.stop(True)
            del initiator  # the C++ destructor deletes (and unregisters) the session
        self._running = False

    def session(self) -> fix.Session:
        assert self._initiator is not None, "already stopped"
        session = fix.Session.lookupSession(self.session_id)
        assert session is not None, f"QuickFIX has no session {self.session_id.toString()}"
        return session

    def expected_target_seq(self) -> int:
        return int(self.session().getExpectedTargetNum())

    def send(self, message: fix.Message) -> None:
        assert fix.Session.sendToTarget(message, self.session_id), "sendToTarget refused"

    def wait_logon(self, since: int = 0, timeout: float = 10.0) -> int:
        """Index in the history of the first onLogon at or after ``since``."""
        self.inbox.wait_until(
            lambda h: self.inbox.index_of("logon", since) is not None, "onLogon", timeout
        )
        index = self.inbox.index_of("logon", since)
        assert index is not None
        return index

    def logout(self, timeout: float = 10.0) -> int:
        """Logout handshake started by QuickFIX; index of the onLogout it ends with."""
        since = len(self.inbox.drain())
        self.session().logout("interop test done")
        self.inbox.wait_until(
            lambda h: self.inbox.index_of("logout", since) is not None, "onLogout", timeout
        )
        index = self.inbox.index_of("logout", since)
        assert index is not None
        return index

    def engine_log(self) -> str:
        """QuickFIX's own event log and message log (for failure reports)."""
        parts = []
        for path in sorted((self.workdir / "log").glob("*.log")):
            text = path.read_text(errors="replace").replace(SOH, "|")
            parts.append(f"--- {path.name}\n{text[-6000:]}")
        return "\n".join(parts)

    def describe(self) -> str:
        return f"{self.inbox.dump()}\n{self.engine_log()}"
