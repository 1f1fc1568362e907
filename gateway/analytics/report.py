"""Execution analytics of what the gateway executed (``fixgw report``), from its order store.

Over a time range [since, until):

* **Rows** per (account, venue, symbol). The client orders created in the range count in the
  row of their own venue (an order routed across venues by the smart order router in a row
  of venue ``SOR``): how many, how each ended, the fill rate (quantity filled over quantity
  ordered, of the orders the gateway did not refuse), the reject reasons, and the slippage.
  The fills in the range count in the row of the venue that executed them: how many, the
  volume (base) and notional (quote), the fees per currency and the realized PnL (quote
  currency, before fees) as :mod:`gateway.positions.book` computes it from every fill since
  the first (the fills before ``since`` give the positions their entry prices).
* **Slippage** of each client order with fills, in basis points of the benchmark, positive
  when it cost (a buy above, a sell below): against its *arrival mid* and against the
  market's *VWAP over its life*, when the order path recorded them
  (:mod:`gateway.orders.benchmarks`: only while the gateway watched that book). A row's
  slippage is the notional-weighted mean over its orders that have the benchmark; how many
  had it is said beside.
* **Latency** per venue, of every order sent to a venue (direct client orders and the child
  orders of strategies), from the stored event times: *ack*, from the order's intent
  (``created``: stored just before the venue is called) to the venue's acknowledgement
  (``accepted``) or refusal; *fill*, from the acknowledgement to the first fill.
* **Over time**: the notional traded per time bucket, and each order's slippage at its
  arrival.

Orders refused before they could be stored (a message that does not describe an order) are
not in the store and not counted. Amounts are Decimal throughout; times UTC.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Protocol

from connectors.base import Side
from gateway.positions.book import Positions, split_symbol
from gateway.store.records import FillRecord, OrderEvent, Snapshot

ZERO = Decimal(0)
BP = Decimal(10_000)
NS_PER_MS = Decimal(1_000_000)
ROUTED = "SOR"

FINAL = {"2": "filled", "4": "canceled", "8": "rejected", "C": "expired"}
"""OrdStatus (39) of an order that ended -> how it is counted (an order still open is
"open"; a canceled or expired one with fills is "partial")."""

LATENCY_BINS_MS = (0.25, 0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000)
"""Upper bounds of the latency histograms' bins (ms); a last bin takes the rest."""


class ReportSource(Protocol):
    """What the report reads (:class:`gateway.store.reportview.StoreReportView`)."""

    name: str

    def orders(self, since_ns: int, until_ns: int) -> Iterable[Snapshot]: ...

    def events(self, order_ids: Collection[str]) -> Iterable[OrderEvent]: ...

    def fills(self, until_ns: int) -> Iterable[tuple[FillRecord, Snapshot]]: ...


@dataclass(slots=True)
class OrderResult:
    """One client order as the report sees it."""

    order_id: str
    session_id: str
    cl_ord_id: str
    account: str
    venue: str
    symbol: str
    side: Side
    quantity: Decimal
    cum_qty: Decimal
    avg_px: Decimal
    status: str
    created_ns: int
    strategy: str | None
    arrival_mid: Decimal | None = None
    market_vwap: Decimal | None = None
    slip_arrival_bp: Decimal | None = None
    slip_vwap_bp: Decimal | None = None
    reject: str | None = None
    """Who refused it and why (its reason's numbers written N, so that like reasons count
    together), for a rejected order."""
    reject_text: str | None = None

    @property
    def outcome(self) -> str:
        final = FINAL.get(self.status)
        if final is None:
            return "open"
        if final in ("canceled", "expired") and self.cum_qty > ZERO:
            return "partial"
        return final

    @property
    def notional(self) -> Decimal:
        return self.cum_qty * self.avg_px


