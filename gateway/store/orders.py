"""The order repository: event log, order snapshots, fills, reported ExecIDs, drop copies, id
counters.

It shares the store's database, writer thread and group commit (:mod:`gateway.store.writer`)
with the session repository, so an ExecutionReport's sent message and the order event it tells
of (its ``report_seq``: the message's MsgSeqNum) commit in one transaction (a session's
:class:`~gateway.store.records.Commit`), and many callers' appends share a commit. This module
holds the API (:class:`OrderRepository`) and the reads; the statements, the writes merged
across the requests of a batch (:class:`~gateway.store.writes.PendingOrderWrites`) and the
request of an append are in :mod:`gateway.store.writes`, compiled with the order path.

Writes take the writer's fast path: rows are built as tuples in the column order of the SQL
(``EVENT_COLUMNS``, ...) on the caller's side, and flushed with the DBAPI cursor's
``executemany`` (no SQLAlchemy statement compilation or parameter processing; see
:mod:`gateway.store.db`). Reads use SQLAlchemy Core.

Arguments are serialised on the caller's side when the call starts running (at once for
``await store.append_order_events(...)``; for a task, when the task first runs): an
:class:`Order` is mutable and may change again before the writer runs, but the snapshot stored
is the one it had then.

Retrying a write is harmless (the writer retries a failed group commit request by request):
an ``event_id`` already stored is skipped (but takes the ``report_seq`` of a report in the
batch when it has none), an order snapshot never goes back to an older
``last_event_id``, a (venue, trade id) already stored is skipped, a report is an upsert. A
second event with an ExecID already stored is an error (``IntegrityError``) for its caller alone.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, ClassVar, TypeVar

from sqlalchemy import ColumnElement, Connection, and_, delete, exists, func, select, update

from gateway.store.records import (
    CopyRecord,
    FillRecord,
    OrderAppend,
    OrderEvent,
    OrderSnapshot,
    PositionAdjustment,
    Snapshot,
)
from gateway.store.rows import build_append, check_length
from gateway.store.schema import (
    ID_LENGTH,
    NAME_LENGTH,
    REASON_LENGTH,
    counters,
    drop_copies,
    fills,
    order_events,
    orders,
    position_adjustments,
    reports,
)
from gateway.store.writer import Tx, Waiter, Writer
from gateway.store.writes import OrderStatements, OrderWrite

T = TypeVar("T")

_IN_CHUNK = 500
"""Trade ids per ``IN (...)`` query (well under every back end's bind parameter limit)."""


# --- requests (an order append on its own: gateway.store.writes.OrderWrite) ---------------------


@dataclass(slots=True, eq=False)
class _Reserve:
    waiter: Waiter
    counter: str
    n: int
    reads: ClassVar[bool] = True

    def apply(self, tx: Tx) -> int:
        tx.flush()
        st = tx.statements(OrderStatements)
        last = int(tx.conn.execute(st.add_to_counter,
                                   {"name": self.counter, "value": self.n}).scalar_one())
        return last - self.n + 1


@dataclass(slots=True, eq=False)
class _Release:
    waiter: Waiter
    counter: str
    first: int
    end: int
    reads: ClassVar[bool] = True

    def apply(self, tx: Tx) -> bool:
        tx.flush()
        done = tx.conn.execute(
            update(counters)
            .where(counters.c.name == self.counter, counters.c.value == self.end - 1)
            .values(value=self.first - 1))
        return bool(done.rowcount)


@dataclass(slots=True, eq=False)
class _Adjust:
    waiter: Waiter
    row: tuple[Any, ...]
    reads: ClassVar[bool] = False

    def apply(self, tx: Tx) -> None:
        tx.flush()
        tx.execute(tx.statements(OrderStatements).insert_adjustment, [self.row])


# --- the API -------------------------------------------------------------------------------------


class OrderRepository:
    """The orders' side of the store, on ``writer``.

    Every method is queued to the writer thread and returns after the commit of its batch;
    a read sees every write queued before it.
    """

    def __init__(self, writer: Writer) -> None:
        self.writer = writer

    async def append_order_events(
        self,
        events: Sequence[OrderEvent],
        orders: Sequence[OrderSnapshot],
        fills: Sequence[FillRecord] = (),
    ) -> None:
        """Append ``events`` (append-only; an ``event_id`` already stored is skipped), store the
        snapshots of ``orders`` as they are now, and insert ``fills`` (a (venue, trade id)
        already stored is skipped). One transaction; many callers' appends share a commit.

        Event data must be JSON-serialisable; a Decimal in it is stored (and read back) as its
        exact string. Raises ``IntegrityError`` when an event's ExecID is already stored.
        """
        await self.append_now(build_append(events, orders, fills))

    async def append_built(self, append: OrderAppend) -> None:
        """:meth:`append_order_events` of rows already made by :func:`build_append`."""
        await self.append_now(append)

    def append_now(self, append: OrderAppend) -> asyncio.Future[None]:
        """Queue ``append`` at once (so it joins the writer's next batch with whatever else is
        queued in this turn of the event loop); the future resolves after its commit."""
        w = self.writer
        future: asyncio.Future[None] = w.call(OrderWrite(w.waiter(), append))
        return future

    async def load_open_orders(self) -> list[Snapshot]:
        """The snapshot of every open order (not filled, canceled, rejected or expired)."""
        return await self.writer.query(_load_open_orders)

    async def load_order(self, order_id: str) -> Snapshot | None:
        return await self.writer.query(lambda conn: _load_order(conn, order_id))

    async def find_order(self, session_id: str, cl_ord_id: str) -> Snapshot | None:
        """The snapshot of the order the session knows by ``cl_ord_id`` now (the latest updated
        if several), by :func:`known_by_cl_ord_id`."""
        return await self.writer.query(lambda conn: _find_order(conn, session_id, cl_ord_id))

    async def find_order_by_past_cl(self, session_id: str, cl_ord_id: str) -> Snapshot | None:
        """The snapshot of the order the session knew by ``cl_ord_id`` at some point of its
        ClOrdID chain (its NewOrderSingle's, a cancel's or a replace's; the latest such order,
        ClOrdIDs compared exactly, case included), by the events' indexed ``cl_ord_id``. For a
        request about an order no longer open (a cancel of one already canceled is "too late",
        not "unknown")."""
        return await self.writer.query(
            lambda conn: _find_order_by_past_cl(conn, session_id, cl_ord_id))

    async def find_list(self, session_id: str, list_id: str) -> list[Snapshot]:
        """The snapshots of the orders the session sent in the NewOrderList ``list_id``, by
        OrderID (the order they were made in)."""
        return await self.writer.query(lambda conn: _find_list(conn, session_id, list_id))

    async def load_list(self, session_id: str, list_id: str
                        ) -> tuple[list[Snapshot], list[list[Any]]]:
        """:meth:`find_list`, and the lines of the list refused before they could be described
        (no order stored), as the list's events keep them (``list_status`` events of its
        orders, data ``refused``: [OrderID, ClOrdID, OrdRejReason, Text] each; [] when there
        are none): one read."""
        def read(conn: Connection) -> tuple[list[Snapshot], list[list[Any]]]:
            found = _find_list(conn, session_id, list_id)
            return found, _list_refusals(conn, session_id, list_id) if found else []
        return await self.writer.query(read)

    async def unreported_events(self, session_id: str) -> list[OrderEvent]:
        """The session's events that have an ExecID no sent message carried (no
        ``report_seq``, no ``reports`` row), by event_id: what the client was not told. Reads
        only the events not reported with their own commit (a partial index holds them)."""
        return await self.writer.query(lambda conn: _unreported_events(conn, session_id))

    async def fold_reports(self) -> int:
        """Move each ``reports`` row of a stored event onto the event (its ``report_seq``) and
        drop the row: the partial index of the events not reported with their commit then
        holds none that was reported since (at a Logon, or while the event waited in memory
        for the store). Made when the store starts; returns how many rows were moved."""
        return await self.writer.query(_fold_reports)

    async def undelivered_copies(
        self, session_id: str, after_event_id: int, limit: int
    ) -> list[CopyRecord]:
        """At most ``limit`` copies for the drop copy session ``session_id`` that no message
        delivered yet, with ``event_id > after_event_id``, by event_id (the order of events)."""
        if limit < 1:
            raise ValueError(f"limit must be positive, not {limit}")
        return await self.writer.query(
            lambda conn: _undelivered_copies(conn, session_id, after_event_id, limit))

    async def replay_events(self, after_event_id: int, limit: int) -> list[OrderEvent]:
        """At most ``limit`` events with ``event_id > after_event_id``, by event_id."""
        if after_event_id < 0:
            raise ValueError(f"after_event_id must be >= 0, not {after_event_id}")
        if limit < 1:
            raise ValueError(f"limit must be positive, not {limit}")
        return await self.writer.query(lambda conn: _replay_events(conn, after_event_id, limit))

    async def order_events(self, order_id: str, kind: str | None = None) -> list[OrderEvent]:
        """The stored events of ``order_id`` (only those of ``kind``, if given), in order."""
        return await self.writer.query(lambda conn: _order_events(conn, order_id, kind))

    async def known_trade_ids(self, venue: str, trade_ids: Sequence[str]) -> set[str]:
        """Those of ``trade_ids`` that have a stored fill at ``venue``."""
        wanted = sorted(set(trade_ids))
        if not wanted:
            return set()
        return await self.writer.query(lambda conn: _known_trade_ids(conn, venue, wanted))

    async def fills_for_order(self, order_id: str) -> list[FillRecord]:
        """The order's fills, by time then trade id."""
        return await self.writer.query(lambda conn: _fills_for_order(conn, order_id))

    async def fills_with_orders(self) -> list[tuple[FillRecord, Snapshot]]:
        """Every stored fill with the snapshot of its order, by time: what positions are
        computed from at start (a scan of the fills)."""
        return await self.writer.query(_fills_with_orders)

    async def save_adjustment(self, adjustment: PositionAdjustment) -> None:
        """Store one position adjustment (returns after the commit)."""
        a = adjustment
        check_length("symbol", a.symbol, ID_LENGTH)
        w = self.writer
        await w.call(_Adjust(w.waiter(), (
            a.venue, a.symbol, a.ts_ns, str(a.computed), str(a.venue_quantity), str(a.delta),
            a.reason[:REASON_LENGTH])))

    async def load_adjustments(self) -> list[PositionAdjustment]:
        """Every stored adjustment, by time."""
        return await self.writer.query(_load_adjustments)

    async def reserve(self, counter: str, n: int) -> int:
        """Add ``n`` to ``counter`` (created at 0) and return the first value reserved: the
        caller owns ``first .. first + n - 1``. Committed before it returns, atomic across
        gateway nodes sharing a database, so reserved values never repeat, across restarts too
        (a retried request may skip a block, never repeat one)."""
        check_length("counter", counter, NAME_LENGTH)
        if n < 1:
            raise ValueError(f"n must be positive, not {n}")
        w = self.writer
        result: int = await w.call(_Reserve(w.waiter(), counter, n))
        return result

    async def release(self, counter: str, first: int, end: int) -> bool:
        """Give back ``first .. end - 1``, reserved and never used, when nothing was reserved
        after it (the counter still ends at ``end - 1``): the next :meth:`reserve` goes on from
        ``first``. False (nothing done) when another caller reserved since: a value is never
        handed out twice, a gap is left instead."""
        check_length("counter", counter, NAME_LENGTH)
        if not first <= end:
            raise ValueError(f"not a range: {first} .. {end - 1}")
        if first == end:
            return True
        w = self.writer
        result: bool = await w.call(_Release(w.waiter(), counter, first, end))
        return result

    async def max_event_id(self) -> int:
        """The largest stored event_id (0 when there is none)."""
        return await self.writer.query(_max_event_id)


# --- reads (writer thread) -----------------------------------------------------------------------

_EVENT_COLUMNS = (
    order_events.c.event_id,
    order_events.c.order_id,
    order_events.c.session_id,
    order_events.c.kind,
    order_events.c.ts_ns,
    order_events.c.data,
    order_events.c.exec_id,
)


def _event(row: Sequence[Any]) -> OrderEvent:
    return OrderEvent(
        event_id=int(row[0]),
        order_id=row[1],
        session_id=row[2],
        kind=row[3],
        ts_ns=int(row[4]),
        data=json.loads(row[5]),
        exec_id=row[6],
    )


def _order(snapshot: str) -> Snapshot:
    data: Snapshot = json.loads(snapshot)
    return data


def _load_open_orders(conn: Connection) -> list[Snapshot]:
    query = select(orders.c.snapshot).where(orders.c.is_open).order_by(orders.c.order_id)
    return [_order(snapshot) for (snapshot,) in conn.execute(query)]


def _load_order(conn: Connection, order_id: str) -> Snapshot | None:
    snapshot = conn.execute(
        select(orders.c.snapshot).where(orders.c.order_id == order_id)
    ).scalar_one_or_none()
    return None if snapshot is None else _order(snapshot)


def known_by_cl_ord_id(session_ids: Sequence[str], cl_ord_ids: Sequence[str]
                       ) -> ColumnElement[bool]:
    """The ``orders`` of ``session_ids`` whose present ClOrdID is one of ``cl_ord_ids``, found
    through the events' index of ClOrdIDs (``ix_order_events_cl_ord_id``: every ClOrdID an
    order's chain had, its ``created`` event's, each cancel's and replace's -- the present one
    among them), then by OrderID. The orders have no index of their own by ClOrdID (migration
    0013); a store older than 0010 has no ClOrdIDs in its events (the audit reads those by the
    orders' own index, :mod:`gateway.store.auditview`)."""
    chained = select(order_events.c.order_id).where(
        order_events.c.cl_ord_id.in_(cl_ord_ids), order_events.c.session_id.in_(session_ids))
    return and_(orders.c.order_id.in_(chained), orders.c.session_id.in_(session_ids),
                orders.c.cl_ord_id.in_(cl_ord_ids))


CLOCK_SLACK_NS = 3_600 * 10**9
"""How far an order's last update may be stamped before its creation: both are the wall clock
of the node that made them (another node's on a takeover; a clock stepped back)."""


def maybe_created_since(since_ns: int) -> ColumnElement[bool]:
    """The orders that may have been created since ``since_ns``: an order is last updated
    after it is created (within :data:`CLOCK_SLACK_NS`), so the snapshots of orders last
    updated before are neither read nor parsed; the snapshot's ``created_ns`` decides."""
    return orders.c.updated_ns >= since_ns - CLOCK_SLACK_NS


def _find_order(conn: Connection, session_id: str, cl_ord_id: str) -> Snapshot | None:
    snapshot = conn.execute(
        select(orders.c.snapshot)
        .where(known_by_cl_ord_id([session_id], [cl_ord_id]))
        .order_by(orders.c.updated_ns.desc(), orders.c.last_event_id.desc())
        .limit(1)
    ).scalar_one_or_none()
    return None if snapshot is None else _order(snapshot)


def _find_order_by_past_cl(conn: Connection, session_id: str, cl_ord_id: str) -> Snapshot | None:
    order_id = conn.execute(  # the index on (cl_ord_id, session_id, event_id): a few rows read
        select(order_events.c.order_id)
        .where(order_events.c.cl_ord_id == cl_ord_id, order_events.c.session_id == session_id)
        .order_by(order_events.c.event_id.desc())
        .limit(1)
    ).scalar_one_or_none()
    if order_id is None:
        return None
    snapshot = conn.execute(select(orders.c.snapshot).where(orders.c.order_id == order_id)
                            ).scalar_one_or_none()
    return None if snapshot is None else _order(snapshot)


def _find_list(conn: Connection, session_id: str, list_id: str) -> list[Snapshot]:
    query = select(orders.c.snapshot).where(orders.c.list_id == list_id,
                                            orders.c.session_id == session_id)
    found = [_order(snapshot) for (snapshot,) in conn.execute(query)]
    # OrderIDs are decimal numbers taken in order: by number, not by text
    found.sort(key=lambda d: (len(d["order_id"]), d["order_id"]))
    return found


def _list_refusals(conn: Connection, session_id: str, list_id: str) -> list[list[Any]]:
    e, o = order_events.c, orders.c
    query = (select(e.data).select_from(orders.join(order_events, e.order_id == o.order_id))
             .where(o.list_id == list_id, o.session_id == session_id, e.kind == "list_status"))
    for (data,) in conn.execute(query):  # (those that have them have the same lines)
        refused: list[list[Any]] | None = json.loads(data).get("refused")
        if refused:
            return refused
    return []


def _fold_reports(conn: Connection) -> int:
    e, r = order_events.c, reports.c
    moved = conn.execute(
        update(order_events)
        .where(e.exec_id.in_(select(r.exec_id)), e.report_seq.is_(None))
        .values(report_seq=select(r.seq).where(r.exec_id == e.exec_id).scalar_subquery())
    ).rowcount
    # driven from reports (small), each row looked up by the ExecID index: an IN (SELECT ...)
    # of the reported events would read every event of the store at every start
    conn.execute(delete(reports).where(
        exists().where(e.exec_id == r.exec_id, e.report_seq.is_not(None))))
    return int(moved)


def _unreported_events(conn: Connection, session_id: str) -> list[OrderEvent]:
    c = order_events.c
    query = (  # (the terms of ix_order_events_unreported's WHERE: that index is read)
        select(*_EVENT_COLUMNS)
        .where(c.session_id == session_id, c.exec_id.is_not(None), c.report_seq.is_(None),
               ~exists().where(reports.c.exec_id == c.exec_id))
        .order_by(c.event_id)
    )
    return [_event(row) for row in conn.execute(query)]


def _undelivered_copies(
    conn: Connection, session_id: str, after_event_id: int, limit: int
) -> list[CopyRecord]:
    t = drop_copies
    query = (
        select(t.c.session_id, t.c.exec_id, t.c.event_id, t.c.source, t.c.ts_ns, t.c.data)
        .where(t.c.session_id == session_id, t.c.seq.is_(None), t.c.event_id > after_event_id)
        .order_by(t.c.event_id)
        .limit(limit)
    )
    return [CopyRecord(r[0], r[1], int(r[2]), r[3], int(r[4]),
                       tuple((int(tag), v.encode()) for tag, v in json.loads(r[5])))
            for r in conn.execute(query)]


def _replay_events(conn: Connection, after_event_id: int, limit: int) -> list[OrderEvent]:
    query = (
        select(*_EVENT_COLUMNS)
        .where(order_events.c.event_id > after_event_id)
        .order_by(order_events.c.event_id)
        .limit(limit)
    )
    return [_event(row) for row in conn.execute(query)]


def _order_events(conn: Connection, order_id: str, kind: str | None) -> list[OrderEvent]:
    query = select(*_EVENT_COLUMNS).where(order_events.c.order_id == order_id)
    if kind is not None:
        query = query.where(order_events.c.kind == kind)
    return [_event(row) for row in conn.execute(query.order_by(order_events.c.event_id))]


def _known_trade_ids(conn: Connection, venue: str, trade_ids: list[str]) -> set[str]:
    known: set[str] = set()
    for start in range(0, len(trade_ids), _IN_CHUNK):
        chunk = trade_ids[start : start + _IN_CHUNK]
        known.update(
            conn.execute(
                select(fills.c.trade_id).where(fills.c.venue == venue, fills.c.trade_id.in_(chunk))
            ).scalars()
        )
    return known


def _fills_for_order(conn: Connection, order_id: str) -> list[FillRecord]:
    query = (
        select(
            fills.c.venue,
            fills.c.trade_id,
            fills.c.order_id,
            fills.c.quantity,
            fills.c.price,
            fills.c.fee,
            fills.c.fee_currency,
            fills.c.liquidity,
            fills.c.ts_ns,
        )
        .where(fills.c.order_id == order_id)
        .order_by(fills.c.ts_ns, fills.c.trade_id)
    )
    return [_fill(row) for row in conn.execute(query)]


def _fills_with_orders(conn: Connection) -> list[tuple[FillRecord, Snapshot]]:
    query = (
        select(fills.c.venue, fills.c.trade_id, fills.c.order_id, fills.c.quantity,
               fills.c.price, fills.c.fee, fills.c.fee_currency, fills.c.liquidity,
               fills.c.ts_ns, orders.c.snapshot)
        .join(orders, orders.c.order_id == fills.c.order_id)
        .order_by(fills.c.ts_ns, fills.c.trade_id)
    )
    decoded: dict[str, Snapshot] = {}
    out = []
    for row in conn.execute(query):
        fill = _fill(row)
        snapshot = decoded.get(fill.order_id)
        if snapshot is None:
            snapshot = decoded[fill.order_id] = _order(row[9])
        out.append((fill, snapshot))
    return out


def _load_adjustments(conn: Connection) -> list[PositionAdjustment]:
    t = position_adjustments
    query = select(t.c.venue, t.c.symbol, t.c.ts_ns, t.c.computed, t.c.venue_quantity,
                   t.c.delta, t.c.reason).order_by(t.c.ts_ns)
    return [PositionAdjustment(r[0], r[1], int(r[2]), Decimal(r[3]), Decimal(r[4]),
                               Decimal(r[5]), r[6]) for r in conn.execute(query)]


def _fill(r: Sequence[Any]) -> FillRecord:
    return FillRecord(
        venue=r[0],
        trade_id=r[1],
        order_id=r[2],
        quantity=Decimal(r[3]),
        price=Decimal(r[4]),
        fee=None if r[5] is None else Decimal(r[5]),
        fee_currency=r[6],
        liquidity=r[7],
        ts_ns=int(r[8]),
    )


def _max_event_id(conn: Connection) -> int:
    return int(
        conn.execute(select(func.coalesce(func.max(order_events.c.event_id), 0))).scalar_one()
    )
