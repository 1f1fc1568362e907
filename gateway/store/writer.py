"""The store's writer: one thread, one connection, group commit.

Invariant 7 (docs/architecture.md): the event loop never blocks on the database. Every
database operation runs in ONE dedicated writer thread that owns a synchronous SQLAlchemy
engine (or, on a SQLite file, inline on the loop's thread when that thread is idle and the
database not locked: see "Inline commits" below). Callers queue a :class:`Request` and await
a future the writer resolves with ``loop.call_soon_threadsafe``. The writer knows no table:
the repositories (:mod:`gateway.store.sessions`, :mod:`gateway.store.orders`,
:mod:`gateway.store.nodes`) make the requests, and each request applies itself to the
transaction (:class:`Tx`).

Group commit: the writer takes everything queued (all sessions, all kinds of request) and applies
it in ONE transaction, then resolves the futures of the whole batch. Under load many commits
share one, so throughput grows with concurrency instead of being bounded by commit latency.
Within a batch requests are applied in arrival order (consecutive writes are merged into
``executemany`` statements, :class:`WriteSet`), so a read sees every write queued before it.
Write-ahead (Invariant 1): a request's future resolves only after its transaction committed;
reads too, so nothing returned is ever rolled back.

If a batch fails (a bad request, a lost connection), it is rolled back and every request of it is
retried alone in its own transaction, so one bad request fails only its own caller. Writes are
upserts, so retrying a batch whose commit outcome was unknown is harmless. A batch that failed
because the connection was lost is first retried whole on a new connection.

Outages (the database went away, the disk is full: see :func:`is_outage`) are not retried
request by request: the batch fails with :class:`~gateway.store.errors.StoreUnavailable` and
the store is *down* -- every request after it fails the same way at once, so what is committed
is always a prefix of what was asked, in order. Requests nobody waits for (the message log) are
kept meanwhile (up to :data:`BACKLOG` and :data:`BACKLOG_BYTES`) and written once the store is
back. The writer probes it with a real write (``store_probe``), backing off from
:data:`PROBE_FIRST_S` to :data:`PROBE_CAP_S`, logs each change of state once and tells the
listeners (:meth:`Writer.add_availability_listener`).

Inline commits (a SQLite file only; ``[gateway] store_commits = "inline"``, the default): when
the writer thread has nothing queued or in progress, the requests the event loop makes in one
turn are gathered and committed at the end of that turn on the loop's own thread, with the same
code and the same connection (a lock keeps the two threads' transactions apart). That saves the
two hand-offs between threads per commit that dominated an order's latency at low load
(docs/performance.md), as QuickFIX's FileStore writes on its session's thread. The loop never
waits for it: the transaction runs with a busy timeout of 0, so a database locked by another
connection (a RESTART checkpoint, another process) fails it at once; any failure rolls it back
and hands the same requests, in order, to the writer thread, which retries them as any batch
(outages included). While the writer thread has work, requests are queued to it as before, so
under load the loop keeps only its own work and commits stay grouped. A WAL commit with
``synchronous=NORMAL`` writes to the page cache and does not sync. A database server
(PostgreSQL) is always reached from the writer thread: a round trip on the network never runs
on the loop. In this mode a request nobody waits for (a message log line, most often the
outbound lines of reports just sent) is held until the next commit, or for :data:`HOLD_S` at
most, rather than committed alone: one commit fewer per order at low load.

On a SQLite file the writer's commits never run a WAL checkpoint themselves (which syncs the
files to disk and held up one commit in a few dozen by milliseconds): a thread of its own does,
see :mod:`gateway.store.checkpoint`.

Hot path: the writer keeps one connection for its lifetime. Merged writes are executed as SQL
text rendered once per engine with the DBAPI cursor's ``executemany`` -- no SQLAlchemy
compilation, parameter or result processing -- from row tuples built on the caller's side. A
batch of writes only is also begun and committed on the DBAPI connection; a batch with a read
runs in a SQLAlchemy transaction (the reads use SQLAlchemy Core), its writes on the same DBAPI
connection. DBAPI errors are re-raised as SQLAlchemy's (``sqlalchemy.exc.IntegrityError``,
...), as if the statements had run through SQLAlchemy.

Compiled by mypyc with the order path (:data:`gateway.native.ORDER_PATH`), with the statements,
write sets and requests every order makes (:mod:`gateway.store.writes`): its classes are native
(no attribute they do not declare, no method replaced on an instance; a test's store double
wraps the writer's cursor, :attr:`Writer.wrap_cursor`).
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
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar, Generic, Literal, Protocol, TypeAlias, TypeVar

from sqlalchemy import Connection, Dialect, Engine
from sqlalchemy.engine.interfaces import DBAPIConnection, DBAPICursor, DBAPIModule
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from gateway.store.checkpoint import CHECKPOINT_INTERVAL_S, Checkpointer, configure_writer
from gateway.store.db import (
    SQLITE_BUSY_TIMEOUT_MS,
    insert_sql,
    is_file_sqlite,
    make_engine,
    placeholder,
)
from gateway.store.errors import NodeFenced, StoreClosedError, StoreUnavailable
from gateway.store.migrate import upgrade
from gateway.store.schema import store_probe

logger = logging.getLogger(__name__)

T = TypeVar("T")
S = TypeVar("S")
W = TypeVar("W", bound="WriteSet")

PROBE_FIRST_S = 0.05
PROBE_CAP_S = 2.0
"""While the store is down it is probed this often, doubling from the first to the cap."""
BACKLOG = 100_000
BACKLOG_BYTES = 64 << 20
"""Requests nobody waits for (message log entries) kept while the store is down, at most this
many and this many bytes (the oldest are dropped beyond, counted and reported)."""

HOLD_S = 0.05
"""With inline commits, a request nobody waits for (a message log line) waits at most this long
for a commit to join, rather than being committed alone."""

State: TypeAlias = Literal["new", "starting", "running", "closing", "closed"]
"""A writer's life: started once, closed once."""

