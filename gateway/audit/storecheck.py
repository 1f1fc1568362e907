"""``fixgw audit --store URL``: the orders rebuilt from the log against the order store.

The store is the truth for what the client was told (docs/architecture.md, Invariant 4), so
each order's stored snapshot must say what the log's last report of it says: OrdStatus,
CumQty, AvgPx, OrderQty, Price, the current ClOrdID, symbol and side. Every difference is a
finding (``store-difference``), as is an order of the log the store does not hold
(``not-in-store``) and an order of the store, of an audited session and created while the log
ran, that the log never mentions (``not-in-log``). Child orders of routed or worked orders
(``parent_id``) are the gateway's own, never told to the client: not compared.

The audit reaches the store through :class:`StoreView` (``gateway/store/auditview.py`` is the
one the command line wires in): the audit layer does not import the store. Orders are looked up
in batches as the audit lets go of them; to find the store's orders the log never mentions,
the OrderIDs seen are kept (a set of short strings, the one thing that grows with the log when
``--store`` is given).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol

from .chains import Chain
from .findings import Finding, Findings, Kind
from .sources import Clock, MessageLogRows

BATCH = 500
_SIDES = {"buy": "1", "sell": "2"}


class OrderRows(Protocol):
    """The store's ``orders`` table as the audit reads it: snapshots (``order_to_json``)."""

    def orders_by_id(self, order_ids: Sequence[str]) -> list[dict[str, Any]]: ...

    def orders_by_cl_ord_id(self, session_ids: Sequence[str],
                            cl_ord_ids: Sequence[str]) -> list[dict[str, Any]]: ...

    def orders_of_sessions(self, session_ids: Sequence[str], created_from_ns: int,
                           created_to_ns: int) -> Iterator[dict[str, Any]]: ...


class StoreView(MessageLogRows, OrderRows, Protocol):
    """Everything ``--store`` reads."""

    def close(self) -> None: ...


def session_ids(session: str) -> list[str]:
    """A session id in both orientations (``B:X->Y`` and ``B:Y->X``): a client's log names
    the session from its side, the store from the gateway's."""
    begin, _, pair = session.partition(":")
    local, _, remote = pair.partition("->")
    return [session, f"{begin}:{remote}->{local}"]


def _d(value: object) -> Decimal | None:
    if value is None:
        return None
    try:
        return Decimal(str(value.decode() if isinstance(value, bytes) else value))
    except (InvalidOperation, UnicodeDecodeError):
        return None


def _t(value: bytes | None) -> str | None:
    return None if value is None else value.decode("utf-8", "replace")


