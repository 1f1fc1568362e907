"""FIX session store: sequence numbers, sent messages for resend, message log -- with group commit.

Invariant 7 (docs/architecture.md): the event loop never blocks on the database. Every
database operation runs in ONE dedicated writer thread that owns a synchronous SQLAlchemy
engine. The async methods
enqueue a request and await a future that the writer resolves with
``loop.call_soon_threadsafe``.

Group commit: the writer takes everything queued (all sessions, all kinds of request) and applies
it in ONE transaction, then resolves the futures of the whole batch. Under load many saves share
one commit, so throughput grows with concurrency instead of being bounded by commit latency.
Within a batch requests are applied in arrival order (consecutive writes are merged into
``executemany`` statements), so a read sees every write queued before it.

Invariant 1 (write-ahead): :meth:`SessionStore.save` returns only after the transaction holding
its messages has committed; the caller writes to the socket after that. Reads are also answered
only after their batch committed, so nothing returned is ever rolled back.

Orders (:mod:`gateway.store.orders`: event log, order snapshots, fills, reported ExecIDs, id
counters) go through the same writer and group commit; ``save(..., reports=...)`` stores the
ExecIDs a sent message carries in the transaction that stores the message.

If a batch fails (a bad request, a lost connection), it is rolled back and every request of it is
retried alone in its own transaction, so one bad request fails only its own caller. Writes are
upserts, so retrying a batch whose commit outcome was unknown is harmless. A batch that failed
because the connection was lost is first retried whole on a new connection.

Outages (the database went away, the disk is full: see :func:`is_outage`) are not retried
request by request: the batch fails with :class:`~gateway.store.errors.StoreUnavailable` and
the store is *down* -- every request after it fails the same way at once, so what is committed
is always a prefix of what was asked, in order. Message log entries are kept meanwhile (up to
:data:`LOG_BACKLOG`) and written once the store is back. The writer probes it with a real write
(``store_probe``), backing off from :data:`PROBE_FIRST_S` to :data:`PROBE_CAP_S`, logs each
change of state once and tells the listeners (:meth:`SessionStore.add_availability_listener`).

On a SQLite file the writer's commits never run a WAL checkpoint themselves (which syncs the
files to disk and held up one commit in a few dozen by milliseconds): a thread of its own does,
see :mod:`gateway.store.checkpoint`.

Hot path: the writer keeps one connection for its lifetime. The merged writes of a batch are
executed as SQL text rendered once per engine (:class:`_Statements`) with the DBAPI cursor's
``executemany`` -- no SQLAlchemy compilation, parameter or result processing -- from row tuples
built on the caller's side (``save``, :func:`~gateway.store.orders.build_append`). A batch of
writes only is also begun and committed on the DBAPI connection; a batch with a read runs in a
SQLAlchemy transaction (the reads use SQLAlchemy Core), its writes on the same DBAPI connection.
DBAPI errors are re-raised as SQLAlchemy's (``sqlalchemy.exc.IntegrityError``, ...), as if the
statements had run through SQLAlchemy.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, TypeAlias, TypeVar

from sqlalchemy import Connection, Dialect, Engine, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine.interfaces import DBAPIConnection, DBAPICursor, DBAPIModule
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.sql.dml import Insert

from gateway.audit.filelog import mask_secrets
from gateway.store.checkpoint import CHECKPOINT_INTERVAL_S, Checkpointer, configure_writer
from gateway.store.db import insert_sql, is_file_sqlite, make_engine, placeholder
from gateway.store.errors import StoreUnavailable
from gateway.store.migrate import upgrade
from gateway.store.nodes import (
    Claim,
    Me,
    NodeFenced,
    NodeRecord,
    claim,
    connection_name,
    fence_sql,
    hand_over,
    leave,
    live_nodes,
    lock_key,
    owner_of,
    process_id,
    register,
    release,
    renew,
    sessions_owned,
    set_address,
    take_over_gone,
    this_host,
)
from gateway.store.orders import (
    OrderAppend,
    OrderQuery,
    OrderStatements,
    OrderStore,
    PendingOrderWrites,
)
from gateway.store.schema import (
    ID_LENGTH,
    message_log,
    messages,
    sessions,
    store_probe,
)
from gateway.store.switches import check_kill_switch, load_kill_switches, upsert_kill_switch_sql

logger = logging.getLogger(__name__)

Direction: TypeAlias = Literal["in", "out"]
T = TypeVar("T")

PROBE_FIRST_S = 0.05
PROBE_CAP_S = 2.0
"""While the store is down it is probed this often, doubling from the first to the cap."""
LOG_BACKLOG = 100_000
LOG_BACKLOG_BYTES = 64 << 20
"""Message log entries kept while the store is down, at most this many and this many bytes
(the oldest are dropped beyond, counted and reported)."""

AvailabilityListener: TypeAlias = Callable[[bool, str], None]
"""Called on its event loop with (available, why) when the store goes down or comes back."""

COD_MODES = frozenset(("off", "disconnect", "logout", "both"))
"""The cancel-on-disconnect modes an override may be (:meth:`SessionStore.save_cod_override`)."""


@dataclass(frozen=True)
class SessionRecord:
    """The persisted state of one FIX session."""

    next_sender: int
    """MsgSeqNum (34) of the next message we send."""
    next_target: int
    """MsgSeqNum (34) we expect on the next message from the counterparty."""
    creation_time: datetime
    """When the sequence numbers were created or last reset (UTC)."""


@dataclass(frozen=True)
class StoreStats:
    """Counters of the writer thread (for tests and metrics)."""

    batches: int
    """Transactions committed by the writer (one per group commit)."""
    requests: int
    """Requests served, log appends included."""
    largest_batch: int


class StoreClosedError(RuntimeError):
    """The store is not running (not started yet, closed, or its writer thread died)."""


# --- requests handed to the writer thread ---------------------------------------------------


@dataclass(slots=True, eq=False)
class _Waiter:
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Any]


@dataclass(slots=True, eq=False)
class _Load:
    waiter: _Waiter
    session_id: str
    now: datetime


@dataclass(slots=True, eq=False)
class _Save:
    waiter: _Waiter
    session_id: str
    sent: tuple[tuple[str, int, bytes], ...]
    """``messages`` rows: (session_id, seq, data)."""
    next_sender: int | None
    next_target: int | None
    reports: tuple[tuple[str, str, int], ...]
    """``reports`` rows: (exec_id, session_id, seq)."""
    appends: tuple[OrderAppend, ...] = ()


@dataclass(slots=True, eq=False)
class _GetSent:
    waiter: _Waiter
    session_id: str
    begin: int
    end: int
    limit: int


@dataclass(slots=True, eq=False)
class _Reset:
    waiter: _Waiter
    session_id: str
    now: datetime


@dataclass(slots=True, eq=False)
class _Log:
    session_id: str
    direction: Direction
    data: bytes
    when: datetime


@dataclass(slots=True, eq=False)
class _SetCodOverride:
    waiter: _Waiter
    session_id: str
    mode: str | None
    now: datetime
    """The creation time of the session's row if it has none yet."""