AvailabilityListener: TypeAlias = Callable[[bool, str], None]
"""Called on its event loop with (available, why) when the store goes down or comes back."""


@dataclass(frozen=True)
class StoreStats:
    """Counters of the writer's transactions, on its thread and inline (tests, metrics)."""

    batches: int
    """Transactions committed by the writer (one per group commit)."""
    requests: int
    """Requests served, log appends included."""
    largest_batch: int
    inline: int = 0
    """Of ``batches``, those committed on the event loop's thread (inline commits)."""


@dataclass(slots=True, eq=False)
class Waiter:
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Any]

    # (written, to be compiled: dataclasses' own __init__ would run interpreted)
    def __init__(self, loop: asyncio.AbstractEventLoop, future: asyncio.Future[Any]) -> None:
        self.loop = loop
        self.future = future


class Request(Protocol):
    """What the writer runs. ``waiter`` is None for a request nobody waits for: it is kept
    while the store is down (``size`` bytes of the backlog) and ``lost`` if it cannot be
    written."""

    reads: ClassVar[bool]
    """Whether it reads (then its batch runs in a SQLAlchemy transaction)."""

    @property
    def waiter(self) -> Waiter | None: ...

    def apply(self, tx: Tx) -> Any:
        """Apply the request (merge its writes into the transaction's write sets, or run its
        read); the result resolves its waiter once the transaction commits."""


class Lossy(Request, Protocol):
    """A request nobody waits for."""

    @property
    def size(self) -> int: ...

    def lost(self, exc: BaseException) -> None: ...


class Query(Generic[T]):
    """A read, or a read-modify-write (a reservation, a node's lease), run by the writer in a
    SQLAlchemy transaction after the writes queued before it."""

    __slots__ = ("waiter", "run")
    reads: ClassVar[bool] = True

    def __init__(self, waiter: Waiter, run: Callable[[Connection], T]) -> None:
        self.waiter = waiter
        self.run = run

    def apply(self, tx: Tx) -> T:
        tx.flush()
        return self.run(tx.conn)


class WriteSet(Protocol):
    """Writes of one kind merged across the requests of a batch, flushed in one
    ``executemany`` per statement before any read and at the end. Write sets flush in the
    order of their ``rank``."""

    rank: ClassVar[int]

    def __bool__(self) -> bool: ...

    def flush(self, tx: Tx) -> None: ...