class StoreComparer:
    """A sink of :class:`~gateway.audit.report.Outputs`: compares each order with the store."""

    def __init__(self, store: OrderRows, findings: Findings, name: str, *,
                 open_end: bool = False) -> None:
        self.store = store
        self.open_end = open_end
        """The log is the whole record (the store's own message log, read to its end): an
        order of the store created after its last message is not in it either."""
        self.findings = findings
        self.name = name
        self._batch: list[Chain] = []
        self.seen: set[str] = set()
        self.compared = 0
        self.sessions: set[str] = set()
        self.first = b""
        self.last = b""

    def add(self, chain: Chain) -> None:
        self.sessions.add(chain.session)
        if not self.first or chain.first_stamp < self.first:
            self.first = chain.first_stamp
        if chain.last_stamp > self.last:
            self.last = chain.last_stamp
        if chain.order_id is not None:
            self.seen.add(chain.order_id.decode("utf-8", "replace"))
        self._batch.append(chain)
        if len(self._batch) >= BATCH:
            self.flush()

    def flush(self) -> None:
        batch, self._batch = self._batch, []
        if not batch:
            return
        ids = [c.order_id.decode("utf-8", "replace") for c in batch if c.order_id is not None]
        by_id = {row["order_id"]: row for row in self.store.orders_by_id(ids)} if ids else {}
        by_cl: dict[tuple[str, str], dict[str, Any]] = {}
        missing = [c for c in batch if c.order_id is None or
                   c.order_id.decode("utf-8", "replace") not in by_id]
        if missing:
            sids = sorted({sid for c in missing for sid in session_ids(c.session)})
            cls = sorted({cl.decode("utf-8", "replace") for c in missing for cl in c.cl_ord_ids})
            for found in self.store.orders_by_cl_ord_id(sids, cls):
                by_cl[(found["session_id"], found["cl_ord_id"])] = found
        for chain in batch:
            row: dict[str, Any] | None = None
            if chain.order_id is not None:
                row = by_id.get(chain.order_id.decode("utf-8", "replace"))
            if row is None:
                for sid in session_ids(chain.session):
                    for cl in reversed(chain.cl_ord_ids):
                        row = by_cl.get((sid, cl.decode("utf-8", "replace")))
                        if row is not None:
                            break
                    if row is not None:
                        break
            self._compare(chain, row)

    def _finding(self, chain: Chain, kind: Kind, text: str) -> None:
        f = Finding(kind, chain.session, text, chain.last_stamp, self.name, None, chain.number,
                    _t(chain.cl_ord_id))
        if self.findings.add(f):
            chain.findings.append(f)

    def _compare(self, chain: Chain, row: dict[str, Any] | None) -> None:
        who = f"order #{chain.number} ({chain.label()})"
        if row is None:
            if (chain.order_id is None or chain.order_id == b"NONE" or chain.adopted
                    or chain.status == b"8"):
                return  # refused before it became an order, or known only from reports
            self._finding(chain, Kind.NOT_IN_STORE, f"{who}: the store has no such order")
            return
        self.compared += 1
        if row.get("parent_id"):
            return
        diffs: list[str] = []

        def differ(name: str, log: object, store: object, numeric: bool = False) -> None:
            if log is None:
                return
            if numeric:
                a, b = _d(log), _d(store)
                if a is not None and b is not None and a == b:
                    return
                if a is None and b is None:
                    return
            elif log == store:
                return
            diffs.append(f"{name} {log if not isinstance(log, bytes) else _t(log)} in the log, "
                         f"{store} in the store")

        differ("OrdStatus", _t(chain.status), row.get("status"))
        differ("CumQty", chain.cum_text, row.get("cum_qty"), numeric=True)
        if chain.cum > 0:
            differ("AvgPx", chain.avg_text, row.get("avg_px"), numeric=True)
        differ("OrderQty", chain.qty, row.get("quantity"), numeric=True)
        if chain.price is not None and row.get("price") is not None:
            differ("Price", chain.price, row.get("price"), numeric=True)
        differ("Symbol", _t(chain.symbol), row.get("symbol"))
        side = row.get("side")
        differ("Side", _t(chain.side), _SIDES.get(side, side) if isinstance(side, str) else side)
        stored_cl = row.get("cl_ord_id")
        if stored_cl is not None and stored_cl.encode() not in chain.cl_ord_ids:
            diffs.append(f"ClOrdID {stored_cl} in the store, not in the log's chain")
        for d in diffs:
            self._finding(chain, Kind.STORE_DIFFERENCE, f"{who}: {d}")

    def finish(self) -> None:
        """The store's orders that the log never mentions (audited sessions, created while
        the log ran, or after it with ``open_end``)."""
        self.flush()
        clock = Clock()
        start, end = clock.seconds(self.first), clock.seconds(self.last)
        if start is None or end is None or not self.sessions:
            return
        sids = sorted({sid for s in self.sessions for sid in session_ids(s)})
        names = {sid: s for s in self.sessions for sid in session_ids(s)}
        end_ns = 2**63 - 1 if self.open_end else int(end * 1e9)
        for row in self.store.orders_of_sessions(sids, int(start * 1e9), end_ns):
            if row.get("parent_id") or row["order_id"] in self.seen:
                continue
            created = datetime.fromtimestamp(int(row.get("created_ns", 0)) / 1e9, UTC)
            f = Finding(Kind.NOT_IN_LOG, names.get(row["session_id"], row["session_id"]),
                        f"order {row['order_id']} (ClOrdID {row.get('cl_ord_id')}, "
                        f"{row.get('status')}) of the store, created {created:%H:%M:%S}, "
                        "is not in the log", self.last, self.name)
            self.findings.add(f)