@dataclass(slots=True, eq=False)
class _SetKillSwitch:
    waiter: _Waiter
    scope: str
    engaged: bool
    reason: str
    now: datetime


@dataclass(slots=True, eq=False)
class _OrderWrite:
    waiter: _Waiter
    append: OrderAppend


@dataclass(slots=True, eq=False)
class _OrderRead:
    waiter: _Waiter
    query: OrderQuery[Any]


@dataclass(slots=True, eq=False)
class _Stop:
    waiter: _Waiter


_Request: TypeAlias = (
    _Load | _Save | _GetSent | _Reset | _Log | _SetCodOverride | _SetKillSwitch | _OrderWrite
    | _OrderRead
)
_Outcome: TypeAlias = tuple[_Waiter, Any, BaseException | None]
_WRITES: frozenset[type] = frozenset((_Save, _Log, _SetCodOverride, _SetKillSwitch, _OrderWrite))
"""Requests that only write: a batch of these alone is begun and committed on the DBAPI level."""


@dataclass(slots=True)
class _PendingWrites:
    """Writes merged across consecutive requests of a batch, flushed before any read.
    Rows are tuples in the column order of the :class:`_Statements` SQL."""

    sent: dict[tuple[str, int], tuple[str, int, bytes]] = field(default_factory=dict)
    seqs: dict[str, list[int | None]] = field(default_factory=dict)
    logs: list[tuple[str, str, Any, bytes]] = field(default_factory=list)
    cod_overrides: dict[str, tuple[str, int, int, Any, str | None]] = field(default_factory=dict)
    """``upsert_cod_override`` rows by session id (the last one of a session wins)."""
    kill_switches: dict[str, tuple[str, bool, str, Any]] = field(default_factory=dict)
    """``upsert_kill_switch`` rows by scope (the last one of a scope wins)."""
    orders: PendingOrderWrites = field(default_factory=PendingOrderWrites)

    def __bool__(self) -> bool:
        return bool(
            self.sent or self.seqs or self.logs or self.cod_overrides or self.kill_switches
            or self.orders
        )


class _Statements:
    """Dialect-specific statements, built once per engine.

    The reads (and ``create_session`` / ``reset_session`` of load and reset) are SQLAlchemy
    statements; the batch writes (``create_sessions``, ``update_seqs``, ``upsert_message``,
    ``insert_log``, ``upsert_cod_override``, ``upsert_kill_switch``, ``orders.insert_event``
    ...) are SQL text for the DBAPI cursor with positional parameters: the same SQL SQLAlchemy
    renders for those statements.
    """

    def __init__(self, dialect: Dialect) -> None:
        dialect_name = dialect.name
        insert: Callable[..., Any]
        if dialect_name == "postgresql":
            insert = postgresql.insert
        elif dialect_name == "sqlite":
            insert = sqlite.insert
        else:  # pragma: no cover - make_engine refuses other back ends
            raise ValueError(f"unsupported dialect {dialect_name}")
        mark = placeholder(dialect_name)

        ins_session = insert(sessions)
        self.create_session: Insert = ins_session.on_conflict_do_nothing(
            index_elements=[sessions.c.session_id]
        )
        self.reset_session: Insert = ins_session.on_conflict_do_update(
            index_elements=[sessions.c.session_id],
            set_={
                "next_sender": ins_session.excluded.next_sender,
                "next_target": ins_session.excluded.next_target,
                "creation_time": ins_session.excluded.creation_time,
            },
        )
        # --- the batch writes: SQL text, rows are tuples in the order of the column lists
        self.create_sessions = insert_sql(
            sessions.name,
            ("session_id", "next_sender", "next_target", "creation_time"),
            mark,
            conflict=["session_id"],
        )
        self.update_seqs = (  # rows: (next_sender, next_target, session_id), None = keep
            f"UPDATE sessions SET next_sender = coalesce({mark}, next_sender), "  # noqa: S608 - mark is ? or %s
            f"next_target = coalesce({mark}, next_target) WHERE session_id = {mark}"
        )
        self.upsert_message = insert_sql(
            messages.name,
            ("session_id", "seq", "data"),
            mark,
            conflict=["session_id", "seq"],
            update=["data"],
        )
        self.insert_log = insert_sql(
            message_log.name, ("session_id", "direction", "logged_at", "data"), mark
        )
        self.upsert_cod_override = insert_sql(  # a session never loaded is created (1, 1, now)
            sessions.name,
            ("session_id", "next_sender", "next_target", "creation_time", "cod_override"),
            mark,
            conflict=["session_id"],
            update=["cod_override"],
        )
        self.upsert_kill_switch = upsert_kill_switch_sql(mark)
        self.probe = insert_sql(
            store_probe.name, ("id", "probed_ms"), mark, conflict=["id"], update=["probed_ms"]
        )
        self.fence = fence_sql(mark, dialect_name)
        self.pg = dialect_name == "postgresql"
        self.begin: str | None = "BEGIN IMMEDIATE" if dialect_name == "sqlite" else None
        """What begins a write transaction on the DBAPI connection (see gateway.store.db);
        psycopg begins one implicitly."""
        self.bind_time: Callable[[datetime], Any] = (
            _sqlite_time if dialect_name == "sqlite" else _utc
        )
        """An aware datetime as the UTCDateTime columns bind it (a test checks they agree)."""
        self.orders = OrderStatements(insert, mark)


