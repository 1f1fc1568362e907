"""The ``--html`` report opened in a real headless Chromium: its elements checked, a screenshot
saved under the test's tmp dir (the path is printed)."""

from __future__ import annotations

from pathlib import Path

import pytest
from server.harness import run

from .browser import browser, require_browser
from .support import Flow, audit, find, lines_of, make_flow

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def flow(tmp_path_factory: pytest.TempPathFactory) -> Flow:
    return make_flow(tmp_path_factory.mktemp("flow"))


def test_the_html_report_in_a_browser(flow: Flow, tmp_path: Path) -> None:
    require_browser()
    logs = tmp_path / "log"
    logs.mkdir()
    (logs / flow.fixt.name).write_bytes(flow.fixt.read_bytes())
    lines = lines_of(flow.fix44)
    del lines[find(lines, (35, b"9"), (11, b"B2"))]  # a cancel never answered
    (logs / flow.fix44.name).write_bytes(b"".join(lines))
    report = tmp_path / "audit.html"
    code, out, err = audit(logs, "--html", report)
    assert code == 1, out + err
    shot = tmp_path / "audit.png"

    async def look() -> dict[str, object]:
        async with browser(tmp_path) as page:
            await page.open(report.as_uri())
            found = await page.js("""(() => ({
                title: document.title,
                verdict: document.getElementById('summary-verdict').textContent,
                kinds: [...document.querySelectorAll('tr.kind-count')].map(
                    r => r.dataset.kind),
                orders: document.querySelectorAll('article.order').length,
                flagged: document.querySelectorAll('article.order.has-findings').length,
                flaggedMessages: document.querySelectorAll('li.msg.flagged').length,
                directions: [...new Set([...document.querySelectorAll('li.msg')].map(
                    m => m.classList.contains('out') ? 'out' : 'in'))].sort(),
                rejected: document.querySelectorAll('#events li.event-logon-rejected').length,
                sessions: document.querySelectorAll('tr.session').length,
                fieldNames: [...document.querySelectorAll('table.fields td:nth-child(2)')]
                    .map(td => td.textContent).filter(n => n === 'OrdStatus').length,
                externals: [...document.querySelectorAll('link[href],script[src],img[src]')]
                    .length,
                visibleBefore: [...document.querySelectorAll('article.order')]
                    .filter(a => a.offsetParent !== null).length,
            }))()""")
            await page.screenshot(shot)
            await page.js("document.getElementById('only-findings').click()")
            found["visibleAfter"] = await page.js(
                "[...document.querySelectorAll('article.order')]"
                ".filter(a => a.offsetParent !== null).length")
            return dict(found)

    found = run(look(), 90)
    print(f"screenshot: {shot}")
    assert shot.stat().st_size > 10_000
    assert found["title"] == "fixgw audit"
    assert "2 findings" in str(found["verdict"])  # the cancel, and the gap it leaves
    assert found["kinds"] == ["sequence-gap", "cancel-unanswered"]
    assert found["orders"] == 12 and found["flagged"] == 1
    assert found["flaggedMessages"] == 1  # the OrderCancelRequest that got no answer
    assert found["directions"] == ["in", "out"]
    assert found["rejected"] == 1 and found["sessions"] == 2
    assert found["fieldNames"] > 20  # every ExecutionReport's fields are named
    assert found["externals"] == 0  # self-contained
    assert found["visibleBefore"] == 12 and found["visibleAfter"] == 1
