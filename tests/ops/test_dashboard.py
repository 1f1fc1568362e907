"""The dashboard in a real browser: Debian's headless Chromium driven by selenium through
chromedriver, against a gateway on a loopback port. The page asks for the token, then shows the
sessions, open orders, recent fills and venues live, and engages the kill switch after a
confirmation; the client gets its Canceled report with the reason. A screenshot is saved
(``FIXGW_SCREENSHOT=path`` also copies it there: ``docs/dashboard.png`` in the README).

Skipped, saying why, when Chromium or chromedriver is missing (``scripts/setup.sh --dev``
installs them as root); with ``REQUIRE_BROWSER=1`` (CI) that fails instead."""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from orders.support import resting, running, session, sid
from server.harness import run

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
TOKEN_ENV = "FIXGW_TEST_ADMIN_TOKEN"
TOKEN = "d4shboard-t0ken"


def _browser_or_skip() -> None:
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not os.access(p, os.X_OK)]
    if not missing:
        return
    why = (f"no {' or '.join(missing)}: apt-get install chromium chromium-driver "
           "(scripts/setup.sh --dev does as root)")
    if os.environ.get("REQUIRE_BROWSER") == "1":
        pytest.fail(f"REQUIRE_BROWSER=1: {why}")
    pytest.skip(why)


@pytest.fixture
def browser() -> Iterator[Any]:
    _browser_or_skip()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="fixgw-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                 f"--user-data-dir={profile}", "--window-size=1440,1000"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(autouse=True)
def _token(monkeypatch: pytest.MonkeyPatch) -> None:
    from orders.test_exchange_venues import CREDS

    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    monkeypatch.setenv("E2E_API_KEY", CREDS.api_key)  # the Binance emulator's venue
    monkeypatch.setenv("E2E_API_SECRET", CREDS.secret)


def test_the_dashboard_live_in_chromium(tmp_path: Path, browser: Any) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    driver = browser

    def wait_for(cond: Any, what: str, within: float = 10.0) -> Any:
        return WebDriverWait(driver, within, poll_frequency=0.1).until(cond, what)

    def text(css: str) -> str:
        return str(driver.find_element(By.CSS_SELECTOR, css).text)

    async def body() -> None:
        from orders.test_exchange_venues import emulated, venue_entry

        admin = {"host": "127.0.0.1", "port": 0, "token_env": TOKEN_ENV}
        both = {"venues": ["paper", "binance"]}
        sessions = [session("CLIENT1", **both), session("CLIENT50", "FIXT.1.1", **both)]
        async with emulated("binance") as emu, running(
                tmp_path, sessions, [{"name": "paper", "tick_interval": 3600},
                                     venue_entry("binance", emu)], admin=admin) as r:
            c = await r.client()
            await resting(c, "rest-1", "rest-2")
            await c.order("mkt", ord_type="1", qty="0.01")
            await c.er(t11="mkt", t39="0")
            await c.er(t11="mkt", t39="2")
            host, port = r.gw.admin_address  # type: ignore[misc]
            url = f"http://{host}:{port}/dashboard"

            def sign_in_and_look() -> None:
                driver.get(url)
                assert driver.find_element(By.ID, "login").is_displayed()
                assert not driver.find_element(By.ID, "app").is_displayed()
                driver.find_element(By.ID, "token").send_keys("wrong")
                driver.find_element(By.ID, "sign-in").click()
                wait_for(lambda d: "refused" in text("#error"), "the wrong token refused")
                box = driver.find_element(By.ID, "token")
                box.clear()
                box.send_keys(TOKEN)
                driver.find_element(By.ID, "sign-in").click()
                wait_for(lambda d: d.find_element(By.ID, "app").is_displayed(), "signed in")
                wait_for(lambda d: "logged on" in text("#sessions tbody"), "CLIENT1 logged on")
                rows = driver.find_elements(By.CSS_SELECTOR, "#sessions tbody tr")
                assert len(rows) == 2, [r.text for r in rows]  # CLIENT50 too, logged off
                assert any("CLIENT50" in r.text and "logged off" in r.text for r in rows)
                wait_for(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#orders tbody tr")) == 2,
                         "two open orders")
                assert "rest-1" in text("#orders tbody") and "90000" in text("#orders tbody")
                assert "0.01" in text("#fills tbody") and "paper" in text("#fills tbody")
                venues = driver.find_elements(By.CSS_SELECTOR, "#venues tbody tr")
                assert [v.text.split()[0] for v in venues] == ["binance", "paper"]
                assert "connected" in venues[0].text and "orders_10s 0/100" in venues[0].text \
                    and "weight " in venues[0].text, \
                    venues[0].text  # its stream, and its request-rate windows' use
                assert all(" up " in v.text for v in venues), [v.text for v in venues]
                assert text("#overall") == "ok" and text("#store") == "store up"
                assert "released" in text("#kill-state")
                driver.save_screenshot(str(tmp_path / "dashboard.png"))

            await asyncio.to_thread(sign_in_and_look)  # (the gateway's loop goes on)
            # live: a new order shows up without a reload
            await resting(c, "rest-3")

            def sees_the_new_order_then_kills() -> None:
                wait_for(lambda d: "rest-3" in text("#orders tbody"), "the new order, live")
                Select(driver.find_element(By.ID, "kill-scope")).select_by_value(sid())
                driver.find_element(By.ID, "kill-reason").send_keys("desk limit")
                driver.find_element(By.ID, "kill-engage").click()
                assert driver.find_element(By.ID, "confirm").is_displayed()
                assert "Engage the kill switch of " + sid() in text("#confirm-text")
                driver.find_element(By.ID, "confirm-yes").click()
                wait_for(lambda d: "ENGAGED" in text("#kill-state"), "the kill switch shown")
                assert "desk limit" in text("#kill-state")

            await asyncio.to_thread(sees_the_new_order_then_kills)  # (the gateway's loop goes on)
            done = [await c.er(t39="4") for _ in range(3)]
            assert all(m[58].startswith("kill switch: desk limit") for m in done), done
            assert r.orders.kill_switches() == {sid(): "desk limit"}

            def release() -> None:
                wait_for(lambda d: not d.find_elements(By.CSS_SELECTOR, "#orders tbody tr"),
                         "no open order left")
                driver.find_element(By.CSS_SELECTOR, "#kill-state button.release").click()
                driver.find_element(By.ID, "confirm-yes").click()
                wait_for(lambda d: "released" in text("#kill-state"), "released")

            await asyncio.to_thread(release)  # (the gateway's loop goes on)
            assert r.orders.kill_switches() == {}
    run(body())
    shot = tmp_path / "dashboard.png"
    assert shot.stat().st_size > 10_000
    target = os.environ.get("FIXGW_SCREENSHOT")
    if target:
        shutil.copyfile(shot, target)
