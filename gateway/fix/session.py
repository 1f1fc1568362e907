"""The FIX session layer as a state machine without I/O (FIXT 1.1 / FIX 4.4 Vol. 2).

A :class:`Session` is fed frames and the time, and hands back ordered *actions* for its driver
(bytes to persist and send, a resend range to serve from the store, a store reset, a close)
and *events* for the application (logged on, an application message, logged out). It never
reads a clock or touches a socket or a database: the asyncio layer in ``gateway.server`` does.

Behaviour follows the FIX Session Layer Test Cases and, where they leave room, QuickFIX, the
engine counterparties compare us with: sequence number checks (too high -> ResendRequest and the
message queued; too low -> Logout unless PossDupFlag), PossDup/OrigSendingTime rules, SendingTime
accuracy, heartbeats and TestRequests from the HeartBtInt, gap fills for administrative messages
on resend, SequenceReset in gap-fill and reset mode, Reject with SessionRejectReason/RefTagID/
RefMsgType, and the Logout handshake.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Final, Protocol

from gateway.native import dataclass_init_when_interpreted

from .codec import FrameParser, Garbled, GarbledMessage, StreamError, encode
from .dictionary import APPL_VER_BY_NAME, APPL_VER_IDS, DataDictionary
from .errors import SessionNotReady as SessionNotReady
from .fixtime import NS, TimestampFormatter, parse_utc_timestamp
from .message import Message
from .rejects import business_reject_body, reject_body, reverse_route, version_key
from .resend import Resender
from .states import LOGGED_ON_STATES, LOGOUT_SENT_STATES, Role, State, Step, next_state, step
from .tags import (
    ADMIN_TYPES,
    BR_CONDITIONALLY_REQUIRED_FIELD_MISSING,
    COMPID_PROBLEM,
    HEARTBEAT,
    LOGON,
    LOGOUT,
    REJECT,
    REQUIRED_TAG_MISSING,
    RESEND_REQUEST,
    SENDING_TIME_ACCURACY,
    SEQUENCE_RESET,
    TEST_REQUEST,
    VALUE_INCORRECT,
)
from .validation import SessionReject, ValidationSettings, parse_message, validate

# Enum members read once (compiled, a member of another module's Enum is read through its
# metaclass's __getattr__, ten times a constant's cost: docs/performance.md, "Enum members")
_ACCEPTOR: Final = Role.ACCEPTOR
_INITIATOR: Final = Role.INITIATOR
_AUTHENTICATING: Final = State.AUTHENTICATING
_AWAITING_LOGON: Final = State.AWAITING_LOGON
_DISCONNECTED: Final = State.DISCONNECTED
_STATE_LOGGED_ON: Final = State.LOGGED_ON
_STATE_LOGON_SENT: Final = State.LOGON_SENT
_STATE_LOGOUT_SENT: Final = State.LOGOUT_SENT
_CLOSED: Final = Step.CLOSED
_CONNECTED: Final = Step.CONNECTED
_STEP_LOGGED_ON: Final = Step.LOGGED_ON
_LOGON_CHECKED: Final = Step.LOGON_CHECKED
_LOGON_HELD: Final = Step.LOGON_HELD
_STEP_LOGON_SENT: Final = Step.LOGON_SENT
_STEP_LOGOUT_SENT: Final = Step.LOGOUT_SENT


# --------------------------------------------------------------------------------------------
# identities and settings


@dataclass(frozen=True, slots=True)
class SessionID:
    """BeginString + our SenderCompID + the counterparty's CompID (+ qualifier)."""

    begin_string: str
    sender_comp_id: str
    target_comp_id: str
    qualifier: str = ""

    def __hash__(self) -> int:
        # (the hash dataclasses would generate, written out: that one runs interpreted, and
        # sessions are dict keys the order path looks up several times an order)
        return hash((self.begin_string, self.sender_comp_id, self.target_comp_id,
                     self.qualifier))

    def __str__(self) -> str:
        q = f":{self.qualifier}" if self.qualifier else ""
        return f"{self.begin_string}:{self.sender_comp_id}->{self.target_comp_id}{q}"

    @property
    def file_prefix(self) -> str:
        """QuickFIX's log file prefix, e.g. ``FIX.4.4-ISLD-TW44``."""
        q = f"-{self.qualifier}" if self.qualifier else ""
        return f"{self.begin_string}-{self.sender_comp_id}-{self.target_comp_id}{q}"

    @property
    def is_fixt(self) -> bool:
        return self.begin_string.startswith("FIXT")