class SessionStore(OrderStore):
    """Persistent FIX session state behind one writer thread with group commit.

    ``url`` is ``sqlite:///path`` or ``postgresql+psycopg://user@host:port/db``. ``clock``
    returns the current UTC time (creation times); tests may pass their own.
    ``checkpoint_interval``: seconds between WAL checkpoints of a SQLite file.

    Usage::

        store = SessionStore("sqlite:///data/fixgw.db")
        await store.start()                      # migrates, starts the writer
        record = await store.load("FIX.4.4:ISLD->TW44")
        store.save_cod_override(sid, "both")     # a Logon's 8013=Y, before its reply is saved
        await store.save(sid, sent=[(seq, raw)], next_sender=seq + 1)   # then write raw
        first = await store.reserve("event_id", 1000)        # ids first .. first + 999
        await store.append_order_events([event], [order], [fill])   # then call the venue / report
        await store.save(sid, sent=[(seq, er)], next_sender=seq + 1, reports=[(exec_id, seq)])
        await store.close()

    The order-side methods are documented in :class:`gateway.store.orders.OrderStore`.
    """

    def __init__(
        self,
        url: str,
        *,
        clock: Callable[[], datetime] | None = None,
        checkpoint_interval: float = CHECKPOINT_INTERVAL_S,
    ) -> None:
        self._engine: Engine = make_engine(url)  # does not connect
        self._clock = clock or _utcnow
        self._queue: queue.SimpleQueue[_Request | _Stop] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._state: Literal["new", "starting", "running", "closing", "closed"] = "new"
        self._thread: threading.Thread | None = None
        self._started: asyncio.Future[None] | None = None
        self._stopped: asyncio.Future[None] | None = None
        self._batches = 0
        # Writer-thread only: sessions whose row is committed (rows are never deleted), so a
        # save need not re-create them; _new_sessions become known when their batch commits.
        self._known_sessions: set[str] = set()
        self._new_sessions: set[str] = set()
        self._requests = 0
        self._largest_batch = 0
        # Writer-thread only: the connection kept for the writer's lifetime (replaced when lost),
        # its DBAPI connection and a cursor on it (the hot path's executemany).
        self._conn: Connection | None = None
        self._dbapi: DBAPIConnection | None = None
        self._cursor: DBAPICursor | None = None
        self._dbapi_error: type[DBAPIModule.Error] = self._engine.dialect.loaded_dbapi.Error
        self._checkpointer: Checkpointer | None = (
            Checkpointer(self._engine, checkpoint_interval) if is_file_sqlite(url) else None
        )
        """SQLite file: WAL checkpoints in a thread of their own (gateway.store.checkpoint)."""
        self._down: str | None = None
        """Why the store is down (written by the writer thread only; None: it is up)."""
        self._down_since = 0.0
        self._log_backlog: collections.deque[_Log] = collections.deque()
        self._backlog_bytes = 0
        self._logs_dropped = 0
        self._listeners: list[tuple[asyncio.AbstractEventLoop, AvailabilityListener]] = []
        self.outages = 0
        """How many times the store went down (tests, metrics)."""
        self._me: Me | None = None
        """This process as a gateway node, once registered: every commit checks its token."""
        self._fenced: str | None = None
        """Why nothing may be written any more (another process took this node's place)."""
        self._name_connection = False
        """The writer's connection is to be labelled with the node's name (PostgreSQL: set
        with the next commit's fence check, so it commits with it)."""

    # --- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Run the migrations and start the writer thread (both off the event loop)."""
        with self._lock:
            if self._state != "new":
                raise StoreClosedError(f"store cannot start: it is {self._state}")
            self._state = "starting"
        loop = asyncio.get_running_loop()
        started: asyncio.Future[None] = loop.create_future()
        self._started = started
        self._thread = threading.Thread(
            target=self._run, args=(_Waiter(loop, started),), name="fixgw-store", daemon=True
        )
        self._thread.start()
        try:
            await started
        except BaseException:
            with self._lock:
                self._state = "closed"
            raise
        with self._lock:
            if self._state == "starting":
                self._state = "running"

    async def close(self) -> None:
        """Commit everything queued, then stop the writer thread. Idempotent."""
        if self._started is not None and not self._started.done():
            with contextlib.suppress(Exception):
                await asyncio.shield(self._started)  # close during start: let it finish
        with self._lock:
            if self._state == "new":
                self._state = "closed"
                self._engine.dispose()
                return
            if self._state == "running":
                loop = asyncio.get_running_loop()
                self._stopped = loop.create_future()
                self._queue.put(_Stop(_Waiter(loop, self._stopped)))
                self._state = "closing"
            stopped = self._stopped
        if stopped is not None:
            await asyncio.shield(stopped)
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join)

    async def __aenter__(self) -> SessionStore:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @property
    def stats(self) -> StoreStats:
        return StoreStats(self._batches, self._requests, self._largest_batch)

    @property
    def checkpointer(self) -> Checkpointer | None:
        """The WAL checkpoint thread of a SQLite file store (None otherwise)."""
        return self._checkpointer

    @property
    def available(self) -> bool:
        """False while the store is down (an outage: see the module docstring)."""
        return self._down is None

    @property
    def unavailable_reason(self) -> str | None:
        """Why the store is down; None while it is up."""
        return self._down

    def add_availability_listener(self, listener: AvailabilityListener) -> None:
        """Call ``listener(available, why)`` on the caller's event loop each time the store goes
        down or comes back (``why`` is the error, or how long it was down). Told at once when
        the store is down already."""
        loop = asyncio.get_running_loop()
        self._listeners.append((loop, listener))
        down = self._down
        if down is not None:
            loop.call_soon(listener, False, down)

    @property
    def fenced(self) -> str | None:
        """Why this store may write nothing more (another process took this node's place)."""
        return self._fenced

    # --- the node this process is (gateway.store.nodes) ---------------------------------------

    async def register_node(
        self, node: str, *, address: str, lease_s: float, host: str | None = None,
        process: str | None = None,
    ) -> int:
        """Become gateway node ``node`` (raises :class:`~gateway.store.nodes.NodeBusy` when a
        live process holds it); from now on every commit checks the node's fencing token.
        Returns the token. ``host`` and ``process`` say who this is (tests pose as others)."""
        me = Me(node, 0, address, host or this_host(), process or process_id(),
                int(lease_s * 1000))
        token = await self._order_read(register(me))
        self._me = Me(me.node, token, me.address, me.host, me.process, me.lease_ms)
        self._name_connection = True
        return token

    @property
    def node(self) -> Me | None:
        return self._me

    def _now_me(self) -> Me:
        me = self._me
        if me is None:
            raise RuntimeError("no node registered (register_node first)")
        return me

    async def renew_node(self) -> None:
        """Extend this node's lease (raises NodeFenced once another process took its place)."""
        await self._order_read(renew(self._now_me()))

    async def claim_sessions(self, session_ids: Sequence[str]) -> Claim:
        """Own ``session_ids`` where no live node does (gateway.store.nodes.claim)."""
        return await self._order_read(claim(self._now_me(), session_ids))

    async def take_over_gone(self) -> dict[str, str]:
        """Take over the sessions of nodes that are gone: session id -> the node it was
        taken from."""
        return await self._order_read(take_over_gone(self._now_me()))

    async def release_sessions(self, session_ids: Sequence[str]) -> set[str]:
        return await self._order_read(release(self._now_me(), session_ids))

    async def session_owner(self, session_id: str) -> NodeRecord | None:
        return await self._order_read(owner_of(session_id))

    async def hand_over_session(self, session_id: str, to: str | None) -> None:
        """Give a session this node owns to node ``to`` (or to no node)."""
        await self._order_read(hand_over(self._now_me(), session_id, to))

    async def sessions_owned(self) -> set[str]:
        """The sessions the store says this node owns."""
        return await self._order_read(sessions_owned(self._now_me()))

    async def leave_node(self) -> None:
        """End this node's lease (a clean stop); commits are no longer fenced by it."""
        me = self._me
        if me is None or self._fenced is not None:
            return
        await self._order_read(leave(self._now_me()))
        self._me = None

    async def live_nodes(self) -> list[NodeRecord]:
        """Every node whose lease runs (this one included)."""
        return await self._order_read(live_nodes())

    async def set_node_address(self, address: str) -> None:
        """The address other nodes name for this one (known once it listens)."""
        me = self._now_me()
        self._me = Me(me.node, me.token, address, me.host, me.process, me.lease_ms)
        await self._order_read(set_address(self._me))

    # --- API ----------------------------------------------------------------------------------

    async def load(self, session_id: str) -> SessionRecord:
        """The session's state; creates it as (1, 1, now) when absent."""
        _check_session_id(session_id)
        waiter = self._waiter()
        self._submit(_Load(waiter, session_id, self._now()))
        result: SessionRecord = await waiter.future
        return result

    async def save(
        self,
        session_id: str,
        *,
        sent: Sequence[tuple[int, bytes]] = (),
        next_sender: int | None = None,
        next_target: int | None = None,
        reports: Sequence[tuple[str, int]] = (),
        appends: Sequence[OrderAppend] = (),
    ) -> None:
        """Store sent messages ``(MsgSeqNum, raw bytes)`` and the new sequence numbers.

        Returns only once committed (write-ahead: write to the socket afterwards). Re-saving a
        (session, seq) overwrites it (PossDupFlag resends, SequenceReset-GapFill). A session
        never loaded is created. If the awaiting task is cancelled the save may still commit.

        ``reports`` are ``(ExecID, MsgSeqNum)`` of the ExecutionReports among ``sent``: stored in
        the same transaction, so an event is marked reported exactly when its message is stored
        (see :meth:`unreported_events`). Re-reporting an ExecID records the newer MsgSeqNum.

        ``appends`` (from :func:`~gateway.store.orders.build_append`) are order events, snapshots
        and fills committed in the same transaction: a venue event and the ExecutionReport
        that tells the client of it are stored together, before the report is written.
        """
        _check_session_id(session_id)
        rows = tuple((session_id, _positive("seq", seq), bytes(raw)) for seq, raw in sent)
        if next_sender is not None:
            _positive("next_sender", next_sender)
        if next_target is not None:
            _positive("next_target", next_target)
        report_rows = tuple(
            (_exec_id(exec_id), session_id, _positive("seq", seq)) for exec_id, seq in reports
        )
        waiter = self._waiter()
        self._submit(
            _Save(waiter, session_id, rows, next_sender, next_target, report_rows, tuple(appends))
        )
        await waiter.future

    def log(self, session_id: str, direction: str, data: bytes, when: datetime) -> None:
        """Append to the message log (fire-and-forget; joins the next group commit).

        Never blocks. Secrets (Password 554, Signature 89, ...) are masked by the writer, see
        :func:`gateway.audit.filelog.mask_secrets`. A log entry whose commit fails is dropped
        and reported through :mod:`logging`.
        """
        _check_session_id(session_id)
        if direction != "in" and direction != "out":
            raise ValueError(f"direction must be 'in' or 'out', not {direction!r}")
        checked: Direction = "in" if direction == "in" else "out"
        self._submit(_Log(session_id, checked, bytes(data), _aware(when)))

    async def get_sent(
        self, session_id: str, begin: int, end: int, limit: int = 1000
    ) -> list[tuple[int, bytes]]:
        """Sent messages with ``begin <= seq <= end`` (``end`` 0 = infinity), by seq, at most
        ``limit`` of them (answering a ResendRequest 2: BeginSeqNo 7, EndSeqNo 16)."""
        _check_session_id(session_id)
        if begin < 0 or end < 0:
            raise ValueError(f"negative sequence range {begin}..{end}")
        if limit < 1:
            raise ValueError(f"limit must be positive, not {limit}")
        waiter = self._waiter()
        self._submit(_GetSent(waiter, session_id, begin, end, limit))
        result: list[tuple[int, bytes]] = await waiter.future
        return result

    async def reset(self, session_id: str) -> None:
        """Delete the sent messages; sequence numbers back to 1/1 with a new creation time.

        The message log is kept (audit).
        """
        _check_session_id(session_id)
        waiter = self._waiter()
        self._submit(_Reset(waiter, session_id, self._now()))
        await waiter.future

    def save_cod_override(self, session_id: str, mode: str | None) -> asyncio.Future[None]:
        """Store the cancel-on-disconnect mode the session's Logon chose with tag 8013 (None:
        the Logon chose none, the configured mode holds); a session never loaded is created.

        Queued at once, not when a task first runs: whatever the caller saves afterwards (the
        Logon reply) commits in the same transaction or a later one, so a client that got its
        Logon reply has its choice stored. The future resolves after the commit."""
        _check_session_id(session_id)
        if mode is not None and mode not in COD_MODES:
            raise ValueError(f"cancel-on-disconnect mode must be one of {sorted(COD_MODES)}, "
                             f"not {mode!r}")
        waiter = self._waiter()
        self._submit(_SetCodOverride(waiter, session_id, mode, self._now()))
        future: asyncio.Future[None] = waiter.future
        return future

    async def load_cod_overrides(self) -> dict[str, str]:
        """Session id -> the mode stored by :meth:`save_cod_override`, for every session whose
        last Logon chose one."""
        return await self._order_read(_load_cod_overrides)

    def save_kill_switch(self, scope: str, engaged: bool, reason: str = "") -> asyncio.Future[None]:
        """Record that the kill switch of ``scope`` (a session id, or "*" for the whole
        gateway) was engaged or released (by an admin command). Queued at once (joins the
        writer's next batch, in order with what is queued after it); the future resolves after
        the commit.

        ``scope`` must be 1..255 characters (ValueError); ``reason`` is cut to 200 characters.
        Rows are upserted by scope (a released switch keeps its row, not engaged); see
        :mod:`gateway.store.switches`."""
        scope, reason = check_kill_switch(scope, reason)
        waiter = self._waiter()
        self._submit(_SetKillSwitch(waiter, scope, bool(engaged), reason, self._now()))
        future: asyncio.Future[None] = waiter.future
        return future

    async def load_kill_switches(self) -> dict[str, str]:
        """scope -> reason, for every scope whose switch is engaged (released ones are
        absent)."""
        return await self._order_read(load_kill_switches)

    async def _order_write(self, append: OrderAppend) -> None:
        await self.append_now(append)

    def append_now(self, append: OrderAppend) -> asyncio.Future[None]:
        """Queue ``append`` at once (so it joins the writer's next batch with whatever else is
        queued in this turn of the event loop); the future resolves after its commit."""
        waiter = self._waiter()
        self._submit(_OrderWrite(waiter, append))
        future: asyncio.Future[None] = waiter.future
        return future

    async def _order_read(self, query: OrderQuery[T]) -> T:
        waiter = self._waiter()
        self._submit(_OrderRead(waiter, query))
        result: T = await waiter.future
        return result

    # --- event-loop side helpers --------------------------------------------------------------

    def _now(self) -> datetime:
        return _aware(self._clock())

    def _waiter(self) -> _Waiter:
        loop = asyncio.get_running_loop()
        return _Waiter(loop, loop.create_future())

    def _submit(self, request: _Request) -> None:
        with self._lock:
            if self._state != "running":
                raise StoreClosedError(f"session store is {self._state}")
            self._queue.put(request)

    # --- writer thread ------------------------------------------------------------------------

    def _run(self, started: _Waiter) -> None:
        try:
            upgrade(self._engine)
            statements = _Statements(self._engine.dialect)
        except BaseException as exc:
            self._engine.dispose()
            _resolve([(started, None, exc)])
            return
        _resolve([(started, None, None)])
        if self._checkpointer is not None:
            self._checkpointer.start()
        stop: _Stop | None = None
        batch: list[_Request] = []
        probe_delay = PROBE_FIRST_S
        next_probe = 0.0
        try:
            while stop is None:
                if self._down is None:
                    item: _Request | _Stop | None = self._queue.get()
                else:
                    try:
                        item = self._queue.get(timeout=max(next_probe - time.monotonic(), 0))
                    except queue.Empty:
                        item = None
                    if time.monotonic() >= next_probe and self._fenced is None:
                        if self._probe(statements):
                            probe_delay = PROBE_FIRST_S
                        else:
                            next_probe = time.monotonic() + probe_delay
                            probe_delay = min(probe_delay * 2, PROBE_CAP_S)
                    if item is None:
                        continue
                batch = []
                while True:
                    assert item is not None
                    if isinstance(item, _Stop):
                        stop = item  # nothing is queued after a stop (see _submit)
                        break
                    batch.append(item)
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        break
                if batch:
                    if self._down is None:
                        self._process(statements, batch)
                        if self._down is not None:
                            next_probe = time.monotonic() + probe_delay
                    else:
                        self._fail_fast(batch)
                    batch = []
        except BaseException as exc:  # a bug: fail everyone rather than hang them
            logger.exception("session store writer thread died")
            self._die(batch, exc)
            raise
        finally:
            if self._log_backlog or self._logs_dropped:
                logger.error("%d message log entries kept while the store was down are lost "
                             "(it did not come back before the store closed)",
                             len(self._log_backlog) + self._logs_dropped)
            if self._checkpointer is not None:
                self._checkpointer.stop()
            self._disconnect()
            self._engine.dispose()
            with self._lock:
                self._state = "closed"
        assert stop is not None
        _resolve([(stop.waiter, None, None)])

    def _die(self, batch: list[_Request], exc: BaseException) -> None:
        with self._lock:
            self._state = "closed"
        outcomes: list[_Outcome] = [(r.waiter, None, exc) for r in batch if not isinstance(r, _Log)]
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if not isinstance(item, _Log):
                outcomes.append((item.waiter, None, exc))
        _resolve(outcomes)

    def _process(self, statements: _Statements, batch: list[_Request]) -> None:
        try:
            outcomes = self._transaction(statements, batch)
        except Exception as exc:
            self._new_sessions.clear()
            outcomes = self._retry(statements, batch, exc)
        self._requests += len(batch)
        self._largest_batch = max(self._largest_batch, len(batch))
        _resolve(outcomes)

    def _retry(
        self, statements: _Statements, batch: list[_Request], exc: Exception
    ) -> list[_Outcome]:
        if self._conn is not None and self._conn.invalidated:
            # the connection was lost (a database restart, an idle timeout): what a check on
            # checkout (pool_pre_ping) would have caught -- try once more on a new connection
            logger.warning("store connection lost (%s); retrying on a new connection", exc)
            try:
                return self._transaction(statements, batch)
            except Exception as again:
                self._new_sessions.clear()
                exc = again
        if isinstance(exc, NodeFenced):
            return self._go_fenced(batch, exc)
        if is_outage(exc):
            return self._go_down(batch, exc)
        if len(batch) == 1:
            return self._failed(batch[0], exc)
        logger.warning(
            "group commit of %d requests failed (%s); retrying them one by one", len(batch), exc
        )
        outcomes: list[_Outcome] = []
        for i, request in enumerate(batch):
            try:
                outcomes.extend(self._transaction(statements, [request]))
            except Exception as one_exc:
                self._new_sessions.clear()
                if isinstance(one_exc, NodeFenced):
                    return outcomes + self._go_fenced(batch[i:], one_exc)
                if is_outage(one_exc):  # nothing after it may commit: a prefix, in order
                    return outcomes + self._go_down(batch[i:], one_exc)
                outcomes.extend(self._failed(request, one_exc))
        return outcomes

    # --- outages ----------------------------------------------------------------------------

    def _go_down(self, rest: list[_Request], exc: BaseException) -> list[_Outcome]:
        """The store cannot commit: fail ``rest`` and everything after it until a probe
        succeeds (message log entries are kept for then)."""
        reason = f"{type(exc).__name__}: {_first_line(exc)}"
        self._down = reason
        self._down_since = time.monotonic()
        self.outages += 1
        logger.error("store unavailable (%s): failing every request until it takes writes "
                     "again", reason)
        self._notify(False, reason)
        return self._fail_fast(rest, resolve=False)

    def _go_fenced(self, rest: list[_Request], exc: NodeFenced) -> list[_Outcome]:
        """Another process took this node's place: nothing of this one is written any more."""
        self._fenced = str(exc)
        self._down = f"fenced: {exc}"
        logger.critical("%s", exc)
        self._notify(False, self._down)
        return self._fail_fast(rest, resolve=False)

    def _fail_fast(self, batch: list[_Request], resolve: bool = True) -> list[_Outcome]:
        error: Exception = (NodeFenced(self._me.node if self._me else "?")
                            if self._fenced is not None
                            else StoreUnavailable(f"store unavailable: {self._down}"))
        outcomes: list[_Outcome] = []
        for request in batch:
            if isinstance(request, _Log):
                while self._log_backlog and (
                    len(self._log_backlog) >= LOG_BACKLOG
                    or self._backlog_bytes + len(request.data) > LOG_BACKLOG_BYTES
                ):
                    self._backlog_bytes -= len(self._log_backlog.popleft().data)
                    self._logs_dropped += 1
                self._log_backlog.append(request)
                self._backlog_bytes += len(request.data)
            else:
                outcomes.append((request.waiter, None, error))
        self._requests += len(batch)
        if resolve:
            _resolve(outcomes)
        return outcomes

    def _probe(self, st: _Statements) -> bool:
        """A real write (a full disk still answers reads): True when the store is back, after
        the message log entries kept meanwhile are written."""
        try:
            self._connect()
            cursor = self._cursor
            dbapi = self._dbapi
            assert cursor is not None and dbapi is not None
            try:
                if st.begin is not None:
                    cursor.execute(st.begin)
                self._execute(st.probe, [(1, time.time_ns() // 1_000_000)])
                dbapi.commit()
            except self._dbapi_error as exc:
                raise self._wrap(exc, st.probe, None) from exc
        except Exception as exc:
            self._rollback()
            logger.debug("store probe failed: %s", exc)
            return False
        backlog = list(self._log_backlog)
        self._log_backlog.clear()
        self._backlog_bytes = 0
        down_for = time.monotonic() - self._down_since
        if self._logs_dropped:
            logger.error("%d message log entries were dropped while the store was down (more "
                         "than %d entries or %d bytes)", self._logs_dropped, LOG_BACKLOG,
                         LOG_BACKLOG_BYTES)
            self._logs_dropped = 0
        logger.warning("store available again after %.1f s (%d message log entries kept "
                       "meanwhile)", down_for, len(backlog))
        self._down = None
        self._notify(True, f"down for {down_for:.1f} s")
        if backlog:  # as any batch: an entry that cannot be written is dropped alone
            self._process(st, list(backlog))
        return True

    def _notify(self, available: bool, why: str) -> None:
        for loop, listener in list(self._listeners):
            with contextlib.suppress(RuntimeError):  # its loop is closed
                loop.call_soon_threadsafe(listener, available, why)

    def _transaction(self, st: _Statements, batch: list[_Request]) -> list[_Outcome]:
        """Apply ``batch`` in one transaction and commit it (raises if it was rolled back)."""
        conn = self._connect()
        for request in batch:
            if type(request) not in _WRITES:
                with conn.begin():  # reads go through SQLAlchemy: its transaction
                    outcomes = self._apply(conn, st, batch)
                break
        else:  # writes only: begin and commit on the DBAPI connection
            dbapi, cursor = self._dbapi, self._cursor
            assert dbapi is not None and cursor is not None
            statement = st.begin or "BEGIN"
            try:
                try:
                    if st.begin is not None:
                        cursor.execute(st.begin)
                    outcomes = self._apply(conn, st, batch)
                    statement = "COMMIT"
                    dbapi.commit()
                except self._dbapi_error as exc:  # begin or commit (statements wrap their own)
                    raise self._wrap(exc, statement, None) from exc
            except BaseException:
                self._rollback()
                raise
        self._commit_known()
        return outcomes

    # --- the writer's connection ----------------------------------------------------------------

    def _connect(self) -> Connection:
        """The writer's connection: kept open, replaced when it was invalidated (lost)."""
        conn = self._conn
        if conn is not None and not conn.invalidated:
            return conn
        self._disconnect()
        conn = self._engine.connect()  # the pool checks it first (pool_pre_ping on PostgreSQL)
        try:
            dbapi = conn.connection.dbapi_connection
            assert dbapi is not None
            if self._checkpointer is not None:
                configure_writer(dbapi)
            self._cursor = dbapi.cursor()
            self._name_connection = True
        except BaseException:
            conn.close()
            raise
        self._conn, self._dbapi = conn, dbapi
        return conn

    def _disconnect(self) -> None:
        conn, self._conn, self._dbapi, self._cursor = self._conn, None, None, None
        if conn is not None:
            try:
                conn.close()  # back to the pool (discarded if invalidated)
            except Exception:
                logger.warning("closing the store connection failed", exc_info=True)

    def _rollback(self) -> None:
        """Roll back the DBAPI transaction; a connection that cannot is invalidated."""
        conn, dbapi = self._conn, self._dbapi
        if conn is None or dbapi is None or conn.invalidated:
            return
        try:
            dbapi.rollback()
        except Exception as exc:
            logger.warning("store rollback failed (%s); dropping the connection", exc)
            conn.invalidate(exc)

    def _execute(self, sql: str, rows: Sequence[Any]) -> None:
        """Run ``sql`` once per row of ``rows`` (parameter tuples) on the DBAPI cursor."""
        cursor = self._cursor
        assert cursor is not None
        try:
            if len(rows) == 1:
                cursor.execute(sql, rows[0])
            else:
                cursor.executemany(sql, rows)
        except self._dbapi_error as exc:
            raise self._wrap(exc, sql, rows) from exc

    def _wrap(self, exc: DBAPIModule.Error, sql: str, rows: Sequence[Any] | None) -> BaseException:
        """``exc`` (a DBAPI error) as SQLAlchemy raises it: ``sqlalchemy.exc.IntegrityError``
        for ``sqlite3.IntegrityError`` / ``psycopg.errors.UniqueViolation``, ... A
        disconnection invalidates the connection (it is replaced before the next transaction)."""
        dialect = self._engine.dialect
        conn = self._conn
        lost = False
        if conn is not None and not conn.invalidated:
            lost = dialect.is_disconnect(exc, self._dbapi, self._cursor)
            if lost:
                conn.invalidate(exc)
        params = None if rows is None else (rows[0] if len(rows) == 1 else list(rows))
        wrapped = DBAPIError.instance(
            sql,
            params,
            exc,
            dialect.loaded_dbapi.Error,
            connection_invalidated=lost,
            dialect=dialect,
            ismulti=rows is not None and len(rows) > 1,
        )
        assert isinstance(wrapped, BaseException)
        return wrapped

    def _commit_known(self) -> None:
        self._batches += 1
        self._known_sessions |= self._new_sessions
        self._new_sessions.clear()

    @staticmethod
    def _failed(request: _Request, exc: Exception) -> list[_Outcome]:
        if isinstance(request, _Log):
            logger.error(
                "message log entry for %s dropped: %s", request.session_id, exc, exc_info=exc
            )
            return []
        return [(request.waiter, None, exc)]

    def _check_fence(self, st: _Statements) -> None:
        """Invariant 9: nothing commits once another process has taken this node's place
        (gateway.store.nodes: on PostgreSQL this also takes the node's shared lock, which a
        takeover waits for)."""
        me = self._me
        if me is None:
            return
        cursor = self._cursor
        assert cursor is not None
        if self._name_connection and st.pg:
            # a node taking this one over ends its connections by this name (nodes._cut_off)
            cursor.execute("SELECT set_config('application_name', %s, false)",
                           (connection_name(me.node),))
            self._name_connection = False
        self._execute(st.fence, [(lock_key(me.node), me.node) if st.pg else (me.node,)])
        row = cursor.fetchone()
        if row is None or int(row[0]) != me.token:
            raise NodeFenced(me.node)

    def _apply(self, conn: Connection, st: _Statements, batch: list[_Request]) -> list[_Outcome]:
        self._check_fence(st)
        outcomes: list[_Outcome] = []
        pending = _PendingWrites()
        for request in batch:
            if isinstance(request, _Save):
                sent = pending.sent
                for row in request.sent:
                    sent[(row[0], row[1])] = row
                seqs = pending.seqs.get(request.session_id)
                if seqs is None:
                    seqs = pending.seqs[request.session_id] = [None, None]
                if request.next_sender is not None:
                    seqs[0] = request.next_sender
                if request.next_target is not None:
                    seqs[1] = request.next_target
                if request.reports:
                    pending.orders.add_reports(request.reports)
                for append in request.appends:
                    pending.orders.add(append)
                outcomes.append((request.waiter, None, None))
            elif isinstance(request, _Log):
                pending.logs.append(
                    (
                        request.session_id,
                        request.direction,
                        st.bind_time(request.when),
                        mask_secrets(request.data),
                    )
                )
            elif isinstance(request, _SetCodOverride):
                pending.cod_overrides[request.session_id] = (
                    request.session_id, 1, 1, st.bind_time(request.now), request.mode
                )
                outcomes.append((request.waiter, None, None))
            elif isinstance(request, _SetKillSwitch):
                pending.kill_switches[request.scope] = (
                    request.scope, request.engaged, request.reason, st.bind_time(request.now)
                )
                outcomes.append((request.waiter, None, None))
            elif isinstance(request, _OrderWrite):
                pending.orders.add(request.append)
                outcomes.append((request.waiter, None, None))
            else:
                self._flush(st, pending)
                pending = _PendingWrites()
                outcomes.append((request.waiter, self._read(conn, st, request), None))
        self._flush(st, pending)
        return outcomes

    def _read(
        self, conn: Connection, st: _Statements, request: _Load | _GetSent | _Reset | _OrderRead
    ) -> Any:
        if isinstance(request, _OrderRead):
            return request.query(conn, st.orders)
        if isinstance(request, _Load):
            conn.execute(
                st.create_session,
                {
                    "session_id": request.session_id,
                    "next_sender": 1,
                    "next_target": 1,
                    "creation_time": request.now,
                },
            )
            row = conn.execute(
                select(
                    sessions.c.next_sender, sessions.c.next_target, sessions.c.creation_time
                ).where(sessions.c.session_id == request.session_id)
            ).one()
            self._new_sessions.add(request.session_id)
            return SessionRecord(int(row[0]), int(row[1]), row[2])
        if isinstance(request, _GetSent):
            query = (
                select(messages.c.seq, messages.c.data)
                .where(messages.c.session_id == request.session_id)
                .where(messages.c.seq >= request.begin)
                .order_by(messages.c.seq)
                .limit(request.limit)
            )
            if request.end != 0:
                query = query.where(messages.c.seq <= request.end)
            return [(int(seq), bytes(data)) for seq, data in conn.execute(query)]
        conn.execute(delete(messages).where(messages.c.session_id == request.session_id))
        conn.execute(
            st.reset_session,
            {
                "session_id": request.session_id,
                "next_sender": 1,
                "next_target": 1,
                "creation_time": request.now,
            },
        )
        self._new_sessions.add(request.session_id)
        return None

    def _flush(self, st: _Statements, pending: _PendingWrites) -> None:
        run = self._execute
        if pending.seqs:
            # a save of a session never loaded creates it (skipped for sessions known to exist)
            unknown = [sid for sid in pending.seqs if sid not in self._known_sessions]
            if unknown:
                now = st.bind_time(self._now())
                run(st.create_sessions, [(sid, 1, 1, now) for sid in unknown])
                self._new_sessions.update(unknown)
            changes = [
                (ns, nt, sid)
                for sid, (ns, nt) in pending.seqs.items()
                if ns is not None or nt is not None
            ]
            if changes:
                run(st.update_seqs, changes)
                assert self._cursor is not None
                updated = self._cursor.rowcount
                if updated != len(changes):  # a session row vanished under us: never ack that
                    raise RuntimeError(f"updated {updated} of {len(changes)} session rows")
        if pending.sent:
            run(st.upsert_message, list(pending.sent.values()))
        if pending.logs:
            run(st.insert_log, pending.logs)
        if pending.cod_overrides:
            run(st.upsert_cod_override, list(pending.cod_overrides.values()))
            self._new_sessions.update(pending.cod_overrides)
        if pending.kill_switches:
            run(st.upsert_kill_switch, list(pending.kill_switches.values()))
        pending.orders.flush(run, st.orders)


# --- helpers ----------------------------------------------------------------------------------


def _load_cod_overrides(conn: Connection, _st: OrderStatements) -> dict[str, str]:
    query = select(sessions.c.session_id, sessions.c.cod_override).where(
        sessions.c.cod_override.is_not(None)
    )
    return {sid: mode for sid, mode in conn.execute(query)}


_PG_OUTAGE = ("08", "53", "57", "58", "XX", "25006")
"""SQLSTATEs (classes, or one code) of a PostgreSQL that cannot take writes: connection
exception, insufficient resources (disk full, too many connections), operator intervention
(shutdown, crash, a cancelled statement), system error (I/O), internal error, and a read-only
transaction (a standby after a failover)."""
_SQLITE_OUTAGE = frozenset({5, 6, 8, 10, 11, 13, 14, 26})
"""SQLite primary result codes of the same: BUSY, LOCKED (past the busy timeout), READONLY,
IOERR, CORRUPT, FULL, CANTOPEN, NOTADB."""


def is_outage(exc: BaseException) -> bool:
    """Whether ``exc`` means the store cannot commit anything now -- the connection is lost or
    cannot be made, the disk is full or failing, the database is locked too long or read-only
    -- rather than that one request is wrong or unlucky (a constraint, a bug, a deadlock or a
    serialisation failure: retried alone)."""
    if isinstance(exc, StoreUnavailable | OSError):
        return True
    if not isinstance(exc, DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    orig = exc.orig
    sqlstate = getattr(orig, "sqlstate", None)
    if isinstance(sqlstate, str) and sqlstate:
        return sqlstate.startswith(_PG_OUTAGE)
    code = getattr(orig, "sqlite_errorcode", None)
    if isinstance(code, int):
        return code & 0xFF in _SQLITE_OUTAGE
    # no code (a connection that could not be made, a driver without codes)
    return isinstance(exc, OperationalError | InterfaceError)


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc)
    return text.strip().splitlines()[0] if text.strip() else type(exc).__name__


def _resolve(outcomes: list[_Outcome]) -> None:
    """Hand results to their event loops: one call_soon_threadsafe per loop per batch."""
    by_loop: dict[asyncio.AbstractEventLoop, list[_Outcome]] = {}
    for outcome in outcomes:
        by_loop.setdefault(outcome[0].loop, []).append(outcome)
    for loop, items in by_loop.items():
        try:
            loop.call_soon_threadsafe(_set_all, items)
        except RuntimeError:  # the loop is closed: nobody is waiting any more
            pass


def _set_all(items: list[_Outcome]) -> None:
    for waiter, value, exc in items:
        if waiter.future.done():  # cancelled by its caller
            continue
        if exc is not None:
            waiter.future.set_exception(exc)
        else:
            waiter.future.set_result(value)


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _sqlite_time(when: datetime) -> str:
    """What SQLAlchemy binds for a UTCDateTime on SQLite: naive UTC as text,
    ``2024-05-01 12:00:00.123456`` (microseconds always)."""
    return when.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def _utc(when: datetime) -> datetime:
    """What SQLAlchemy binds for a UTCDateTime on PostgreSQL (timestamptz): aware UTC."""
    return when.astimezone(UTC)


def _aware(when: datetime) -> datetime:
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError(f"naive datetime {when!r}: pass a UTC (aware) datetime")
    return when.astimezone(UTC)


def _check_session_id(session_id: str) -> None:
    if not session_id or len(session_id) > 255:
        raise ValueError(f"session id must be 1..255 characters: {session_id!r}")


def _exec_id(exec_id: str) -> str:
    if not exec_id or len(exec_id) > ID_LENGTH:
        raise ValueError(f"ExecID must be 1..{ID_LENGTH} characters: {exec_id!r}")
    return str(exec_id)


def _positive(name: str, value: int) -> int:
    if value < 1:
        raise ValueError(f"{name} must be >= 1, not {value}")
    return int(value)