@dataclass(slots=True)
class Row:
    account: str
    venue: str
    symbol: str
    orders: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    ordered_qty: Decimal = ZERO
    """Of the orders not refused."""
    filled_qty: Decimal = ZERO
    """Of those same orders."""
    fills: int = 0
    volume: Decimal = ZERO
    notional: Decimal = ZERO
    fees: dict[str, Decimal] = field(default_factory=dict)
    realized: Decimal = ZERO
    rejects: Counter[str] = field(default_factory=Counter)
    _slip_arrival: Decimal = ZERO
    _w_arrival: Decimal = ZERO
    n_arrival: int = 0
    _slip_vwap: Decimal = ZERO
    _w_vwap: Decimal = ZERO
    n_vwap: int = 0

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.account, self.venue, self.symbol)

    @property
    def fill_rate(self) -> Decimal | None:
        """Quantity filled over quantity ordered (orders not refused); None: none."""
        return None if self.ordered_qty == ZERO else self.filled_qty / self.ordered_qty

    @property
    def slip_arrival_bp(self) -> Decimal | None:
        return None if self._w_arrival == ZERO else self._slip_arrival / self._w_arrival

    @property
    def slip_vwap_bp(self) -> Decimal | None:
        return None if self._w_vwap == ZERO else self._slip_vwap / self._w_vwap

    def add_order(self, o: OrderResult) -> None:
        self.orders += 1
        self.outcomes[o.outcome] += 1
        if o.outcome == "rejected":
            if o.reject is not None:
                self.rejects[o.reject] += 1
            return
        self.ordered_qty += o.quantity
        self.filled_qty += o.cum_qty
        weight = o.notional
        if o.slip_arrival_bp is not None and weight > ZERO:
            self._slip_arrival += o.slip_arrival_bp * weight
            self._w_arrival += weight
            self.n_arrival += 1
        if o.slip_vwap_bp is not None and weight > ZERO:
            self._slip_vwap += o.slip_vwap_bp * weight
            self._w_vwap += weight
            self.n_vwap += 1

    def add_fill(self, f: FillRecord) -> None:
        self.fills += 1
        self.volume += f.quantity
        self.notional += f.quantity * f.price
        if f.fee and f.fee_currency:
            self.fees[f.fee_currency] = self.fees.get(f.fee_currency, ZERO) + f.fee


@dataclass(slots=True)
class Latency:
    """One venue's latencies (ms), as measured (module docstring)."""

    venue: str
    ack_ms: list[Decimal] = field(default_factory=list)
    fill_ms: list[Decimal] = field(default_factory=list)


@dataclass(slots=True)
class Bucket:
    start_ns: int
    notional: dict[str, Decimal] = field(default_factory=dict)
    """Quote currency -> notional traded."""


@dataclass(slots=True)
class Report:
    source: str
    since_ns: int
    until_ns: int
    generated_ns: int
    rows: list[Row]
    orders: list[OrderResult]
    latency: list[Latency]
    bucket_ns: int
    buckets: list[Bucket]
    first_ns: int
    """The first order created or fill in the range (``since_ns`` when there is none)."""
    last_ns: int
    """The last one (``until_ns`` when there is none)."""

    @property
    def totals(self) -> Row:
        t = Row("", "", "")
        for r in self.rows:
            t.orders += r.orders
            t.outcomes.update(r.outcomes)
            t.ordered_qty += r.ordered_qty
            t.filled_qty += r.filled_qty
            t.fills += r.fills
            t.notional += r.notional
            t.realized += r.realized
            t.rejects.update(r.rejects)
            for c, v in r.fees.items():
                t.fees[c] = t.fees.get(c, ZERO) + v
            t._slip_arrival += r._slip_arrival
            t._w_arrival += r._w_arrival
            t.n_arrival += r.n_arrival
            t._slip_vwap += r._slip_vwap
            t._w_vwap += r._w_vwap
            t.n_vwap += r.n_vwap
        return t

    @property
    def quote_currencies(self) -> list[str]:
        return sorted({c for b in self.buckets for c in b.notional})


# ---- building ------------------------------------------------------------------------------


