"""What the writer's batches write, the part of the store every order goes through: the
statements of the writer's fast path (:class:`SessionStatements`, :class:`OrderStatements`) and
the column order of their rows, the write sets the requests of a batch merge their rows into
(:class:`SessionWrites`, :class:`PendingOrderWrites`), the requests a session's commit, an order
append and a message log line make (:class:`SessionCommit`, :class:`OrderWrite`,
:class:`LogLine`), and the fencing check of every commit (:class:`Fence`).

Compiled by mypyc with the order path (:data:`gateway.native.ORDER_PATH`), as the writer is.
The repositories that make these (:mod:`gateway.store.sessions`, :mod:`gateway.store.orders`,
:mod:`gateway.store.nodes`) stay Python: :class:`~gateway.store.store.SessionStore` combines
them as bases of one class, which compiled classes cannot be; their arguments are checked there
(tests replace those checks). The classes here are plain classes, not dataclasses: a compiled
dataclass takes a ``ClassVar`` (``reads``, ``rank``) for a field and fails to set it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, ClassVar, Literal, TypeAlias

from sqlalchemy import Dialect
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.dml import Insert

from gateway.audit.filelog import mask_secrets
from gateway.store.db import insert_sql, placeholder
from gateway.store.errors import NodeFenced
from gateway.store.records import Commit, OrderAppend
from gateway.store.rows import check_length
from gateway.store.schema import (
    ID_LENGTH,
    SESSION_ID_LENGTH,
    counters,
    drop_copies,
    fills,
    message_log,
    messages,
    order_events,
    orders,
    position_adjustments,
    reports,
    sessions,
)
from gateway.store.switches import upsert_kill_switch_sql
from gateway.store.writer import Tx, Waiter, Writer

logger = logging.getLogger("gateway.store.sessions")
"""(The message log's losses are told where they were before: the session repository's.)"""

Direction: TypeAlias = Literal["in", "out"]

# Column order of the rows built by build_append / add_reports and of the SQL that stores them.
EVENT_COLUMNS = (
    "event_id", "order_id", "session_id", "kind", "ts_ns", "exec_id", "data", "cl_ord_id",
    "report_seq",
)
ORDER_COLUMNS = (
    "order_id",
    "session_id",
    "cl_ord_id",
    "venue",
    "symbol",
    "status",
    "is_open",
    "updated_ns",
    "last_event_id",
    "snapshot",
    "list_id",
)
FILL_COLUMNS = (
    "venue",
    "trade_id",
    "order_id",
    "quantity",
    "price",
    "fee",
    "fee_currency",
    "liquidity",
    "ts_ns",
)
REPORT_COLUMNS = ("exec_id", "session_id", "seq")
"""A report sent: its ExecID, the session, the MsgSeqNum that carried it (the ``report_seq`` of
its event when that is in the batch, else a ``reports`` row)."""
COPY_COLUMNS = ("session_id", "exec_id", "event_id", "source", "ts_ns", "data")
DELIVERED_COLUMNS = ("seq", "session_id", "exec_id")
"""A copy delivered: the MsgSeqNum that carried it, the drop copy session, the ExecID."""
ADJUSTMENT_COLUMNS = ("venue", "symbol", "ts_ns", "computed", "venue_quantity", "delta",
                      "reason")
_FIXED_ORDER_COLUMNS = frozenset({"order_id", "session_id", "venue", "symbol", "list_id"})
"""An order's columns that its first row sets for good."""
_EXEC_ID = EVENT_COLUMNS.index("exec_id")
_ORDER_ID = ORDER_COLUMNS.index("order_id")
_LAST_EVENT_ID = ORDER_COLUMNS.index("last_event_id")
_VENUE = FILL_COLUMNS.index("venue")
_TRADE_ID = FILL_COLUMNS.index("trade_id")


# --- statements ---------------------------------------------------------------------------------