@dataclass(frozen=True, slots=True)
class SessionSettings:
    session_id: SessionID
    role: Role = Role.ACCEPTOR
    """Which side we are: the acceptor answers a Logon, the initiator sends one
    (:meth:`Session.logon`)."""
    heartbeat_interval: int = 30
    """Initiator only: the HeartBtInt (108) our Logon asks for (the acceptor takes the
    counterparty's)."""
    default_appl_ver_id: str | None = None
    """FIXT only: our DefaultApplVerID (1137), e.g. ``FIX.5.0SP2``."""
    check_latency: bool = True
    max_latency: float = 120.0
    """SendingTime (52) may differ from our clock by this many seconds [MaxLatency]."""
    logon_timeout: float = 10.0
    """A connection that has not logged on after this long is dropped."""
    logout_timeout: float = 2.0
    reset_on_logon: bool = False
    reset_on_logout: bool = False
    reset_on_disconnect: bool = False
    send_next_expected_msg_seq_num: bool = False
    """Send NextExpectedMsgSeqNum (789) in our Logon (FIX 4.4+ "sequence number recovery")."""
    timestamp_precision: int = 3
    test_request_factor: float = 1.2
    """Send TestRequest after HeartBtInt x this of silence; drop after twice that."""
    validation: ValidationSettings = field(default_factory=ValidationSettings)
    appl_ver_id_in_business_reject: bool = False
    """QuickFIX writes DefaultApplVerID (1137) into the body of a BusinessMessageReject on FIXT
    sessions (its acceptance scripts expect it); the FIX 5.0SP2 dictionary does not define 1137
    there and strict counterparties (QuickFIX's own validator) reject it, so it is off by
    default."""
    require_authentication: bool = False
    """When set, a Logon is held in AUTHENTICATING until the driver calls
    :meth:`Session.logon_authenticated` (credentials are checked off the event loop).
    Acceptor only."""


# --------------------------------------------------------------------------------------------
# outputs


class Attachment(Protocol):
    """What an application stores with a message: ``payload`` is opaque to the session and
    given to the driver's store; ``committed`` is called once the commit is done."""

    @property
    def payload(self) -> object: ...

    def committed(self) -> None: ...

    def failed(self, exc: BaseException) -> None:
        """The commit failed: the message was neither stored nor written, and its sequence
        number is taken back (:meth:`Session.rewind`)."""


@dataclass(frozen=True, slots=True)
class Send:
    """Write ``data`` to the counterparty. When ``persist``, store it (for resend) with its
    MsgSeqNum and commit before writing (Invariant 1)."""

    data: bytes
    seq: int
    persist: bool = True
    write: bool = True
    """False for a message produced just before the transport went away: it is stored (and
    resent on request) but never written to a later connection."""
    ref: str | None = None
    """The application's reference for what this message reports (an ExecID): stored with the
    message in one commit, so "the client was told" is never lost nor recorded twice."""
    attachment: Attachment | None = None
    """Application state to store in the same commit as the message (e.g. the order event the
    report tells of); told when that commit is done."""

    # (written, to be compiled: gateway.native.dataclass_init_when_interpreted)
    def __init__(self, data: bytes, seq: int, persist: bool = True, write: bool = True,
                 ref: str | None = None, attachment: Attachment | None = None) -> None:
        self.data = data  # type: ignore[misc]
        self.seq = seq  # type: ignore[misc]
        self.persist = persist  # type: ignore[misc]
        self.write = write  # type: ignore[misc]
        self.ref = ref  # type: ignore[misc]
        self.attachment = attachment  # type: ignore[misc]


dataclass_init_when_interpreted(Send)


@dataclass(frozen=True, slots=True)
class Resend:
    """Serve a ResendRequest: feed stored messages begin..end to :meth:`Session.resender`."""

    begin: int
    end: int


@dataclass(frozen=True, slots=True)
class ResetStore:
    """Sequence numbers went back to 1: forget the stored messages (before the next Send)."""


@dataclass(frozen=True, slots=True)
class Close:
    reason: str


Action = Send | Resend | ResetStore | Close


@dataclass(frozen=True, slots=True)
class LoggedOn:
    reset: bool


@dataclass(frozen=True, slots=True)
class AppMessage:
    message: Message

    # (written, to be compiled: gateway.native.dataclass_init_when_interpreted)
    def __init__(self, message: Message) -> None:
        self.message = message  # type: ignore[misc]


dataclass_init_when_interpreted(AppMessage)


@dataclass(frozen=True, slots=True)
class LoggedOut:
    reason: str


@dataclass(frozen=True, slots=True)
class AuthenticationRequired:
    username: str | None
    password: str | None
    message: Message


@dataclass(frozen=True, slots=True)
class RejectReceived:
    """The counterparty rejected one of our messages at the session level (35=3)."""

    message: Message


@dataclass(frozen=True, slots=True)
class Note:
    """A line for the session's event log."""

    text: str


Event = LoggedOn | AppMessage | LoggedOut | AuthenticationRequired | RejectReceived | Note


class _FieldMissing(Exception):  # noqa: N818
    def __init__(self, tag: int) -> None:
        self.tag = tag


class _WrongVersion(Exception):  # noqa: N818
    pass


