"""``fixgw report --html`` opened in a real headless Chromium (tests/audit/browser.py): the
totals, both charts, the rows, each venue's latency histograms, the reject reasons and the
orders are there and drawn; nothing is loaded from outside; a screenshot is saved (its path
printed)."""

from __future__ import annotations

from pathlib import Path

import pytest
from audit.browser import browser, require_browser
from server.harness import run

from .flow import report as fixgw_report
from .test_report_flow import flow

pytestmark = pytest.mark.timeout(180)


def test_the_html_report_in_a_browser(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    require_browser()
    url = f"sqlite:///{tmp_path / 'fixgw.db'}"
    facts = flow(tmp_path, url, monkeypatch)
    report = tmp_path / "report.html"
    assert fixgw_report("--store", url, "--html", report)[0] == 0
    shot = tmp_path / "report.png"

    async def look() -> dict[str, object]:
        async with browser(tmp_path) as page:
            await page.open(report.as_uri())
            found = await page.js("""(() => {
                const box = id => { const r = document.getElementById(id)
                    .getBoundingClientRect(); return [r.width, r.height]; };
                const text = id => document.querySelector('#' + id + ' .value').textContent;
                return {
                    title: document.title,
                    orders: text('card-orders'),
                    fills: text('card-fills'),
                    slipArrival: text('card-slip-arrival'),
                    volumeBars: document.querySelectorAll('#chart-volume rect.bar').length,
                    volumeBox: box('chart-volume'),
                    points: document.querySelectorAll('#chart-slippage .point').length,
                    rows: [...document.querySelectorAll('tr.row')].map(r => r.dataset.key),
                    total: document.querySelectorAll('tr.total').length,
                    latency: [...document.querySelectorAll('tr.latency')].map(
                        r => r.dataset.venue + ':' + r.dataset.kind + ':'
                             + r.children[1].textContent),
                    ackBars: document.querySelectorAll('#hist-ack-paper rect.bar').length,
                    fillBars: document.querySelectorAll('#hist-fill-paper rect.bar').length,
                    rejects: [...document.querySelectorAll('tr.reject')].map(
                        r => r.textContent),
                    orderRows: document.querySelectorAll('tr.order').length,
                    outcomes: [...document.querySelectorAll('tr.order')].map(
                        r => r.dataset.outcome),
                    externals: [...document.querySelectorAll(
                        'link[href],script,img[src],iframe')].length,
                    overflowX: document.documentElement.scrollWidth
                        > document.documentElement.clientWidth + 1,
                };
            })()""")
            await page.screenshot(shot)
            return dict(found)

    found = run(look(), 90)
    print(f"screenshot: {shot}")
    assert shot.stat().st_size > 20_000
    assert found["title"] == "fixgw report"
    assert found["orders"] == "6" and int(str(found["fills"])) >= 5
    assert str(found["slipArrival"]).endswith(" bp") and found["slipArrival"] != "- bp"
    assert int(str(found["volumeBars"])) >= 1
    width, height = found["volumeBox"]  # type: ignore[misc]
    assert width > 300 and height > 150  # drawn, at a readable size
    # four orders with an arrival mid (b1, s1, b2, rest), and those with the market's VWAP
    assert found["points"] == 4 + len(facts.market_vwap)
    assert found["rows"] == ["ACC1|paper|BTC/USDT", "ACC2|paper|BTC/USDT"]
    assert found["total"] == 1
    assert found["latency"] == ["paper:ack:5", "paper:fill:5"]
    assert int(str(found["ackBars"])) >= 1 and int(str(found["fillBars"])) >= 1
    assert len(found["rejects"]) == 1 and "max_order_qty" in str(found["rejects"])  # type: ignore[arg-type]
    assert found["orderRows"] == 6 and "rejected" in found["outcomes"]  # type: ignore[operator]
    assert found["externals"] == 0  # self-contained
    assert found["overflowX"] is False
