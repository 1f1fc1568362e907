"""``fixgw report`` on the store of a real gateway flow (tests/analytics/flow.py), SQLite and
PostgreSQL: every figure checked against what the client was told, what the venue's book was
at each arrival, the public trades the feed counted and the gateway's own positions; the
command line's outputs and exit codes."""

from __future__ import annotations

import json
import time
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import pytest
from server.harness import run

from gateway.analytics.report import Report, build_report
from gateway.store.reportview import StoreReportView
from gateway.store.store import SessionStore

from .flow import Facts, make_flow, report

D = Decimal
BP = D(10_000)
pytestmark = pytest.mark.timeout(180)


def flow(tmp_path: Path, url: str, mp: pytest.MonkeyPatch) -> Facts:
    async def body() -> Facts:
        store = SessionStore(url)
        await store.start()
        try:
            return await make_flow(tmp_path, store, mp)
        finally:
            await store.close()

    return run(body(), 120)


def check(rep: Report, facts: Facts) -> None:
    by_cl = {o.cl_ord_id: o for o in rep.orders}
    assert set(by_cl) == {"first", "b1", "s1", "b2", "big", "rest"}
    last = {m[11]: m for m in facts.reports}
    last["rest"] = next(m for m in reversed(facts.reports) if m[37] == by_cl["rest"].order_id)
    # arrival mid: none for the first order of the instrument (its book was not watched yet),
    # the venue's mid as the test saw it for the others
    assert by_cl["first"].arrival_mid is None and by_cl["first"].slip_arrival_bp is None
    for cl in ("b1", "s1", "b2", "rest"):
        o = by_cl[cl]
        assert o.arrival_mid == facts.arrival_mid[cl], cl
        avg = D(last[cl][6])
        assert o.avg_px == avg
        sign = 1 if last[cl][54] == "1" else -1
        assert o.slip_arrival_bp == sign * (avg - o.arrival_mid) / o.arrival_mid * BP, cl
    # the market's VWAP over each order's life: the public trades the feed had counted by its
    # end (the resting order's, the market's trades; a marketable order's, its own fills when
    # the feed had told them before its end was recorded)
    assert "rest" in facts.market_vwap
    for o in rep.orders:
        assert o.market_vwap == facts.market_vwap.get(o.cl_ord_id), o.cl_ord_id
        if o.market_vwap is not None:
            assert o.slip_vwap_bp == (o.avg_px - o.market_vwap) / o.market_vwap * BP * (
                1 if o.side.value == "buy" else -1)
    assert by_cl["big"].outcome == "rejected" and by_cl["big"].slip_arrival_bp is None
    # fills, volume, notional, fees per account: as the client was told
    told: dict[str, dict[str, object]] = defaultdict(lambda: {
        "fills": 0, "volume": D(0), "notional": D(0), "fees": defaultdict(lambda: D(0))})
    for m in facts.reports:
        if m[150] == "F":
            t = told[m[1]]
            t["fills"] += 1  # type: ignore[operator]
            t["volume"] += D(m[32])  # type: ignore[operator]
            t["notional"] += D(m[32]) * D(m[31])  # type: ignore[operator]
            t["fees"][m[479]] += D(m[12])  # type: ignore[index]
    rows = {r.account: r for r in rep.rows}
    assert set(rows) == {"ACC1", "ACC2"} and all(r.venue == "paper" for r in rep.rows)
    for account, t in told.items():
        r = rows[account]
        assert (r.fills, r.volume, r.notional) == (t["fills"], t["volume"], t["notional"])
        assert r.fees == dict(t["fees"])  # type: ignore[call-overload]
    assert rep.totals.realized == facts.realized != 0
    assert dict(rows["ACC1"].rejects) == {
        "gateway: risk: quantity N exceeds max_order_qty N (103=3)": 1}, rows["ACC1"].rejects
    ordered = sum((o.quantity for o in rep.orders if o.outcome != "rejected"), D(0))
    filled = sum((o.cum_qty for o in rep.orders), D(0))
    assert rep.totals.fill_rate == filled / ordered
    # latency: every order that reached the venue was acknowledged; the filled ones filled
    (paper,) = rep.latency
    assert paper.venue == "paper" and len(paper.ack_ms) == facts.venue_orders == 5
    assert len(paper.fill_ms) == 5 and all(x >= 0 for x in paper.ack_ms + paper.fill_ms)
    assert sum(sum(b.notional.values(), D(0)) for b in rep.buckets) == rep.totals.notional


def test_report_of_a_gateway_flow(
    tmp_path: Path, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    facts = flow(tmp_path, store_url, monkeypatch)
    source = StoreReportView(store_url)
    try:
        now = time.time_ns()
        rep = build_report(source, 0, now, now)
    finally:
        source.close()
    check(rep, facts)
    out_json, out_html = tmp_path / "report.json", tmp_path / "report.html"
    code, printed, _ = report("--store", store_url, "--json", out_json, "--html", out_html)
    assert code == 0
    assert printed.startswith("fixgw report: ") and "ACC1" in printed and "paper" in printed
    doc = json.loads(out_json.read_text())
    assert doc["totals"]["fills"] == rep.totals.fills
    assert D(doc["totals"]["realized_pnl"]) == facts.realized
    assert {o["cl_ord_id"] for o in doc["orders"]} == {o.cl_ord_id for o in rep.orders}
    html = out_html.read_text()
    assert html.startswith("<!DOCTYPE html>") and "<svg" in html
    # a range that leaves everything out
    code, printed, _ = report("--store", store_url, "--until", "2000-01-01")
    assert code == 0 and "no orders or fills in this range" in printed


def test_bad_usage(tmp_path: Path) -> None:
    missing = f"sqlite:///{tmp_path / 'none.db'}"
    code, _, err = report("--store", missing)
    assert code == 2 and "no such database file" in err
    code, _, err = report("--store", missing, "--since", "last week")
    assert code == 2 and "not a time" in err
    code, _, err = report("--store", missing, "--since", "2026-01-02", "--until", "2026-01-01")
    assert code == 2 and "--until must be after --since" in err