class SessionStatements:
    """Dialect-specific statements of the session repository, built once per engine.

    The reads (and ``create_session`` / ``reset_session`` of load and reset) are SQLAlchemy
    statements; the batch writes (``create_sessions``, ``update_seqs``, ``upsert_message``,
    ``insert_log``, ``upsert_cod_override``, ``upsert_kill_switch``) are SQL text for the DBAPI
    cursor with positional parameters: the same SQL SQLAlchemy renders for those statements.
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


class OrderStatements:
    """Dialect-specific statements of the order repository, built once per engine.

    The writes (``insert_event`` ... ``upsert_report``) are SQL text for the DBAPI cursor, with
    parameters in the order of the ``*_COLUMNS`` tuples; ``add_to_counter`` is a SQLAlchemy
    statement (reads and read-modify-writes go through SQLAlchemy)."""

    def __init__(self, dialect: Dialect) -> None:
        insert = postgresql.insert if dialect.name == "postgresql" else sqlite.insert
        mark = placeholder(dialect.name)
        # an event stored already keeps its row, but takes the MsgSeqNum of a report committed
        # with this copy of it when it has none (else that report would be recorded nowhere)
        self.insert_event = insert_sql(
            order_events.name, EVENT_COLUMNS, mark, conflict=["event_id"],
            update=["report_seq"],
            where="order_events.report_seq IS NULL AND excluded.report_seq IS NOT NULL",
        )
        self.upsert_order = insert_sql(
            orders.name,
            ORDER_COLUMNS,
            mark,
            conflict=["order_id"],
            # (what never changes is not set again: an index of it would be rewritten)
            update=[c for c in ORDER_COLUMNS if c not in _FIXED_ORDER_COLUMNS],
            where="orders.last_event_id <= excluded.last_event_id",
        )
        self.insert_fill = insert_sql(
            fills.name, FILL_COLUMNS, mark, conflict=["venue", "trade_id"]
        )
        self.insert_adjustment = insert_sql(
            position_adjustments.name, ADJUSTMENT_COLUMNS, mark,
            conflict=["venue", "symbol", "ts_ns"])
        self.upsert_report = insert_sql(
            reports.name,
            REPORT_COLUMNS,
            mark,
            conflict=["exec_id"],
            update=["session_id", "seq"],
        )
        # a copy stored again (a retried request, events kept through an outage) keeps the row
        # it has, delivered or not
        self.insert_copy = insert_sql(
            drop_copies.name, COPY_COLUMNS, mark, conflict=["session_id", "exec_id"])
        self.deliver_copy = (
            f"UPDATE {drop_copies.name} SET seq = {mark} "  # noqa: S608 - mark is ? or %s
            f"WHERE session_id = {mark} AND exec_id = {mark}"
        )
        ins_counter = insert(counters)
        self.add_to_counter: Insert = ins_counter.on_conflict_do_update(
            index_elements=[counters.c.name],
            set_={"value": counters.c.value + ins_counter.excluded.value},
        ).returning(counters.c.value)


# --- write sets ---------------------------------------------------------------------------------


class KnownSessions:
    """The sessions whose row is committed (rows are never deleted), so a commit need not
    create them. Used in transactions only (one at a time: the writer's, or an inline one)."""

    __slots__ = ("ids",)

    def __init__(self) -> None:
        self.ids: set[str] = set()

    def learn(self, tx: Tx, session_ids: Any) -> None:
        """``session_ids`` have their row once ``tx`` commits."""
        new = set(session_ids)
        tx.after_commit(lambda: self.ids.update(new))


class SessionWrites:
    """The session-side writes of a batch, merged (rows in the order of the statements' SQL):
    the last sent message of a (session, seq), the latest sequence numbers of a session, every
    log entry, the last override of a session, the last switch of a scope."""

    rank: ClassVar[int] = 0

    def __init__(self, known: KnownSessions) -> None:
        self.known = known
        self.sent: dict[tuple[str, int], tuple[str, int, bytes]] = {}
        self.seqs: dict[str, list[int | None]] = {}
        self.logs: list[tuple[str, str, Any, bytes]] = []
        self.cod_overrides: dict[str, tuple[str, int, int, Any, str | None]] = {}
        self.kill_switches: dict[str, tuple[str, bool, str, Any]] = {}

    def __bool__(self) -> bool:
        return bool(self.sent or self.seqs or self.logs or self.cod_overrides
                    or self.kill_switches)

    def flush(self, tx: Tx) -> None:
        st = tx.statements(SessionStatements)
        if self.seqs:
            # a commit of a session never loaded creates it (skipped for sessions known to
            # exist)
            unknown = [sid for sid in self.seqs if sid not in self.known.ids]
            if unknown:
                now = tx.bind_time(tx.now())
                tx.execute(st.create_sessions, [(sid, 1, 1, now) for sid in unknown])
                self.known.learn(tx, unknown)
            changes = [
                (ns, nt, sid)
                for sid, (ns, nt) in self.seqs.items()
                if ns is not None or nt is not None
            ]
            if changes:
                updated = tx.execute(st.update_seqs, changes)
                if updated != len(changes):  # a session row vanished under us: never ack that
                    raise RuntimeError(f"updated {updated} of {len(changes)} session rows")
        if self.sent:
            tx.execute(st.upsert_message, list(self.sent.values()))
        if self.logs:
            tx.execute(st.insert_log, self.logs)
        if self.cod_overrides:
            tx.execute(st.upsert_cod_override, list(self.cod_overrides.values()))
            self.known.learn(tx, self.cod_overrides)
        if self.kill_switches:
            tx.execute(st.upsert_kill_switch, list(self.kill_switches.values()))


class PendingOrderWrites:
    """Order-side writes merged across consecutive requests of a batch, flushed as one
    ``executemany`` per table. Of two snapshots of an order the later one is kept (unless its
    ``last_event_id`` is older), of two fills with one key the first (as the database keeps the
    stored one), of two reports of one ExecID the last. Rows are tuples (``*_COLUMNS`` order).
    A report's MsgSeqNum goes into its event's row when the event is in the batch (the usual
    case: a report commits with its event), else into a ``reports`` row: the event may be
    stored already (a report told at a Logon) or not yet (it waits in memory for the store),
    and is reported either way."""

    rank: ClassVar[int] = 1

    def __init__(self) -> None:
        self.events: list[tuple[Any, ...]] = []
        self.orders: dict[str, tuple[Any, ...]] = {}
        self.fills: dict[tuple[str, str], tuple[Any, ...]] = {}
        self.reports: dict[str, tuple[str, str, int]] = {}
        self.copies: dict[tuple[str, str], tuple[Any, ...]] = {}
        self.delivered: list[tuple[Any, ...]] = []

    def __bool__(self) -> bool:
        return bool(self.events or self.orders or self.fills or self.reports or self.copies
                    or self.delivered)

    def add(self, append: OrderAppend) -> None:
        self.events.extend(append.events)
        for row in append.orders:
            # one row per order: PostgreSQL refuses to upsert a row twice in one statement
            known = self.orders.get(row[_ORDER_ID])
            if known is None or known[_LAST_EVENT_ID] <= row[_LAST_EVENT_ID]:
                self.orders[row[_ORDER_ID]] = row
        for row in append.fills:
            self.fills.setdefault((row[_VENUE], row[_TRADE_ID]), row)
        for row in append.copies:
            self.copies.setdefault((row[0], row[1]), row)
        self.delivered.extend(append.delivered)

    def add_reports(self, rows: Iterable[tuple[str, str, int]]) -> None:
        """Add ``(exec_id, session_id, seq)`` rows (:data:`REPORT_COLUMNS`)."""
        for row in rows:
            self.reports[row[0]] = row

    def _report_seqs(self) -> list[tuple[str, str, int]]:
        """Each report's MsgSeqNum into the row of its event where that is in the batch; the
        other reports' rows."""
        others = dict(self.reports)
        events = self.events
        for i, row in enumerate(events):
            exec_id = row[_EXEC_ID]
            if exec_id is not None:
                report = others.pop(exec_id, None)
                if report is not None:
                    events[i] = (*row[:-1], report[2])
        return list(others.values())

    def flush(self, tx: Tx) -> None:
        """Write everything with the writer's ``executemany`` on its DBAPI cursor (which
        raises DBAPI errors as SQLAlchemy's)."""
        st = tx.statements(OrderStatements)
        others = self._report_seqs() if self.reports else []
        if self.events:
            tx.execute(st.insert_event, self.events)
        if others:
            tx.execute(st.upsert_report, others)
        if self.orders:
            tx.execute(st.upsert_order, list(self.orders.values()))
        if self.fills:
            tx.execute(st.insert_fill, list(self.fills.values()))
        if self.copies:
            tx.execute(st.insert_copy, list(self.copies.values()))
        if self.delivered:  # (after the copies: a copy is delivered once it is stored)
            tx.execute(st.deliver_copy, self.delivered)


# --- the requests every order makes -------------------------------------------------------------


def check_session_id(session_id: str) -> None:
    check_length("session id", session_id, SESSION_ID_LENGTH)


def _exec_id(exec_id: str) -> str:
    check_length("ExecID", exec_id, ID_LENGTH)
    return str(exec_id)


def _positive(name: str, value: int) -> int:
    if value < 1:
        raise ValueError(f"{name} must be >= 1, not {value}")
    return int(value)


def session_commit(writer: Writer, known: KnownSessions, unit: Commit) -> asyncio.Future[Any]:
    """Queue ``unit`` (:meth:`gateway.store.sessions.SessionRepository.commit`), its arguments
    checked; the future resolves once it is committed."""
    session_id = unit.session_id
    check_session_id(session_id)
    rows = tuple((session_id, _positive("seq", seq), bytes(raw)) for seq, raw in unit.sent)
    if unit.next_sender is not None:
        _positive("next_sender", unit.next_sender)
    if unit.next_target is not None:
        _positive("next_target", unit.next_target)
    report_rows = tuple(
        (_exec_id(exec_id), session_id, _positive("seq", seq)) for exec_id, seq in unit.reports
    )
    return writer.call(SessionCommit(writer.waiter(), known, session_id, rows, unit.next_sender,
                                     unit.next_target, report_rows, unit.orders))


class SessionCommit:
    """A session's :class:`~gateway.store.records.Commit`, its arguments checked."""

    reads: ClassVar[bool] = False

    def __init__(
        self, waiter: Waiter, known: KnownSessions, session_id: str,
        sent: tuple[tuple[str, int, bytes], ...], next_sender: int | None,
        next_target: int | None, reports: tuple[tuple[str, str, int], ...],
        orders: tuple[OrderAppend, ...],
    ) -> None:
        self.waiter = waiter
        self.known = known
        self.session_id = session_id
        self.sent = sent
        """``messages`` rows: (session_id, seq, data)."""
        self.next_sender = next_sender
        self.next_target = next_target
        self.reports = reports
        """``reports`` rows: (exec_id, session_id, seq)."""
        self.orders = orders

    def apply(self, tx: Tx) -> None:
        w = tx.writes(SessionWrites, self.known)
        sent = w.sent
        for row in self.sent:
            sent[(row[0], row[1])] = row
        seqs = w.seqs.get(self.session_id)
        if seqs is None:
            seqs = w.seqs[self.session_id] = [None, None]
        if self.next_sender is not None:
            seqs[0] = self.next_sender
        if self.next_target is not None:
            seqs[1] = self.next_target
        if self.reports or self.orders:
            pending = tx.writes(PendingOrderWrites)
            if self.reports:
                pending.add_reports(self.reports)
            for append in self.orders:
                pending.add(append)


class LogLine:
    """A message log entry (nobody waits for it)."""

    reads: ClassVar[bool] = False

    def __init__(self, session_id: str, direction: Direction, data: bytes, when: datetime,
                 known: KnownSessions) -> None:
        self.session_id = session_id
        self.direction = direction
        self.data = data
        self.when = when
        self.known = known
        self.waiter: None = None

    @property
    def size(self) -> int:
        return len(self.data)

    def apply(self, tx: Tx) -> None:
        tx.writes(SessionWrites, self.known).logs.append(
            (self.session_id, self.direction, tx.bind_time(self.when), mask_secrets(self.data))
        )

    def lost(self, exc: BaseException) -> None:
        logger.error("message log entry for %s dropped: %s", self.session_id, exc, exc_info=exc)


class OrderWrite:
    """An :class:`~gateway.store.records.OrderAppend` on its own (not a session's commit)."""

    reads: ClassVar[bool] = False

    def __init__(self, waiter: Waiter, append: OrderAppend) -> None:
        self.waiter = waiter
        self.append = append

    def apply(self, tx: Tx) -> None:
        tx.writes(PendingOrderWrites).add(self.append)


# --- the fence ----------------------------------------------------------------------------------


class Fence:
    """The check of every commit once this process is a gateway node
    (:meth:`gateway.store.nodes.NodeRegistry.register_node`, Invariant 9): ``sql`` (from
    :func:`gateway.store.nodes.fence_sql`, with ``params``) returns the node's token, and
    nothing commits once it is not ``token`` -- another process has taken this node's place
    (on PostgreSQL the statement also takes the node's shared lock, which a takeover waits
    for)."""

    __slots__ = ("node", "token", "sql", "params")

    def __init__(self, node: str, token: int, sql: str, params: tuple[Any, ...]) -> None:
        self.node = node
        self.token = token
        self.sql = sql
        self.params = params

    def __call__(self, tx: Tx) -> None:
        tx.execute(self.sql, [self.params])
        row = tx.fetchone()
        if row is None or int(row[0]) != self.token:
            raise NodeFenced(self.node)
