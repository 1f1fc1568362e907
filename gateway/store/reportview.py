"""What ``fixgw report`` reads from a store: the orders created in a time range (client orders
and the child orders that worked them), their events, and the fills with their orders. Read-only
and synchronous, on an engine of its own (the report runs beside a live gateway or on a copy of
its database); no migration is run. The report (:mod:`gateway.analytics`) reaches it through
``gateway.analytics.report.ReportSource``; the command line wires it in."""

from __future__ import annotations

import json
from collections.abc import Collection, Iterator, Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from gateway.store.auditview import StoreReadError, read_engine, safe_url
from gateway.store.orders import maybe_created_since
from gateway.store.records import FillRecord, OrderEvent, Snapshot
from gateway.store.schema import fills, order_events, orders

_IN_CHUNK = 500
_YIELD = 5000


class StoreReportView:
    """The report's view of the store at ``url`` (sqlite:/// or postgresql+psycopg://).
    StoreReadError when it cannot be read."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.name = safe_url(url)
        self.engine = read_engine(url, orders.c.order_id, "the orders")

    def close(self) -> None:
        self.engine.dispose()

    def _rows(self, query: Any, what: str) -> Iterator[Sequence[Any]]:
        try:
            with self.engine.connect() as conn:
                yield from conn.execution_options(yield_per=_YIELD).execute(query)
        except SQLAlchemyError as exc:
            raise StoreReadError(self.url, f"the {what} cannot be read: "
                                 f"{str(exc).splitlines()[0]}") from None

    def orders(self, since_ns: int, until_ns: int) -> Iterator[Snapshot]:
        """Every order (client and child) created in [since_ns, until_ns), by OrderID."""
        query = (select(orders.c.snapshot).where(maybe_created_since(since_ns))
                 .order_by(orders.c.order_id))
        for (text,) in self._rows(query, "orders"):
            snap: Snapshot = json.loads(text)
            if since_ns <= int(snap.get("created_ns", 0)) < until_ns:
                yield snap

    def events(self, order_ids: Collection[str]) -> Iterator[OrderEvent]:
        """The events of ``order_ids``, each order's in order. The data of events other than
        ``created``, ``rejected`` and those carrying a ``tape`` is left out (empty)."""
        ids = sorted(order_ids)
        c = order_events.c
        for i in range(0, len(ids), _IN_CHUNK):
            query = (select(c.event_id, c.order_id, c.session_id, c.kind, c.ts_ns, c.exec_id,
                            c.data)
                     .where(c.order_id.in_(ids[i:i + _IN_CHUNK]))
                     .order_by(c.order_id, c.event_id))
            for row in self._rows(query, "order events"):
                kind, text = row[3], row[6]
                wanted = kind in ("created", "rejected") or '"tape":' in text
                yield OrderEvent(int(row[0]), row[1], row[2], kind, int(row[4]),
                                 json.loads(text) if wanted else {}, row[5])

    def fills(self, until_ns: int) -> Iterator[tuple[FillRecord, Snapshot]]:
        """Every fill before ``until_ns``, by time, with the snapshot of its order."""
        f = fills.c
        query = (select(f.venue, f.trade_id, f.order_id, f.quantity, f.price, f.fee,
                        f.fee_currency, f.liquidity, f.ts_ns, orders.c.snapshot)
                 .join(orders, orders.c.order_id == f.order_id)
                 .where(f.ts_ns < until_ns)
                 .order_by(f.ts_ns, f.trade_id))
        decoded: dict[str, Snapshot] = {}
        for r in self._rows(query, "fills"):
            snap = decoded.get(r[2])
            if snap is None:
                snap = decoded[r[2]] = json.loads(r[9])
            yield FillRecord(r[0], r[1], r[2], Decimal(r[3]), Decimal(r[4]),
                             None if r[5] is None else Decimal(r[5]), r[6], r[7],
                             int(r[8])), snap