class Session:
    """One FIX session, on either side (``settings.role``). It outlives connections:
    ``connect`` starts one; an initiator then sends its Logon with :meth:`logon`."""

    def __init__(
        self,
        settings: SessionSettings,
        session_dd: DataDictionary,
        app_dds: dict[str, DataDictionary] | None = None,
        *,
        next_sender: int = 1,
        next_target: int = 1,
        allow_resend: Callable[[Message], bool] | None = None,
    ) -> None:
        self.settings = settings
        self.sid = settings.session_id
        self.role = settings.role
        self.session_dd = session_dd
        self.app_dds = app_dds or {settings.session_id.begin_string: session_dd}
        self.next_sender = next_sender
        self.next_target = next_target
        self._allow_resend = allow_resend
        self._begin = self.sid.begin_string.encode()
        self._sender = self.sid.sender_comp_id.encode()
        self._target = self.sid.target_comp_id.encode()
        self._is_fixt = self.sid.is_fixt
        self._our_appl_ver = (
            APPL_VER_BY_NAME.get(settings.default_appl_ver_id or "", b"") if self._is_fixt else b""
        )
        self._target_appl_ver: str = settings.default_appl_ver_id or self.sid.begin_string
        self._ts = TimestampFormatter(settings.timestamp_precision)
        self._actions: list[Action] = []
        self._events: list[Event] = []
        self._queue: dict[int, Message] = {}
        self._parser: FrameParser | None = None
        self.logon_message: Message | None = None
        self.logout_text: str | None = None
        """The Text (58) of the counterparty's last Logout (None: it sent none)."""
        self.logout_initiator = ""
        """How the last connection ended: "counterparty" (it sent Logout), "local" (we did and
        it answered) or "disconnect" (the transport went away without the handshake)."""
        """The counterparty's Logon of the current connection (its options, e.g. 8013)."""
        self.state = _DISCONNECTED
        """Set by :meth:`_step` alone, through the table of :mod:`gateway.fix.states`."""
        self._reset_connection(0.0)

    # ---------------------------------------------------------------------------------------
    # connection lifecycle

    def _step(self, what: Step) -> None:
        self.state = step(self.state, what)

    @property
    def received_logon(self) -> bool:
        """The counterparty's Logon of this connection was received (and answered)."""
        return self.state in LOGGED_ON_STATES

    @property
    def sent_logout(self) -> bool:
        """We sent a Logout on this connection."""
        return self.state in LOGOUT_SENT_STATES

    def _reset_connection(self, now: float) -> None:
        self.heart_bt_int = 0
        self._sent_reset = False
        self._connected_at = now
        self._last_sent = now
        self._last_received = now
        self._test_requests = 0
        self._logout_deadline: float | None = None
        self._resend_range: tuple[int, int] | None = None
        self._held: list[bytes] = []
        self._auth_msg: Message | None = None
        self._queue.clear()

    def connect(self, now: float) -> None:
        """A transport is up; the counterparty must log on within ``logon_timeout``."""
        self._reset_connection(now)
        self.logout_initiator = "disconnect"
        self.logout_text = None
        self._parser = None
        self._step(_CONNECTED)

    def logon(
        self, now: float, *, reset: bool = False, body: Iterable[tuple[int, bytes]] = ()
    ) -> None:
        """Initiator: send our Logon (HeartBtInt from the settings; ResetSeqNumFlag when
        ``reset`` or ``reset_on_logon``; ``body``: more fields, e.g. Username and Password)
        and wait ``logon_timeout`` for the answer."""
        if self.role is not _INITIATOR:
            raise SessionNotReady(f"{self.sid} is an acceptor: it answers a Logon")
        reset = reset or self.settings.reset_on_logon
        if reset:
            self._reset_seq()
        hb = self.settings.heartbeat_interval
        fields: list[tuple[int, bytes]] = [(98, b"0"), (108, b"%d" % hb)]
        if reset:
            fields.append((141, b"Y"))
        if self.settings.send_next_expected_msg_seq_num:
            fields.append((789, b"%d" % self.next_target))
        fields.extend(body)
        if self._is_fixt:
            fields.append((1137, self._our_appl_ver))
        self.heart_bt_int = hb
        self._sent_reset = reset
        self._connected_at = now
        self._emit(LOGON, fields, now)
        self._step(_STEP_LOGON_SENT)
        self._note("Initiated logon request")

    def connection_lost(self, now: float) -> None:
        self._actions = [
            Send(a.data, a.seq, a.persist, False, a.ref, a.attachment) if isinstance(a, Send)
            else a
            for a in self._actions
            if not isinstance(a, Resend | Close)
        ]
        was_logged_on = self.received_logon
        self._step(_CLOSED)
        self._reset_connection(now)
        if self.settings.reset_on_disconnect:
            self._reset_seq()
        if was_logged_on:
            self._events.append(LoggedOut("disconnected"))

    @property
    def appl_version(self) -> str:
        """The application version of what we send: our DefaultApplVerID on FIXT (FIX.5.0,
        FIX.5.0SP2), else the BeginString (FIX.4.4)."""
        return self.settings.default_appl_ver_id or self.sid.begin_string

    @property
    def is_logged_on(self) -> bool:
        return self.received_logon and self.state in (_STATE_LOGGED_ON, _STATE_LOGOUT_SENT)

    # ---------------------------------------------------------------------------------------
    # outputs

    def next_actions(self) -> list[Action]:
        out, self._actions = self._actions, []
        return out

    def events(self) -> list[Event]:
        out, self._events = self._events, []
        return out

    def _note(self, text: str) -> None:
        self._events.append(Note(text))

    def _close(self, reason: str) -> None:
        if self.state is not _DISCONNECTED:
            self._note(f"Disconnecting: {reason}")
            self._actions.append(Close(reason))
            was_logged_on = self.received_logon
            self._step(_CLOSED)
            if was_logged_on:
                self._events.append(LoggedOut(reason))

    # ---------------------------------------------------------------------------------------
    # input

    def receive_data(self, data: bytes, now: float) -> None:
        """Feed raw bytes (the session frames them itself)."""
        if self._parser is None:
            self._parser = FrameParser()
        self._parser.feed(data)
        for ev in self._parser.frames():
            if isinstance(ev, StreamError):
                self._close(f"unrecoverable stream: {ev.reason}")
                return
            if isinstance(ev, Garbled):
                self.receive_garbled(ev.reason, now)
            else:
                self.receive_frame(ev.data, now)

    def receive_garbled(self, reason: str, now: float) -> None:
        self._note(f"Garbled message ignored: {reason}")
        if self.state is _AWAITING_LOGON:
            self._close("first message is garbled")

    def receive_frame(self, data: bytes, now: float) -> None:
        """One framed message off the wire."""
        if self.state is _DISCONNECTED:
            return
        if self.state is _AUTHENTICATING:
            self._held.append(data)
            return
        try:
            msg = self._parse(data)
        except GarbledMessage as exc:
            self._note(f"Invalid message ignored: {exc}")
            if self.state is _AWAITING_LOGON:
                self._close(f"first message is not a valid FIX message: {exc}")
            return
        self._next(msg, now, queued=False)

    def _app_dd_for(self, appl_ver: str) -> DataDictionary:
        dd = self.app_dds.get(appl_ver)
        if dd is None:
            dd = self.app_dds.get(self._target_appl_ver) or next(iter(self.app_dds.values()))
        return dd

    def _parse(self, data: bytes) -> Message:
        if not self._is_fixt:
            return parse_message(data, self.session_dd, self.session_dd)
        msg = parse_message(data, self.session_dd, self._app_dd_for(self._target_appl_ver))
        av = msg.header.get(1128)
        if av is not None:
            name = APPL_VER_IDS.get(av)
            if name and name != self._target_appl_ver and name in self.app_dds:
                msg = parse_message(data, self.session_dd, self.app_dds[name], verify=False)
        return msg

    # ---------------------------------------------------------------------------------------
    # the receive path (QuickFIX Session::next(Message))

    def _next(self, msg: Message, now: float, queued: bool) -> None:
        h = msg.header
        msg_type = msg.msg_type
        try:
            if 49 not in h:
                raise _FieldMissing(49)
            if 56 not in h:
                raise _FieldMissing(56)
            if h.get(8) != self._begin:
                raise _WrongVersion
            allowed = next_state(self.state, msg_type)
            if allowed is None:
                if self.state is _AWAITING_LOGON:
                    self._close("first message is not a Logon")
                else:
                    self._close(f"MsgType {msg_type!r} not allowed in state {self.state.value}")
                return
            if msg_type == LOGON and self._is_fixt:
                dav = msg.get(1137)
                if dav is None:
                    raise _FieldMissing(1137)
                name = APPL_VER_IDS.get(dav)
                if name is not None:
                    self._target_appl_ver = name
            is_app = msg_type not in ADMIN_TYPES
            if self._is_fixt and is_app:
                av = h.get(1128)
                app_dd = self._app_dd_for(
                    APPL_VER_IDS.get(av, self._target_appl_ver) if av else self._target_appl_ver
                )
                validate(msg, self.session_dd, app_dd, self.settings.validation)
            else:
                validate(msg, self.session_dd, self.session_dd, self.settings.validation)

            if msg_type == LOGON:
                self._on_logon(msg, now)
            elif msg_type == HEARTBEAT:
                if self._verify(msg, now):
                    self.next_target += 1
            elif msg_type == TEST_REQUEST:
                if self._verify(msg, now):
                    self._emit(HEARTBEAT, [(112, msg.get(112) or b"")], now)
                    self.next_target += 1
            elif msg_type == SEQUENCE_RESET:
                self._on_sequence_reset(msg, now)
            elif msg_type == LOGOUT:
                self._on_logout(msg, now)
            elif msg_type == RESEND_REQUEST:
                self._on_resend_request(msg, now)
            elif msg_type == REJECT:
                if self._verify(msg, now):
                    self.next_target += 1
                    self._events.append(RejectReceived(msg))
            else:
                if self._verify(msg, now):
                    self.next_target += 1
                    self._events.append(AppMessage(msg))
        except _FieldMissing as exc:
            if msg.msg_type not in ADMIN_TYPES and version_key(h.get(8) or b"") >= (4, 2):
                self._business_reject(
                    msg, BR_CONDITIONALLY_REQUIRED_FIELD_MISSING, exc.tag, now, increment=True
                )
            else:
                self._reject(msg, REQUIRED_TAG_MISSING, now, tag=exc.tag)
                if msg_type == LOGON:
                    self._close("Required field missing from logon")
        except SessionReject as rej:  # (a name of its own: mypyc types a name once)
            self._reject(msg, rej.reason, now, tag=rej.tag, text=rej.text)
            if msg_type == LOGON:
                self._close(f"Logon rejected: {rej.text}")
        except _WrongVersion:
            if msg_type == LOGOUT:
                self._on_logout(msg, now)
            elif self.state is _AWAITING_LOGON:
                self._close("Incorrect BeginString")
            else:
                self._logout(now, "Incorrect BeginString")
                self.next_target += 1
        if not queued:
            self._next_queued(now)

    def _next_queued(self, now: float) -> None:
        while self.state is not _DISCONNECTED and self.next_target in self._queue:
            msg = self._queue.pop(self.next_target)
            self._note(f"Processing QUEUED message: {self.next_target}")
            if msg.msg_type in (LOGON, RESEND_REQUEST):
                self.next_target += 1
            else:
                self._next(msg, now, queued=True)
        if self._queue:
            for seq in [s for s in self._queue if s < self.next_target]:
                del self._queue[seq]

    # ---------------------------------------------------------------------------------------
    # checks shared by every message type (QuickFIX Session::verify)

    def _valid_logon_state(self, msg_type: bytes, reset: bool) -> bool:
        if reset:
            return True
        if msg_type == LOGON:
            return not self.received_logon
        if self.received_logon:
            return True
        if msg_type == LOGOUT and self.state is _STATE_LOGON_SENT:
            return True
        return msg_type in (SEQUENCE_RESET, REJECT) or self.sent_logout

    def _verify(
        self, msg: Message, now: float, check_too_high: bool = True, check_too_low: bool = True,
        reset: bool = False,
    ) -> bool:
        """QuickFIX's Session::verify; ``reset``: the message is a Logon with
        ResetSeqNumFlag=Y being answered."""
        h = msg.header
        msg_type = msg.msg_type
        sending_raw = h.get(52)
        seq_raw = h.get(34)
        if sending_raw is None or ((check_too_high or check_too_low) and seq_raw is None):
            self._close("message without SendingTime or MsgSeqNum")
            return False
        if not self._valid_logon_state(msg_type, reset):
            self._close("Logon state is not valid for message")
            return False
        try:
            sending_ns = parse_utc_timestamp(sending_raw)
        except ValueError:
            self._close("unreadable SendingTime")
            return False
        latency = abs(now * NS - sending_ns)
        if self.settings.check_latency and latency > self.settings.max_latency * NS:
            self._reject(msg, SENDING_TIME_ACCURACY, now)
            if self.state is not _DISCONNECTED:
                self._logout(now)
            return False
        if h.get(49) != self._target or h.get(56) != self._sender:
            self._reject(msg, COMPID_PROBLEM, now)
            if self.state is not _DISCONNECTED:
                self._logout(now)
            return False
        seq = int(seq_raw) if seq_raw is not None and seq_raw.isdigit() else 0
        if check_too_high and seq > self.next_target:
            self._target_too_high(msg, seq, now)
            return False
        if check_too_low and seq < self.next_target:
            return self._target_too_low(msg, seq, sending_ns, now)
        if (check_too_high or check_too_low) and self._resend_range is not None:
            if seq >= self._resend_range[1]:
                self._note(
                    f"ResendRequest for messages FROM: {self._resend_range[0]} "
                    f"TO: {self._resend_range[1]} has been satisfied."
                )
                self._resend_range = None
        self._last_received = now
        self._test_requests = 0
        return True

    def _target_too_high(self, msg: Message, seq: int, now: float) -> None:
        self._note(f"MsgSeqNum too high, expecting {self.next_target} but received {seq}")
        self._queue[seq] = msg
        if self._resend_range is not None and seq >= self._resend_range[0]:
            self._note(
                f"Already sent ResendRequest FROM: {self._resend_range[0]} "
                f"TO: {self._resend_range[1]}.  Not sending another."
            )
            return
        begin = self.next_target
        self._emit(RESEND_REQUEST, [(7, b"%d" % begin), (16, b"0")], now)
        self._resend_range = (begin, seq - 1)
        self._note(f"Sent ResendRequest FROM: {begin} TO: {seq - 1}")

    def _target_too_low(self, msg: Message, seq: int, sending_ns: int, now: float) -> bool:
        if msg.header.get(43) != b"Y":
            text = f"MsgSeqNum too low, expecting {self.next_target} but received {seq}"
            self._logout(now, text)
            self._close(text)
            return False
        if msg.msg_type != SEQUENCE_RESET:
            orig = msg.header.get(122)
            if orig is None:
                self._reject(msg, REQUIRED_TAG_MISSING, now, tag=122)
                return False
            try:
                orig_ns = parse_utc_timestamp(orig)
            except ValueError:
                orig_ns = sending_ns + 1
            if orig_ns > sending_ns:
                self._reject(msg, SENDING_TIME_ACCURACY, now)
                self._logout(now)
                return False
        return False

    # ---------------------------------------------------------------------------------------
    # administrative messages

    def _on_logon(self, msg: Message, now: float) -> None:
        if (self.role is _INITIATOR and self.state is _AWAITING_LOGON
                and msg.get(141) != b"Y"):
            # (a Logon with ResetSeqNumFlag=Y is a request, answered as an acceptor would)
            self._close("Received logon response before sending request")
            return
        if (self.state is _AWAITING_LOGON and self.settings.require_authentication
                and self.role is _ACCEPTOR):
            self._step(_LOGON_HELD)
            self._auth_msg = msg
            self._events.append(
                AuthenticationRequired(msg.get_str(553), msg.get_str(554), msg)
            )
            return
        self._complete_logon(msg, now)

    def logon_authenticated(self, ok: bool, reason: str, now: float) -> None:
        """The driver's answer to :class:`AuthenticationRequired`: complete or refuse the Logon,
        then process the frames that arrived meanwhile."""
        if self.state is not _AUTHENTICATING or self._auth_msg is None:
            return
        logon, self._auth_msg = self._auth_msg, None
        held, self._held = self._held, []
        self._step(_LOGON_CHECKED)
        if not ok:
            self._note(f"Logon rejected: {reason}")
            self._close(f"authentication failed: {reason}")
            return
        self._complete_logon(logon, now)
        for data in held:
            self.receive_frame(data, now)

    def _complete_logon(self, msg: Message, now: float) -> None:
        reset = msg.get(141) == b"Y"
        # an initiator's Logon answered: a reset it asked for was done when it sent the Logon
        answer = self.role is _INITIATOR and self.state is _STATE_LOGON_SENT
        if reset:
            self._note("Logon contains ResetSeqNumFlag=Y, resetting sequence numbers to 1")
            if not (answer and self._sent_reset):
                self._reset_seq()
        elif self.settings.reset_on_logon and not self.received_logon and not answer:
            self._reset_seq()
        if not self._verify(msg, now, check_too_high=False, check_too_low=True, reset=reset):
            if self.state is not _DISCONNECTED and not self.received_logon:
                self._close("Logon failed verification")
            return
        self._step(_STEP_LOGGED_ON)
        self.logon_message = msg
        last_sent = self.next_sender - 1
        if answer and not (reset and not self._sent_reset):
            self._note("Received logon response")
        else:  # a request, or (QuickFIX) a reset the initiator did not ask for: answered
            self._answer_logon(msg, reset, now)
        self._sent_reset = False
        if self._recover_from_their_expected(msg, reset, last_sent, now):
            self._logged_on(msg, reset, now)

    def _answer_logon(self, msg: Message, reset: bool, now: float) -> None:
        hb = msg.get_int(108) or 0
        self.heart_bt_int = hb
        self._note("Received logon request")
        body: list[tuple[int, bytes]] = [(98, b"0"), (108, b"%d" % hb)]
        if reset:
            body.append((141, b"Y"))
        seq = msg.seq_num or 0
        if self.settings.send_next_expected_msg_seq_num:
            expected = self.next_target + 1 if seq == self.next_target else self.next_target
            body.append((789, b"%d" % expected))
        if self._is_fixt:
            body.append((1137, self._our_appl_ver))
        self._emit(LOGON, body, now)
        self._note("Responding to logon request")

    def _recover_from_their_expected(
        self, msg: Message, reset: bool, last_sent: int, now: float
    ) -> bool:
        """FIX 4.4 / FIXT 1.1 sequence recovery: the counterparty's Logon says what it expects
        next (789); what we sent from there up to ``last_sent`` is resent (gap-filled for
        admin) right after the Logon. False when the number cannot be right (we logged out)."""
        if not self.settings.send_next_expected_msg_seq_num or reset:
            return True
        their_expected = msg.get_int(789)
        if their_expected is None:
            return True
        if their_expected > last_sent + 1:
            text = (
                f"NextExpectedMsgSeqNum (789) too high, expecting at most {last_sent + 1} "
                f"but received {their_expected}"
            )
            self._logout(now, text)
            self._close(text)
            return False
        if their_expected <= last_sent:
            self._actions.append(Resend(max(their_expected, 1), last_sent))
        return True

    def _logged_on(self, msg: Message, reset: bool, now: float) -> None:
        """The Logon is answered (either way): count it, or ask for what it shows is missing."""
        seq = msg.seq_num or 0
        if seq > self.next_target and not reset:
            self._target_too_high(msg, seq, now)
        else:
            self.next_target += 1
            self._next_queued(now)
        self._events.append(LoggedOn(reset))

    def _reset_seq(self) -> None:
        self.next_sender = 1
        self.next_target = 1
        self._queue.clear()
        self._resend_range = None
        self._actions.append(ResetStore())

    def _on_logout(self, msg: Message, now: float) -> None:
        if not self._verify(msg, now, check_too_high=False, check_too_low=False):
            return
        self.logout_text = msg.get_str(58)
        if not self.sent_logout:
            self._note("Received logout request")
            self._logout(now)
            self._note("Sending logout response")
            self.logout_initiator = "counterparty"
        else:
            self._note("Received logout response")
            self.logout_initiator = "local"
        self.next_target += 1
        if self.settings.reset_on_logout:
            self._reset_seq()
        self._close("logout")

    def _on_sequence_reset(self, msg: Message, now: float) -> None:
        gap_fill = msg.get(123) == b"Y"
        if not self._verify(msg, now, check_too_high=gap_fill, check_too_low=gap_fill):
            return
        new = msg.get(36)
        if new is None or not new.isdigit():
            return
        new_seq = int(new)
        self._note(f"Received SequenceReset FROM: {self.next_target} TO: {new_seq}")
        if new_seq > self.next_target:
            self.next_target = new_seq
        elif new_seq < self.next_target:
            self._reject(msg, VALUE_INCORRECT, now)

    def _on_resend_request(self, msg: Message, now: float) -> None:
        if not self._verify(msg, now, check_too_high=False, check_too_low=False):
            return
        begin = msg.get_int(7) or 0
        end = msg.get_int(16) or 0
        self._note(f"Received ResendRequest FROM: {begin} TO: {end}")
        last = self.next_sender - 1
        if end == 0 or end >= self.next_sender:
            end = last
        if begin <= end:
            self._actions.append(Resend(max(begin, 1), end))
        seq = msg.seq_num or 0
        if seq == self.next_target:
            self.next_target += 1

    # ---------------------------------------------------------------------------------------
    # timers

    def next_deadline(self) -> float | None:
        """When :meth:`on_timer` must next be called (None: nothing pending)."""
        if self.state is _DISCONNECTED:
            return None
        deadlines: list[float] = []
        if not self.received_logon:
            deadlines.append(self._connected_at + self.settings.logon_timeout)
        if self._logout_deadline is not None:
            deadlines.append(self._logout_deadline)
        hb = self.heart_bt_int
        if self.received_logon and hb > 0:
            f = self.settings.test_request_factor
            deadlines.append(self._last_received + 2 * f * hb)
            deadlines.append(self._last_received + f * (self._test_requests + 1) * hb)
            if self._test_requests == 0:
                deadlines.append(self._last_sent + hb)
        return min(deadlines) if deadlines else None

    def on_timer(self, now: float) -> None:
        if self.state is _DISCONNECTED:
            return
        if not self.received_logon:
            if now >= self._connected_at + self.settings.logon_timeout:
                self._close("no Logon received within the logon timeout")
            return
        if self._logout_deadline is not None and now >= self._logout_deadline:
            self._close("Timed out waiting for logout response")
            return
        hb = self.heart_bt_int
        if hb <= 0:
            return
        # the same expressions as next_deadline(), so a call at a deadline always acts
        f = self.settings.test_request_factor
        if now >= self._last_received + 2 * f * hb:
            self._close("Timed out waiting for heartbeat")
        elif now >= self._last_received + f * (self._test_requests + 1) * hb:
            self._emit(TEST_REQUEST, [(112, b"TEST")], now)
            self._test_requests += 1
            self._note("Sent test request TEST")
        elif now >= self._last_sent + hb and self._test_requests == 0:
            self._emit(HEARTBEAT, [], now)

    # ---------------------------------------------------------------------------------------
    # sending

    def _header(
        self, msg_type: bytes, seq: int, now: float, extra: Iterable[tuple[int, bytes]] = ()
    ) -> list[tuple[int, bytes]]:
        sending = self._ts.format(now)
        hdr = [(34, b"%d" % seq), (49, self._sender), (52, sending), (56, self._target), *extra]
        hdr.sort(key=_tag)
        return [(35, msg_type), *hdr]

    def _emit(
        self,
        msg_type: bytes,
        body: Iterable[tuple[int, bytes]],
        now: float,
        header_extra: Iterable[tuple[int, bytes]] = (),
        ref: str | None = None,
        attachment: Attachment | None = None,
    ) -> int:
        seq = self.next_sender
        fields = self._header(msg_type, seq, now, header_extra)
        fields.extend(body)
        data = encode(self._begin, fields)
        self.next_sender = seq + 1
        self._last_sent = now
        self._actions.append(Send(data, seq, True, ref=ref, attachment=attachment))
        return seq

    def send(
        self,
        msg_type: bytes,
        body: Iterable[tuple[int, bytes]],
        now: float,
        header_extra: Iterable[tuple[int, bytes]] = (),
        ref: str | None = None,
        attachment: Attachment | None = None,
    ) -> int:
        """Send an application message; returns its MsgSeqNum. ``ref`` (an ExecID) and
        ``attachment`` are stored with the message in the same commit."""
        if not self.is_logged_on:
            raise SessionNotReady(f"{self.sid} is not logged on")
        extra = [(t, v) for t, v in header_extra if t not in _FILLED_HEADER]
        return self._emit(msg_type, body, now, extra, ref, attachment)

    def send_if_logged_on(
        self, msg_type: bytes, body: Iterable[tuple[int, bytes]], now: float
    ) -> bool:
        """:meth:`send` when logged on; False, and nothing sent, otherwise (the answer to a
        request that outlived its session)."""
        if not self.is_logged_on:
            return False
        self.send(msg_type, body, now)
        return True

    def refuse(self, now: float, text: str) -> None:
        """Say why in a Logout (58) and close at once, without waiting for the answer: the
        driver cannot keep the session (its store is down). A connection that has not logged
        on gets the Logout too (QuickFIX answers a refused Logon so)."""
        if self.state is _DISCONNECTED:
            return
        if not self.sent_logout:
            self._emit(LOGOUT, [(58, text.encode())], now)
            self._step(_STEP_LOGOUT_SENT)
        self._close(text)

    def rewind(self, next_sender: int, next_target: int) -> None:
        """Take back sequence numbers that were never durable: messages from ``next_sender`` on
        were neither stored nor written (they are sent again, renumbered, or not at all), and
        the counterparty's from ``next_target`` on count as not received (its resend brings
        them back)."""
        self.next_sender = min(self.next_sender, next_sender)
        self.next_target = min(self.next_target, next_target)

    def logout(self, now: float, text: str | None = None) -> None:
        """Start the Logout handshake (closes after the answer or ``logout_timeout``)."""
        if self.is_logged_on and not self.sent_logout:
            self._logout(now, text)
        elif self.state is not _DISCONNECTED and not self.received_logon:
            self._close(text or "logout")

    def _logout(self, now: float, text: str | None = None) -> None:
        body = [(58, text.encode())] if text else []
        self._emit(LOGOUT, body, now)
        self._step(_STEP_LOGOUT_SENT)
        self._logout_deadline = now + self.settings.logout_timeout

    def _reject(
        self, msg: Message, reason: int, now: float, tag: int = 0, text: str | None = None
    ) -> None:
        """Reject (35=3) as QuickFIX's generateReject writes it."""
        seq_raw = msg.header.get(34)
        body, reason_text = reject_body(msg, reason, self._begin, tag, text)
        seq = int(seq_raw) if seq_raw and seq_raw.isdigit() else -1
        if msg.msg_type not in (LOGON, SEQUENCE_RESET) and seq == self.next_target:
            self.next_target += 1
        self._note(f"Message {seq_raw!r} Rejected: {reason_text} ({tag})")
        if not self.received_logon:
            self._close("Tried to send a reject while not logged on")
            return
        self._emit(REJECT, body, now, reverse_route(msg))

    def _business_reject(
        self,
        msg: Message,
        reason: int,
        tag: int,
        now: float,
        *,
        increment: bool,
        text: str | None = None,
        ref_id: bytes | None = None,
    ) -> None:
        appl_ver = (self._our_appl_ver if self._is_fixt
                    and self.settings.appl_ver_id_in_business_reject else None)
        body = business_reject_body(msg, reason, tag, text, ref_id, appl_ver)
        if increment:
            self.next_target += 1
        if not self.is_logged_on:
            self._close("Tried to send a business reject while not logged on")
            return
        self._emit(b"j", body, now)

    def business_reject(
        self,
        msg: Message,
        reason: int,
        now: float,
        *,
        tag: int = 0,
        text: str | None = None,
        ref_id: bytes | None = None,
    ) -> None:
        """The application's BusinessMessageReject (35=j) for an application message."""
        self._business_reject(msg, reason, tag, now, increment=False, text=text, ref_id=ref_id)

    # ---------------------------------------------------------------------------------------
    # resend

    def resender(self, begin: int, end: int, now: float) -> Resender:
        """What answers a ResendRequest for ``begin``..``end`` (gateway.fix.resend)."""
        return Resender(self, begin, end, now)

    # what the resender needs of the session (gateway.fix.resend)

    def sending_time(self, now: float) -> bytes:
        """SendingTime (52) of a message sent at ``now``, in the session's precision."""
        return self._ts.format(now)

    def header_ids(self) -> tuple[bytes, bytes, bytes]:
        """(BeginString, SenderCompID, TargetCompID) of what the session sends."""
        return self._begin, self._sender, self._target

    def sent_at(self, now: float) -> None:
        """Something was written at ``now`` (the heartbeat timer starts again)."""
        self._last_sent = now

    def note(self, text: str) -> None:
        """A line for the session's event log."""
        self._note(text)

    def may_resend(self, probe: Message) -> bool:
        """Whether the application lets this stored message go out again (else gap-filled)."""
        return self._allow_resend is None or self._allow_resend(probe)


_FILLED_HEADER = frozenset({8, 9, 10, 34, 35, 43, 49, 52, 56, 122})


def _tag(f: tuple[int, bytes]) -> int:
    return f[0]