def build_report(source: ReportSource, since_ns: int, until_ns: int, generated_ns: int,
                 max_buckets: int = 48) -> Report:
    """The report of ``source`` over [since_ns, until_ns) (module docstring)."""
    client: dict[str, Snapshot] = {}
    venue_orders: dict[str, Snapshot] = {}
    for snap in source.orders(since_ns, until_ns):
        if snap.get("parent_id") is None:
            client[snap["order_id"]] = snap
        if snap.get("strategy") is None:  # placed at its venue as it is
            venue_orders[snap["order_id"]] = snap
    results: dict[str, OrderResult] = {oid: _result(s) for oid, s in client.items()}
    latency: dict[str, Latency] = {}
    for order_id, events in _by_order(source.events(set(client) | set(venue_orders))):
        o = results.get(order_id)
        if o is not None:
            _benchmarks(o, events)
        venue_order = venue_orders.get(order_id)
        if venue_order is not None:
            _latency(latency, venue_order, events)
    rows: dict[tuple[str, str, str], Row] = {}

    def row(account: str, venue: str, symbol: str) -> Row:
        key = (account, venue, symbol)
        r = rows.get(key)
        if r is None:
            r = rows[key] = Row(account, venue, symbol)
        return r

    for o in results.values():
        row(o.account, o.venue, o.symbol).add_order(o)
    positions = Positions()
    realized: dict[tuple[str, str, str, str], Decimal] = {}
    in_range: list[tuple[FillRecord, str]] = []
    for f, snap in source.fills(until_ns):
        account = snap.get("account") or ""
        symbol = snap["symbol"]
        p = positions.fill(snap["session_id"], account, f.venue, symbol, Side(snap["side"]),
                           f.trade_id, f.quantity, f.price, f.fee, f.fee_currency, f.ts_ns)
        if p is None:  # a trade counted before
            continue
        key = (snap["session_id"], account, f.venue, symbol)
        gained = p.realized - realized.get(key, ZERO)
        realized[key] = p.realized
        if f.ts_ns < since_ns:
            continue
        r = row(account, f.venue, symbol)
        r.add_fill(f)
        r.realized += gained
        in_range.append((f, symbol))
    times = [o.created_ns for o in results.values()] + [f.ts_ns for f, _ in in_range]
    first_ns = min(times, default=since_ns)
    last_ns = max(times, default=until_ns)
    bucket_ns = _bucket_size(last_ns - first_ns + 1, max_buckets)
    buckets: dict[int, Bucket] = {}
    for f, symbol in in_range:
        start = f.ts_ns // bucket_ns * bucket_ns
        b = buckets.get(start)
        if b is None:
            b = buckets[start] = Bucket(start)
        quote = split_symbol(symbol)[1]
        b.notional[quote] = b.notional.get(quote, ZERO) + f.quantity * f.price
    return Report(
        source=source.name, since_ns=since_ns, until_ns=until_ns, generated_ns=generated_ns,
        rows=sorted(rows.values(), key=lambda r: r.key),
        orders=sorted(results.values(), key=lambda o: (o.created_ns, o.order_id)),
        latency=sorted(latency.values(), key=lambda x: x.venue),
        bucket_ns=bucket_ns, buckets=[buckets[k] for k in sorted(buckets)], first_ns=first_ns,
        last_ns=last_ns)


def _result(s: Snapshot) -> OrderResult:
    return OrderResult(
        order_id=s["order_id"], session_id=s["session_id"], cl_ord_id=s["cl_ord_id"],
        account=s.get("account") or "", venue=s["venue"], symbol=s["symbol"],
        side=Side(s["side"]), quantity=Decimal(s["quantity"]), cum_qty=Decimal(s["cum_qty"]),
        avg_px=Decimal(s["avg_px"]), status=s["status"], created_ns=int(s["created_ns"]),
        strategy=s.get("strategy"))


def _by_order(events: Iterable[OrderEvent]) -> Iterator[tuple[str, list[OrderEvent]]]:
    """Events grouped by order (they come each order's together)."""
    current: list[OrderEvent] = []
    for ev in events:
        if current and current[0].order_id != ev.order_id:
            yield current[0].order_id, current
            current = []
        current.append(ev)
    if current:
        yield current[0].order_id, current