class Tx:
    """One transaction of the writer, as the requests of its batch see it."""

    __slots__ = ("_writer", "conn", "_sets", "_after")

    def __init__(self, writer: Writer, conn: Connection) -> None:
        self._writer = writer
        self.conn = conn
        self._sets: dict[type, Any] = {}
        self._after: list[Callable[[], None]] = []

    @property
    def dialect(self) -> Dialect:
        return self._writer.engine.dialect

    def statements(self, cls: Callable[[Dialect], S]) -> S:
        """The statements ``cls`` builds for this engine (built once, kept by the writer)."""
        return self._writer.statements(cls)

    def writes(self, cls: type[W], *args: Any) -> W:
        """The batch's pending writes of kind ``cls`` (made with ``cls(*args)`` at first)."""
        found = self._sets.get(cls)
        if found is None:
            found = self._sets[cls] = cls(*args)
        result: W = found
        return result

    def flush(self) -> None:
        """Write every pending write set (by rank), and start afresh."""
        sets, self._sets = self._sets, {}
        for ws in sorted(sets.values(), key=lambda s: s.rank):
            if ws:
                ws.flush(self)

    def execute(self, sql: str, rows: Sequence[Any]) -> int:
        """Run ``sql`` once per row of ``rows`` on the writer's DBAPI cursor; the rowcount."""
        return self._writer.execute(sql, rows)

    def fetchone(self) -> Any:
        """The next row of the last statement :meth:`execute` ran (a fence check's token)."""
        return self._writer.fetchone()

    def bind_time(self, when: datetime) -> Any:
        """An aware datetime as the UTCDateTime columns bind it (a test checks they agree)."""
        return bind_time(self.dialect.name, when)

    def now(self) -> datetime:
        return self._writer.now()

    def after_commit(self, fn: Callable[[], None]) -> None:
        """Call ``fn`` (on the thread that committed: the writer's, or the loop's inline) once
        this transaction has committed."""
        self._after.append(fn)

    def committed(self) -> None:
        for fn in self._after:
            fn()


Outcome: TypeAlias = tuple[Waiter, Any, BaseException | None]


@dataclass(slots=True, eq=False)
class _Stop:
    waiter: Waiter


