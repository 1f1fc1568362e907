"""The report's arithmetic on a store described by hand (a source in memory): realized PnL
across the range's start, slippage against the arrival mid and the market VWAP (sign: a cost
is positive), rows by account/venue/symbol, fill rates and outcomes, reject reasons counted
together, latency percentiles and histograms, buckets of notional, the JSON and the terminal
summary; the command line's times."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from decimal import Decimal
from typing import Any

import pytest

from gateway.analytics.output import summary_text, to_json
from gateway.analytics.report import Report, build_report, histogram, percentile
from gateway.analytics.run import parse_when
from gateway.store.records import FillRecord, OrderEvent

D = Decimal
S = 1_000_000_000
T0 = 1_767_225_600 * S  # 2026-01-01T00:00:00Z
SID = "FIX.4.4:GATEWAY->CLIENT1"


def snap(order_id: str, *, side: str = "buy", qty: str = "1", cum: str = "0", avg: str = "0",
         status: str = "2", created: int = T0, account: str | None = "A", venue: str = "v1",
         symbol: str = "BTC/USDT", parent: str | None = None,
         strategy: str | None = None) -> dict[str, Any]:
    return {"order_id": order_id, "session_id": SID, "cl_ord_id": f"c{order_id}",
            "account": account, "venue": venue, "symbol": symbol, "side": side,
            "quantity": qty, "cum_qty": cum, "avg_px": avg, "status": status,
            "created_ns": created, "parent_id": parent, "strategy": strategy}


class Source:
    name = "memory"

    def __init__(self, orders: list[dict[str, Any]], events: list[OrderEvent],
                 fills: list[tuple[FillRecord, str]]) -> None:
        self._orders = {o["order_id"]: o for o in orders}
        self._events = events
        self._fills = fills

    def orders(self, since_ns: int, until_ns: int) -> Iterable[dict[str, Any]]:
        return [o for o in self._orders.values() if since_ns <= o["created_ns"] < until_ns]

    def events(self, order_ids: Collection[str]) -> Iterable[OrderEvent]:
        return sorted((e for e in self._events if e.order_id in order_ids),
                      key=lambda e: (e.order_id, e.event_id))

    def fills(self, until_ns: int) -> Iterable[tuple[FillRecord, dict[str, Any]]]:
        return [(f, self._orders[oid]) for f, oid in sorted(self._fills,
                                                            key=lambda x: x[0].ts_ns)
                if f.ts_ns < until_ns]


_ids = iter(range(1, 10_000))


def ev(order_id: str, kind: str, ts: int, **data: Any) -> OrderEvent:
    return OrderEvent(next(_ids), order_id, SID, kind, ts, data)


def fill(order_id: str, trade: str, qty: str, px: str, ts: int, *, venue: str = "v1",
         fee: str | None = "0.1", ccy: str | None = "USDT") -> tuple[FillRecord, str]:
    return (FillRecord(venue, trade, order_id, D(qty), D(px), None if fee is None else D(fee),
                       ccy, "taker", ts), order_id)


def tape(tape_id: str, size: str, notional: str) -> list[str]:
    return [tape_id, size, notional]


@pytest.fixture
def report() -> Report:
    orders = [
        # before the range: a buy of 1 @ 100 (gives the sell below its entry price)
        snap("1", cum="1", avg="100", created=T0 - 60 * S),
        # in the range: sell 1 @ 110 (+10 realized), arrival mid 111: sold 1 below, a cost
        snap("2", side="sell", cum="1", avg="110", created=T0 + 10 * S),
        # buy 2 @ 101.5 (two fills), mid 100 -> +150 bp; market VWAP 101 -> +49.50 bp
        snap("3", qty="2", cum="2", avg="101.5", created=T0 + 20 * S),
        # half filled then canceled: a partial; no benchmark
        snap("4", qty="4", cum="2", avg="100", status="4", created=T0 + 30 * S),
        # rejected by the gateway twice with different numbers, by the venue once
        snap("5", qty="50", status="8", created=T0 + 40 * S),
        snap("6", qty="60", status="8", created=T0 + 41 * S),
        snap("7", status="8", created=T0 + 42 * S, account="B"),
        # still open, on another venue
        snap("8", qty="3", status="0", created=T0 + 50 * S, venue="v2"),
        # a TWAP parent on v1 whose child traded; the child's fills are v1's
        snap("9", qty="1", cum="1", avg="99", created=T0 + 60 * S, strategy="1000"),
        snap("10", qty="1", cum="1", avg="99", created=T0 + 61 * S, parent="9"),
    ]
    events = [
        ev("2", "created", T0 + 10 * S, arrival={"mid": "111", "tape": tape("t", "5", "500")}),
        ev("2", "accepted", T0 + 10 * S + 2_000_000),
        ev("2", "fill", T0 + 10 * S + 5_000_000),
        ev("3", "created", T0 + 20 * S, arrival={"mid": "100", "bid": "99", "ask": "101",
                                                 "tape": tape("t", "10", "1000")}),
        ev("3", "accepted", T0 + 20 * S + 1_000_000),
        ev("3", "fill", T0 + 20 * S + 3_000_000),
        ev("3", "fill", T0 + 20 * S + 4_000_000, tape=tape("t", "14", "1404")),
        ev("4", "created", T0 + 30 * S, arrival={"tape": tape("t", "20", "2000")}),
        ev("4", "accepted", T0 + 30 * S + 1_000_000),
        ev("4", "fill", T0 + 30 * S + 9_000_000),
        # a feed that broke off in between: another tape id, no VWAP
        ev("4", "canceled", T0 + 31 * S, tape=tape("u", "1", "100")),
        ev("5", "created", T0 + 40 * S),
        ev("5", "rejected", T0 + 40 * S, by="gateway", ord_rej_reason="3",
           text="quantity 50 exceeds max_order_qty 5"),
        ev("6", "created", T0 + 41 * S),
        ev("6", "rejected", T0 + 41 * S, by="gateway", ord_rej_reason="3",
           text="quantity 60 exceeds max_order_qty 5"),
        ev("7", "created", T0 + 42 * S),
        ev("7", "rejected", T0 + 42 * S + 7_000_000, by="venue", text="v1: insufficient balance"),
        ev("8", "created", T0 + 50 * S),
        ev("8", "accepted", T0 + 50 * S + 20_000_000),
        ev("9", "created", T0 + 60 * S, arrival={"mid": "100"}),
        ev("10", "created", T0 + 61 * S),
        ev("10", "accepted", T0 + 61 * S + 4_000_000),
        ev("10", "fill", T0 + 61 * S + 6_000_000),
    ]
    fills = [
        fill("1", "a", "1", "100", T0 - 59 * S),
        fill("2", "b", "1", "110", T0 + 10 * S),
        fill("3", "c", "1", "101", T0 + 20 * S),
        fill("3", "d", "1", "102", T0 + 20 * S + 1, fee="0.0001", ccy="BTC"),
        fill("4", "e", "2", "100", T0 + 30 * S, fee=None, ccy=None),
        fill("10", "f", "1", "99", T0 + 61 * S),
    ]
    return build_report(Source(orders, events, fills), T0, T0 + 120 * S, T0 + 200 * S)


def test_rows_outcomes_fill_rates_and_rejects(report: Report) -> None:
    rows = {r.key: r for r in report.rows}
    assert set(rows) == {("A", "v1", "BTC/USDT"), ("B", "v1", "BTC/USDT"),
                         ("A", "v2", "BTC/USDT")}
    a = rows[("A", "v1", "BTC/USDT")]
    assert a.orders == 6  # 2, 3, 4, 5, 6, 9 (the child 10 is not a client order; 1 is before)
    assert dict(a.outcomes) == {"filled": 3, "partial": 1, "rejected": 2}
    assert a.ordered_qty == D(8) and a.filled_qty == D(6)  # the rejected left out
    assert a.fill_rate == D("0.75")
    assert dict(a.rejects) == {"gateway: quantity N exceeds max_order_qty N (103=3)": 2}
    b = rows[("B", "v1", "BTC/USDT")]
    assert dict(b.rejects) == {"venue: v1: insufficient balance": 1} and b.fill_rate is None
    assert rows[("A", "v2", "BTC/USDT")].outcomes["open"] == 1


def test_fills_volume_fees_and_realized_pnl_across_the_start(report: Report) -> None:
    a = {r.key: r for r in report.rows}[("A", "v1", "BTC/USDT")]
    assert a.fills == 5  # b, c, d, e, f (a is before the range)
    assert a.volume == D(6)
    assert a.notional == D(110 + 101 + 102 + 200 + 99)
    assert a.fees == {"USDT": D("0.3"), "BTC": D("0.0001")}
    # sell 1 @ 110 against the entry 100: +10; then long again, nothing closed
    assert a.realized == D(10)
    assert report.totals.realized == D(10)


def test_slippage_against_the_arrival_mid_and_the_market_vwap(report: Report) -> None:
    by = {o.order_id: o for o in report.orders}
    # a sell at 110 with the mid at 111: 1/111 of the mid below it, a cost
    assert by["2"].slip_arrival_bp == D(1) / D(111) * D(10_000)
    assert by["2"].slip_vwap_bp is None  # no tape at its end
    assert by["3"].slip_arrival_bp == D(150)
    assert by["3"].market_vwap == D(101)  # (1404 - 1000) / (14 - 10)
    assert by["3"].slip_vwap_bp == D("0.5") / D(101) * D(10_000)
    assert by["4"].market_vwap is None  # the feed broke off between its tapes
    assert by["9"].slip_arrival_bp == D(-100)  # bought below the mid: a gain
    a = {r.key: r for r in report.rows}[("A", "v1", "BTC/USDT")]
    weights = {"2": D(110), "3": D(203), "9": D(99)}
    expect = sum((by[k].slip_arrival_bp or D(0)) * w for k, w in weights.items()) / sum(
        weights.values())
    assert a.slip_arrival_bp == expect and a.n_arrival == 3
    assert a.slip_vwap_bp is not None and by["3"].slip_vwap_bp is not None
    assert abs(a.slip_vwap_bp - by["3"].slip_vwap_bp) < D("1e-20") and a.n_vwap == 1


def test_latency_of_the_orders_sent_to_each_venue(report: Report) -> None:
    lat = {x.venue: x for x in report.latency}
    # v1: orders 2, 3, 4 (2, 1, 1 ms), 7 (the venue's refusal after 7 ms), the child 10 (4 ms);
    # not the parent 9 (its strategy works it) nor the gateway's refusals
    assert sorted(lat["v1"].ack_ms) == [D(1), D(1), D(2), D(4), D(7)]
    assert sorted(lat["v1"].fill_ms) == [D(2), D(2), D(3), D(8)]
    assert lat["v2"].ack_ms == [D(20)] and lat["v2"].fill_ms == []
    assert percentile(lat["v1"].ack_ms, D("0.5")) == D(2)
    assert percentile(lat["v1"].ack_ms, D("0.9")) == D(7)
    assert percentile([], D("0.5")) is None
    # bins up to 0.25, 0.5, 1, 2, 5, 10, 20, ... 5000 ms, and above
    assert histogram([D("0.1"), D(1), D("1.5"), D(20), D(10_000)]) == [
        1, 0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1]


def test_buckets_json_and_summary(report: Report) -> None:
    assert report.bucket_ns == 5 * S  # the 51 s from the first order to the last fill
    assert [(b.start_ns - T0) // S for b in report.buckets] == [10, 20, 30, 60]
    assert report.buckets[1].notional == {"USDT": D(203)}
    doc = to_json(report)
    assert doc["since"] == "2026-01-01T00:00:00.000Z"
    assert doc["totals"]["realized_pnl"] == "10"
    row = next(r for r in doc["rows"] if r["account"] == "A" and r["venue"] == "v1")
    assert row["fees"] == {"BTC": "0.0001", "USDT": "0.3"} and row["fill_rate"] == "0.75"
    v1 = next(x for x in doc["latency"] if x["venue"] == "v1")
    assert v1["ack_ms"]["n"] == 5 and v1["ack_ms"]["p50"] == "2"
    assert sum(v1["ack_ms"]["histogram"]["counts"]) == 5
    text = summary_text(report)
    assert "orders 8 (3 filled, 1 partial, 3 rejected, 1 open)" in text
    assert "realized PnL 10.0000" in text
    assert "gateway: quantity N exceeds max_order_qty N (103=3)" in text
    assert "  v1     ack   5   2.00   7.00   7.00   7.00" in text


def test_times_on_the_command_line() -> None:
    assert parse_when("2026-01-01") == T0
    assert parse_when("2026-01-01T00:00:01Z") == T0 + S
    assert parse_when("2026-01-01T01:00:00+01:00") == T0
    assert parse_when("20260101-00:00:00.5") == T0 + S // 2
    assert parse_when("2026-01-01 00:00:00.000001") == T0 + 1000
    for bad in ("yesterday", "20260101-00:00:00.x", ""):
        with pytest.raises(ValueError, match="not a time"):
            parse_when(bad)