_NUMBER = re.compile(r"\b\d+(?:\.\d+)?\b")
"""A number standing alone (not the 1 of a name like ``v1``)."""


def _benchmarks(o: OrderResult, events: list[OrderEvent]) -> None:
    """The order's arrival mid and the market's VWAP over its life, the slippage against
    them, and why it was rejected."""
    arrival: dict[str, object] = {}
    end_tape = None
    for ev in events:
        if ev.kind == "created":
            got = ev.data.get("arrival")
            if isinstance(got, dict):
                arrival = got
        elif ev.kind == "rejected":
            by = ev.data.get("by") or "venue"
            text = str(ev.data.get("text") or "")
            code = ev.data.get("ord_rej_reason")
            o.reject = f"{by}: {_NUMBER.sub('N', text)}" + (f" (103={code})" if code else "")
            o.reject_text = text
        if "tape" in ev.data:
            end_tape = ev.data["tape"]
    mid = arrival.get("mid")
    if isinstance(mid, str):
        o.arrival_mid = Decimal(mid)
    start_tape = arrival.get("tape")
    if isinstance(start_tape, list) and isinstance(end_tape, list) and \
            start_tape[0] == end_tape[0]:
        size = Decimal(end_tape[1]) - Decimal(start_tape[1])
        if size > ZERO:
            o.market_vwap = (Decimal(end_tape[2]) - Decimal(start_tape[2])) / size
    if o.cum_qty > ZERO:
        sign = 1 if o.side is Side.BUY else -1
        if o.arrival_mid:
            o.slip_arrival_bp = sign * (o.avg_px - o.arrival_mid) / o.arrival_mid * BP
        if o.market_vwap:
            o.slip_vwap_bp = sign * (o.avg_px - o.market_vwap) / o.market_vwap * BP


def _latency(latency: dict[str, Latency], snap: Snapshot, events: list[OrderEvent]) -> None:
    venue = snap["venue"]
    created = int(snap["created_ns"])
    acked = filled = None
    for ev in events:
        if acked is None and (ev.kind == "accepted" or (
                ev.kind == "rejected" and ev.data.get("by") == "venue")):
            acked = ev.ts_ns
        elif ev.kind == "fill" and filled is None:
            filled = ev.ts_ns
    if acked is None:
        return
    lat = latency.get(venue)
    if lat is None:
        lat = latency[venue] = Latency(venue)
    lat.ack_ms.append(Decimal(acked - created) / NS_PER_MS)
    if filled is not None and filled >= acked:
        lat.fill_ms.append(Decimal(filled - acked) / NS_PER_MS)


BUCKET_SIZES_S = (1, 5, 10, 30, 60, 300, 900, 1800, 3600, 6 * 3600, 86400, 7 * 86400)


def _bucket_size(span_ns: int, max_buckets: int) -> int:
    """The smallest round bucket that cuts ``span_ns`` in at most ``max_buckets``."""
    for s in BUCKET_SIZES_S:
        if span_ns <= s * 1_000_000_000 * max_buckets:
            return s * 1_000_000_000
    return BUCKET_SIZES_S[-1] * 1_000_000_000


# ---- statistics ----------------------------------------------------------------------------


def percentile(values: list[Decimal], q: Decimal) -> Decimal | None:
    """The ``q`` quantile (0..1) by the nearest rank of the sorted values; None: none."""
    if not values:
        return None
    ordered = sorted(values)
    rank = int((q * len(ordered)).to_integral_value(rounding="ROUND_CEILING"))
    return ordered[min(max(rank, 1), len(ordered)) - 1]


def histogram(values: list[Decimal]) -> list[int]:
    """Counts per bin of :data:`LATENCY_BINS_MS` (one more bin for what is above them)."""
    counts = [0] * (len(LATENCY_BINS_MS) + 1)
    for v in values:
        for i, bound in enumerate(LATENCY_BINS_MS):
            if v <= Decimal(str(bound)):
                counts[i] += 1
                break
        else:
            counts[-1] += 1
    return counts