class Writer:
    """The writer thread of one database (module docstring). ``url`` is ``sqlite:///path``
    or ``postgresql+psycopg://user@host:port/db``; ``clock`` gives the current UTC time."""

    def __init__(
        self,
        url: str,
        *,
        clock: Callable[[], datetime] | None = None,
        checkpoint_interval: float = CHECKPOINT_INTERVAL_S,
        inline: bool | None = None,
    ) -> None:
        self.engine: Engine = make_engine(url)  # does not connect
        self._commits_inline = commits_inline(url, inline)
        """Inline commits (module docstring). (Not ``_inline``, nor the thread ``_thread``:
        mypyc names their C fields ``__inline`` and ``__thread``, which are gcc's keywords.)"""
        self._loop: asyncio.AbstractEventLoop | None = None
        """The event loop that started the writer: the one that commits inline."""
        self._gathering: list[Request] | None = None
        """This turn's requests, to be committed inline at its end (the loop's thread only)."""
        self._held: list[Request] = []
        """Requests nobody waits for, held for the next commit (at most :data:`HOLD_S`)."""
        self._held_timer: asyncio.TimerHandle | None = None
        self._pending = 0
        """Requests queued to the writer thread and not yet served (under ``_lock``)."""
        self._busy = threading.Lock()
        """Held while a transaction runs, on the writer's thread or inline."""
        self._timeout_ms = SQLITE_BUSY_TIMEOUT_MS
        """The busy timeout the connection has now (0 while committing inline)."""
        self.inline_commits = 0
        """Transactions committed on the event loop's thread (tests, the benchmarks)."""
        self._clock = clock or _utcnow
        self._queue: queue.SimpleQueue[Request | _Stop] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._state: State = "new"
        self._writer_thread: threading.Thread | None = None
        self._started: asyncio.Future[None] | None = None
        self._stopped: asyncio.Future[None] | None = None
        self._batches = 0
        self.on_commit: Callable[[float], None] | None = None
        """Told the seconds of each commit, on the writer's thread (the metrics)."""
        self._requests = 0
        self._largest_batch = 0
        self._statements: dict[Any, Any] = {}
        # Writer-thread only: the connection kept for the writer's lifetime (replaced when lost),
        # its DBAPI connection and a cursor on it (the hot path's executemany).
        self._conn: Connection | None = None
        self._dbapi: DBAPIConnection | None = None
        self._cursor: DBAPICursor | None = None
        self._dbapi_error: type[DBAPIModule.Error] = self.engine.dialect.loaded_dbapi.Error
        self._checkpointer: Checkpointer | None = (
            Checkpointer(self.engine, checkpoint_interval) if is_file_sqlite(url) else None
        )
        """SQLite file: WAL checkpoints in a thread of their own (gateway.store.checkpoint)."""
        self._down: str | None = None
        """Why the store is down (written by the writer thread only; None: it is up)."""
        self._down_since = 0.0
        self._backlog: collections.deque[Lossy] = collections.deque()
        self._backlog_bytes = 0
        self._dropped = 0
        self._listeners: list[tuple[asyncio.AbstractEventLoop, AvailabilityListener]] = []
        self.outages = 0
        """How many times the store went down (tests, metrics)."""
        self.fence: Callable[[Tx], None] | None = None
        """Checked first in every transaction (gateway.store.nodes): raises NodeFenced once
        another process has taken this node's place (Invariant 9)."""
        self.fenced_node: str | None = None
        """The node whose place was taken: nothing may be written any more."""
        self.fenced: str | None = None
        """Why nothing may be written any more (another process took this node's place)."""
        self._label: str | None = None
        self._labelled = False
        self.wrap_cursor: Callable[[DBAPICursor], DBAPICursor] | None = None
        """Tests: wraps the DBAPI cursor of each new connection of the writer (a store double
        whose statements fail); None in the gateway."""

    # --- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Run the migrations and start the writer thread (both off the event loop)."""
        with self._lock:
            if self._state != "new":
                raise StoreClosedError(f"store cannot start: it is {self._state}")
            self._state = "starting"
        loop = asyncio.get_running_loop()
        self._loop = loop
        started: asyncio.Future[None] = loop.create_future()
        self._started = started
        self._writer_thread = threading.Thread(
            target=self._run, args=(Waiter(loop, started),), name="fixgw-store", daemon=True
        )
        self._writer_thread.start()
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
                self.engine.dispose()
                return
            if self._state == "running":
                loop = asyncio.get_running_loop()
                self._cancel_held_timer()
                self._enqueue(self._take_gathered())  # before the stop: asked first
                self._stopped = loop.create_future()
                self._queue.put(_Stop(Waiter(loop, self._stopped)))
                self._state = "closing"
            stopped = self._stopped
        if stopped is not None:
            await asyncio.shield(stopped)
        if self._writer_thread is not None:
            await asyncio.to_thread(self._writer_thread.join)

    @property
    def stats(self) -> StoreStats:
        return StoreStats(self._batches, self._requests, self._largest_batch,
                          self.inline_commits)

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

    def label(self, name: str | None) -> None:
        """The PostgreSQL ``application_name`` of the writer's connection (set with the next
        commit, so it commits with it)."""
        self._label = name
        self._labelled = False

    # --- the event loop's side ----------------------------------------------------------------

    def now(self) -> datetime:
        return aware(self._clock())

    def waiter(self) -> Waiter:
        loop = asyncio.get_running_loop()
        return Waiter(loop, loop.create_future())

    def submit(self, request: Request) -> None:
        with self._lock:
            if self._state != "running":
                raise StoreClosedError(f"session store is {self._state}")
            if not self._commits_inline or asyncio._get_running_loop() is not self._loop:
                # another thread or event loop: behind what this loop gathered or holds
                self._enqueue(self._take_gathered())
                self._enqueue([request])
                return
            gathering = self._gathering
            if gathering is not None:
                gathering.append(request)  # this turn's batch, committed at its end
                return
            held = self._held
            if request.waiter is None and self._down is None:
                # nobody waits for it: it joins the next commit (module docstring)
                held.append(request)
                if self._held_timer is None:
                    assert self._loop is not None
                    self._held_timer = self._loop.call_later(HOLD_S, self._release_held)
                return
            self._held = []
            if held:
                self._cancel_held_timer()
            held.append(request)
            if self._pending == 0 and self._down is None and not request.reads:
                # the writer has nothing to do: this turn's requests are committed on the
                # loop's thread once the turn is over (module docstring, "Inline commits")
                self._gathering = held
                assert self._loop is not None
                self._loop.call_soon(self._commit_inline)
                return
            self._enqueue(held)

    def _state_now(self) -> State:
        """The state as declared (a read mypy does not narrow: see :meth:`_commit_inline`)."""
        return self._state

    def _take_gathered(self) -> list[Request]:
        """What the loop holds and gathered, in order, taken from it (under ``_lock``; the
        held lines' timer, if any, finds nothing when it fires)."""
        taken = self._held + (self._gathering or [])
        self._held, self._gathering = [], None
        return taken

    def _cancel_held_timer(self) -> None:
        timer, self._held_timer = self._held_timer, None
        if timer is not None:
            timer.cancel()

    def _release_held(self) -> None:
        """No commit came along for :data:`HOLD_S`: the requests held are committed alone."""
        self._held_timer = None
        with self._lock:
            if not self._held:
                return
            if self._state != "running":  # (close() takes them first: the writer died)
                self._fail(self._take_gathered())
                return
            self._gathering = self._take_gathered()
        self._commit_inline()

    def _enqueue(self, batch: list[Request]) -> None:
        """To the writer thread, in order (the caller holds ``_lock``)."""
        self._pending += len(batch)
        for request in batch:
            self._queue.put(request)

    def _commit_inline(self) -> None:
        """Commit this turn's requests on the loop's thread if the writer thread still has
        nothing to do, none of them reads (a read may be long: a session's events at its
        Logon) and the database is not locked by another connection; else (or if the
        transaction fails in any way) hand them to the writer thread, which retries them as
        any batch and knows outages."""
        with self._lock:
            batch, self._gathering = self._gathering, None
            if not batch:
                return
            if (self._pending or self._down is not None or self._state != "running"
                    or any(r.reads for r in batch)
                    or not self._busy.acquire(blocking=False)):
                if self._state == "running":
                    self._enqueue(batch)
                else:  # (close() takes the gathering first: the writer died)
                    self._fail(batch)
                return
        try:
            try:
                outcomes = self._transaction(batch, timeout_ms=0)
            except Exception as exc:
                logger.debug("inline commit of %d requests failed (%s); handing them to the "
                             "writer thread", len(batch), exc)
                outcomes = None
            else:
                self.inline_commits += 1
                self._requests += len(batch)
                self._largest_batch = max(self._largest_batch, len(batch))
        finally:
            self._busy.release()
        if outcomes is None:
            with self._lock:
                # (read through a method: mypy takes self._state for "running" here, narrowed
                # by the test above across the transaction, and the _fail below for unreachable)
                if self._state_now() == "running":
                    self._enqueue(batch)
                    return
            self._fail(batch)
            return
        _set_all(outcomes)  # (all this loop's: another loop's requests are queued)

    def _fail(self, batch: list[Request]) -> None:
        """The writer thread is gone: ``batch`` fails (its lines are lost)."""
        error = StoreClosedError(f"session store is {self._state}")
        resolve([o for request in batch for o in self._failed(request, error)])

    def call(self, request: Request) -> asyncio.Future[Any]:
        """Queue ``request`` at once (it joins the writer's next batch with whatever else is
        queued in this turn of the event loop); its future resolves after the commit."""
        waiter = request.waiter
        assert waiter is not None
        self.submit(request)
        return waiter.future

    async def query(self, run: Callable[[Connection], T]) -> T:
        """Run ``run(connection)`` in the writer, after what is queued before it."""
        result: T = await self.call(Query(self.waiter(), run))
        return result

    # --- the writer thread --------------------------------------------------------------------

    def statements(self, cls: Callable[[Dialect], S]) -> S:
        found = self._statements.get(cls)
        if found is None:
            found = self._statements[cls] = cls(self.engine.dialect)
        result: S = found
        return result

    def _run(self, started: Waiter) -> None:
        try:
            upgrade(self.engine)
            probe = insert_sql(store_probe.name, ("id", "probed_ms"),
                               placeholder(self.engine.dialect.name), conflict=["id"],
                               update=["probed_ms"])
        except BaseException as exc:
            self.engine.dispose()
            resolve([(started, None, exc)])
            return
        resolve([(started, None, None)])
        if self._checkpointer is not None:
            self._checkpointer.start()
        stop: _Stop | None = None
        batch: list[Request] = []
        probe_delay = PROBE_FIRST_S
        next_probe = 0.0
        try:
            while stop is None:
                if self._down is None or self.fenced_node is not None:
                    # up, or fenced: a fenced store never comes back, there is nothing to
                    # probe, and the requests that come are failed at once (_fail_fast)
                    item: Request | _Stop | None = self._queue.get()
                else:
                    try:
                        item = self._queue.get(timeout=max(next_probe - time.monotonic(), 0))
                    except queue.Empty:
                        item = None
                    if time.monotonic() >= next_probe:
                        with self._busy:
                            back = self._probe(probe)
                        if back:
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
                        stop = item  # nothing is queued after a stop (see submit)
                        break
                    batch.append(item)
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        break
                if batch:
                    with self._busy:
                        if self._down is None:
                            outcomes = self._process(batch, resolve_now=False)
                            # (not self._down: mypy takes it for None still, after the call
                            # that may set it, and compiled, reading a str there is a TypeError)
                            if self.unavailable_reason is not None:
                                next_probe = time.monotonic() + probe_delay
                        else:
                            outcomes = self._fail_fast(batch, resolve_now=False)
                    with self._lock:  # (before the callers hear: their next request may
                        self._pending -= len(batch)  # then be committed inline)
                    resolve(outcomes)
                    batch = []
        except BaseException as exc:  # a bug: fail everyone rather than hang them
            logger.exception("session store writer thread died")
            self._die(batch, exc)
            raise
        finally:
            if self._backlog or self._dropped:
                logger.error("%d message log entries kept while the store was down are lost "
                             "(it did not come back before the store closed)",
                             len(self._backlog) + self._dropped)
            if self._checkpointer is not None:
                self._checkpointer.stop()
            self._disconnect()
            self.engine.dispose()
            with self._lock:
                self._state = "closed"
        assert stop is not None
        resolve([(stop.waiter, None, None)])

    def _die(self, batch: list[Request], exc: BaseException) -> None:
        with self._lock:
            self._state = "closed"
        outcomes: list[Outcome] = [(r.waiter, None, exc) for r in batch if r.waiter is not None]
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item.waiter is not None:
                outcomes.append((item.waiter, None, exc))
        resolve(outcomes)

    def _process(self, batch: list[Request], resolve_now: bool = True) -> list[Outcome]:
        try:
            outcomes = self._transaction(batch)
        except Exception as exc:
            outcomes = self._retry(batch, exc)
        self._requests += len(batch)
        self._largest_batch = max(self._largest_batch, len(batch))
        if resolve_now:
            resolve(outcomes)
        return outcomes

    def _retry(self, batch: list[Request], exc: Exception) -> list[Outcome]:
        if self._conn is not None and self._conn.invalidated:
            # the connection was lost (a database restart, an idle timeout): what a check on
            # checkout (pool_pre_ping) would have caught -- try once more on a new connection
            logger.warning("store connection lost (%s); retrying on a new connection", exc)
            try:
                return self._transaction(batch)
            except Exception as again:
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
        outcomes: list[Outcome] = []
        for i, request in enumerate(batch):
            try:
                outcomes.extend(self._transaction([request]))
            except Exception as one_exc:
                if isinstance(one_exc, NodeFenced):
                    return outcomes + self._go_fenced(batch[i:], one_exc)
                if is_outage(one_exc):  # nothing after it may commit: a prefix, in order
                    return outcomes + self._go_down(batch[i:], one_exc)
                outcomes.extend(self._failed(request, one_exc))
        return outcomes

    # --- outages ----------------------------------------------------------------------------

    def _go_down(self, rest: list[Request], exc: BaseException) -> list[Outcome]:
        """The store cannot commit: fail ``rest`` and everything after it until a probe
        succeeds (requests nobody waits for are kept for then)."""
        reason = f"{type(exc).__name__}: {_first_line(exc)}"
        self._down = reason
        self._down_since = time.monotonic()
        self.outages += 1
        logger.error("store unavailable (%s): failing every request until it takes writes "
                     "again", reason)
        self._notify(False, reason)
        return self._fail_fast(rest, resolve_now=False)

    def _go_fenced(self, rest: list[Request], exc: NodeFenced) -> list[Outcome]:
        """Another process took this node's place: nothing of this one is written any more."""
        self.fenced_node = exc.node
        self.fenced = str(exc)
        self._down = f"fenced: {exc}"
        logger.critical("%s", exc)
        self._notify(False, self._down)
        return self._fail_fast(rest, resolve_now=False)

    def _fail_fast(self, batch: list[Request], resolve_now: bool = True) -> list[Outcome]:
        error: Exception = (NodeFenced(self.fenced_node)
                            if self.fenced_node is not None
                            else StoreUnavailable(f"store unavailable: {self._down}"))
        outcomes: list[Outcome] = []
        for request in batch:
            if request.waiter is None:
                self._keep(request)  # type: ignore[arg-type]
            else:
                outcomes.append((request.waiter, None, error))
        self._requests += len(batch)
        if resolve_now:
            resolve(outcomes)
        return outcomes

    def _keep(self, request: Lossy) -> None:
        while self._backlog and (
            len(self._backlog) >= BACKLOG
            or self._backlog_bytes + request.size > BACKLOG_BYTES
        ):
            self._backlog_bytes -= self._backlog.popleft().size
            self._dropped += 1
        self._backlog.append(request)
        self._backlog_bytes += request.size

    def _probe(self, sql: str) -> bool:
        """A real write (a full disk still answers reads): True when the store is back, after
        the requests kept meanwhile are written."""
        try:
            self._connect()
            cursor = self._cursor
            dbapi = self._dbapi
            assert cursor is not None and dbapi is not None
            try:
                begin = _begin(self.engine.dialect.name)
                if begin is not None:
                    cursor.execute(begin)
                self.execute(sql, [(1, time.time_ns() // 1_000_000)])
                dbapi.commit()
            except self._dbapi_error as db_exc:  # (a name of its own: another type than exc)
                raise self._wrap(db_exc, sql, None) from db_exc
        except Exception as exc:
            self._rollback()
            logger.debug("store probe failed: %s", exc)
            return False
        backlog = list(self._backlog)
        self._backlog.clear()
        self._backlog_bytes = 0
        down_for = time.monotonic() - self._down_since
        if self._dropped:
            logger.error("%d message log entries were dropped while the store was down (more "
                         "than %d entries or %d bytes)", self._dropped, BACKLOG, BACKLOG_BYTES)
            self._dropped = 0
        logger.warning("store available again after %.1f s (%d message log entries kept "
                       "meanwhile)", down_for, len(backlog))
        self._down = None
        self._notify(True, f"down for {down_for:.1f} s")
        if backlog:  # as any batch: an entry that cannot be written is dropped alone
            self._process(list(backlog))
        return True

    def _notify(self, available: bool, why: str) -> None:
        for loop, listener in list(self._listeners):
            with contextlib.suppress(RuntimeError):  # its loop is closed
                loop.call_soon_threadsafe(listener, available, why)

    # --- transactions -------------------------------------------------------------------------

    def _transaction(
        self, batch: list[Request], timeout_ms: int = SQLITE_BUSY_TIMEOUT_MS
    ) -> list[Outcome]:
        """Apply ``batch`` in one transaction and commit it (raises if it was rolled back).
        ``timeout_ms``: how long a SQLite file waits for another connection's lock (0 inline:
        the loop never waits)."""
        started = time.monotonic()
        conn = self._connect()
        if self._checkpointer is not None and self._timeout_ms != timeout_ms:
            assert self._cursor is not None
            self._cursor.execute(f"PRAGMA busy_timeout = {int(timeout_ms)}")
            self._timeout_ms = timeout_ms
        if any(request.reads for request in batch):
            with conn.begin():  # reads go through SQLAlchemy: its transaction
                outcomes, tx = self._apply(conn, batch)
        else:  # writes only: begin and commit on the DBAPI connection
            dbapi, cursor = self._dbapi, self._cursor
            assert dbapi is not None and cursor is not None
            begin = _begin(self.engine.dialect.name)
            statement = begin or "BEGIN"
            try:
                try:
                    if begin is not None:
                        cursor.execute(begin)
                    outcomes, tx = self._apply(conn, batch)
                    statement = "COMMIT"
                    dbapi.commit()
                except self._dbapi_error as exc:  # begin or commit (statements wrap their own)
                    raise self._wrap(exc, statement, None) from exc
            except BaseException:
                self._rollback()
                raise
        self._batches += 1
        try:  # committed: nothing after this may fail the batch (it would be applied again)
            tx.committed()
            observe = self.on_commit
            if observe is not None:
                observe(time.monotonic() - started)
        except Exception:
            logger.exception("after the commit of %d requests", len(batch))
        return outcomes

    def _apply(self, conn: Connection, batch: list[Request]) -> tuple[list[Outcome], Tx]:
        tx = Tx(self, conn)
        if self._label is not None and not self._labelled and self.engine.dialect.name == (
            "postgresql"
        ):
            # a node taking this one over ends its connections by this name (nodes._cut_off)
            assert self._cursor is not None
            self._cursor.execute("SELECT set_config('application_name', %s, false)",
                                 (self._label,))
            self._labelled = True
        if self.fence is not None:
            self.fence(tx)
        outcomes: list[Outcome] = []
        for request in batch:
            value = request.apply(tx)
            if request.waiter is not None:
                outcomes.append((request.waiter, value, None))
        tx.flush()
        return outcomes, tx

    @staticmethod
    def _failed(request: Request, exc: Exception) -> list[Outcome]:
        if request.waiter is None:
            request.lost(exc)  # type: ignore[attr-defined]
            return []
        return [(request.waiter, None, exc)]

    # --- the writer's connection ----------------------------------------------------------------

    def _connect(self) -> Connection:
        """The writer's connection: kept open, replaced when it was invalidated (lost)."""
        conn = self._conn
        if conn is not None and not conn.invalidated:
            return conn
        self._disconnect()
        conn = self.engine.connect()  # the pool checks it first (pool_pre_ping on PostgreSQL)
        try:
            dbapi = conn.connection.dbapi_connection
            assert dbapi is not None
            if self._checkpointer is not None:
                configure_writer(dbapi)
            cursor = dbapi.cursor()
            wrap = self.wrap_cursor
            self._cursor = cursor if wrap is None else wrap(cursor)
            self._timeout_ms = SQLITE_BUSY_TIMEOUT_MS  # (gateway.store.db sets it)
            self._labelled = False
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

    def execute(self, sql: str, rows: Sequence[Any]) -> int:
        """Run ``sql`` once per row of ``rows`` (parameter tuples) on the DBAPI cursor; the
        cursor's rowcount."""
        cursor = self._cursor
        assert cursor is not None
        try:
            if len(rows) == 1:
                cursor.execute(sql, rows[0])
            else:
                cursor.executemany(sql, rows)
        except self._dbapi_error as exc:
            raise self._wrap(exc, sql, rows) from exc
        return int(cursor.rowcount)

    def fetchone(self) -> Any:
        """The next row of the last statement (a fence check's token)."""
        assert self._cursor is not None
        return self._cursor.fetchone()

    def _wrap(self, exc: DBAPIModule.Error, sql: str, rows: Sequence[Any] | None) -> BaseException:
        """``exc`` (a DBAPI error) as SQLAlchemy raises it: ``sqlalchemy.exc.IntegrityError``
        for ``sqlite3.IntegrityError`` / ``psycopg.errors.UniqueViolation``, ... A
        disconnection invalidates the connection (it is replaced before the next transaction)."""
        dialect = self.engine.dialect
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


# --- helpers ----------------------------------------------------------------------------------

_PG_OUTAGE = ("08", "53", "57", "58", "XX", "25006")
"""SQLSTATEs (classes, or one code) of a PostgreSQL that cannot take writes: connection
exception, insufficient resources (disk full, too many connections), operator intervention
(shutdown, crash, a cancelled statement), system error (I/O), internal error, and a read-only
transaction (a standby after a failover)."""
_SQLITE_OUTAGE = frozenset({5, 6, 8, 10, 11, 13, 14, 26})
"""SQLite primary result codes of the same: BUSY, LOCKED (past the busy timeout), READONLY,
IOERR, CORRUPT, FULL, CANTOPEN, NOTADB."""


def commits_inline(url: str, inline: bool | None = None) -> bool:
    """Whether the store at ``url`` commits on the event loop's thread (module docstring): a
    SQLite file only, never a database server, and only where ``inline`` (None: the default)
    is not False."""
    return is_file_sqlite(url) and inline is not False


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


def _begin(dialect_name: str) -> str | None:
    """What begins a write transaction on the DBAPI connection (see gateway.store.db);
    psycopg begins one implicitly."""
    return "BEGIN IMMEDIATE" if dialect_name == "sqlite" else None


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc)
    return text.strip().splitlines()[0] if text.strip() else type(exc).__name__


def resolve(outcomes: list[Outcome]) -> None:
    """Hand results to their event loops: one call_soon_threadsafe per loop per batch."""
    by_loop: dict[asyncio.AbstractEventLoop, list[Outcome]] = {}
    for outcome in outcomes:
        by_loop.setdefault(outcome[0].loop, []).append(outcome)
    for loop, items in by_loop.items():
        try:
            loop.call_soon_threadsafe(_set_all, items)
        except RuntimeError:  # the loop is closed: nobody is waiting any more
            pass


def _set_all(items: list[Outcome]) -> None:
    for waiter, value, exc in items:
        if waiter.future.done():  # cancelled by its caller
            continue
        if exc is not None:
            waiter.future.set_exception(exc)
        else:
            waiter.future.set_result(value)


def _utcnow() -> datetime:
    return datetime.now(UTC)


def bind_time(dialect_name: str, when: datetime) -> Any:
    """An aware datetime as a UTCDateTime column binds it: on SQLite naive UTC as text,
    ``2024-05-01 12:00:00.123456`` (microseconds always); on PostgreSQL (timestamptz) aware
    UTC."""
    if dialect_name == "sqlite":
        return when.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")
    return when.astimezone(UTC)


def aware(when: datetime) -> datetime:
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError(f"naive datetime {when!r}: pass a UTC (aware) datetime")
    return when.astimezone(UTC)
