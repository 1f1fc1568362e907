"""Alerts: an ERROR line and a JSON POST (Slack-compatible) to a webhook, here a receiver on a
loopback port the test starts and stops; each alert said once while it fires, and its end."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from orders.support import OrderClient, config, resting, session, sid
from server.harness import run

from gateway.app import Gateway, build_gateway
from gateway.config import AlertsConfig
from gateway.store.records import PositionAdjustment
from gateway.store.store import SessionStore

from .test_admin_ops import call

TOKEN_ENV = "FIXGW_TEST_ADMIN_TOKEN"


@pytest.fixture(autouse=True)
def _token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TOKEN_ENV, "0ps-t0ken")


@asynccontextmanager
async def receiver(answers: Callable[[dict[str, Any]], web.Response] | None = None
                   ) -> AsyncIterator[tuple[str, asyncio.Queue[dict[str, Any]]]]:
    """A webhook on a free loopback port: what it is POSTed, in a queue (every POST, taken or
    not); ``answers`` gives the answer to each (by default 200)."""
    got: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def hook(request: web.Request) -> web.Response:
        payload = await request.json()
        got.put_nowait(payload)
        return web.json_response({"ok": True}) if answers is None else answers(payload)

    app = web.Application()
    app.router.add_post("/hooks/T0/B0/secret", hook)
    runner = web.AppRunner(app, access_log=None)  # (its own log would show the URL)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]  # noqa: SLF001
    try:
        yield f"http://127.0.0.1:{port}/hooks/T0/B0/secret", got
    finally:
        await runner.cleanup()


_skipped: list[dict[str, Any]] = []


async def next_alert(got: asyncio.Queue[dict[str, Any]], key: str) -> dict[str, Any]:
    """The next alert of ``key`` the webhook received (those of other keys kept, in order)."""
    for a in _skipped:
        if a["alert"] == key:
            _skipped.remove(a)
            return a
    while True:
        a = await asyncio.wait_for(got.get(), 5)
        if a["alert"] == key:
            return a
        _skipped.append(a)


def test_alerts_reach_the_webhook_once_and_their_end_too(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)

    async def body() -> None:
        store = SessionStore(f"sqlite:///{tmp_path / 'fixgw.db'}")
        await store.start()
        async with receiver() as (url, got):
            cfg = config([session("CLIENT1")], admin={"host": "127.0.0.1", "port": 0,
                                                      "token_env": TOKEN_ENV})
            cfg = cfg.model_copy(update={"alerts": AlertsConfig(
                webhooks=[url], reject_rate=2, latency=0.000001, repeat_after=600)})
            gw: Gateway = build_gateway(cfg, store)
            host, port = await gw.start()
            monitor = gw.alerts
            assert monitor is not None
            try:
                c = await OrderClient.connect(host, port, sender="CLIENT1")
                await c.logon(reset=True)
                # the kill switch: engaged, then released
                await resting(c, "a")
                await call(gw, "POST", "/kill-switch", {"scope": sid(), "engaged": True,
                                                        "reason": "desk limit"})
                await c.er(t11="a", t39="4")
                monitor.check()
                a = await next_alert(got, f"kill-switch:{sid()}")
                assert a["state"] == "firing" and "engaged: desk limit" in a["text"], a
                assert a["text"].startswith(":rotating_light: fixgw ")
                await call(gw, "POST", "/kill-switch", {"scope": sid(), "engaged": False,
                                                        "reason": "limit raised"})
                monitor.check()
                a = await next_alert(got, f"kill-switch:{sid()}")
                assert a["state"] == "resolved"
                # latency over the threshold (a venue call took more than a microsecond)
                monitor.check()
                a = await next_alert(got, "latency:place")
                assert a["state"] == "firing" and "at paper" in a["text"], a
                # rejects over 2 a minute: one alert, however often it is looked at
                for i in range(3):
                    await c.cancel(f"x{i}", "never")
                    await c.expect("9", t11=f"x{i}")
                monitor.check()
                a = await next_alert(got, f"rejects:{sid()}")
                assert "3 rejects in the last minute" in a["text"], a
                sent = monitor.alerts.sent
                monitor.check()
                await monitor.alerts.flush()
                assert monitor.alerts.sent == sent  # (latency: nothing new was timed)
                # the venue down, then up
                gw.orders.connectors["paper"].update_faults(unavailable=True)  # type: ignore
                await monitor.venues.refresh()
                a = await next_alert(got, "venue:paper")
                assert a["state"] == "firing" and "venue paper is down" in a["text"], a
                gw.orders.connectors["paper"].update_faults(unavailable=False)  # type: ignore
                await monitor.venues.refresh()
                assert (await next_alert(got, "venue:paper"))["state"] == "resolved"
                # the session dropped without a Logout; back again
                await c.close()
                a = await next_alert(got, f"session:{sid()}")
                assert a["state"] == "firing" and "dropped without a Logout" in a["text"]
                c = await OrderClient.connect(host, port, sender="CLIENT1")
                await c.logon(reset=True)
                assert (await next_alert(got, f"session:{sid()}"))["state"] == "resolved"
                await c.close()
                # the store, and a position the venue holds otherwise
                monitor.store_changed(False, "disk full")
                a = await next_alert(got, "store")
                assert "the store is unavailable: disk full" in a["text"]
                monitor.position_adjusted(PositionAdjustment(
                    "paper", "BTC/USDT:USDT", 1, Decimal("1"), Decimal("1.5"), Decimal("0.5"),
                    "venue"))
                a = await next_alert(got, "reconcile:paper:BTC/USDT:USDT")
                assert "the venue holds 1.5, the fills made 1" in a["text"], a
            finally:
                await gw.stop()
                await store.close()
            left = [got.get_nowait() for _ in range(got.qsize())] + _skipped
            # what else fired: the other latencies, the sessions ended by the stop
            assert {a["alert"] for a in left} <= {"latency:order_to_venue", "latency:report",
                                                  f"session:{sid()}"}, left
    run(body())
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR
              and r.name == "fixgw.alerts"]
    assert any(m.startswith(f"ALERT kill-switch:{sid()}: kill switch") for m in errors), errors
    said = "\n".join(r.getMessage() for r in caplog.records)
    assert "/hooks/T0/B0/secret" not in said  # a webhook's URL is its secret


def test_a_failing_webhook_is_logged_without_its_address(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    async def body() -> None:
        from gateway.admin.alerts import Alerts
        alerts = Alerts(["http://127.0.0.1:1/hooks/secret-path"], timeout=2, retry_for=0)
        assert alerts.fire("k", "something")
        assert not alerts.fire("k", "something")  # deduplicated
        await alerts.flush()
        assert (alerts.sent, alerts.failed) == (0, 1)
        assert alerts.resolve("k", "over") and not alerts.resolve("k", "over")
        await alerts.close()
    caplog.set_level(logging.WARNING)
    run(body())
    said = "\n".join(r.getMessage() for r in caplog.records)
    assert "alert webhook at 127.0.0.1 failed" in said and "secret-path" not in said


def _drain(got: asyncio.Queue[dict[str, Any]]) -> list[tuple[str, str]]:
    out = []
    while not got.empty():
        a = got.get_nowait()
        out.append((a["alert"], a["state"]))
    return out


def test_a_webhook_that_fails_for_a_while_is_asked_again_and_keeps_the_order(
        caplog: pytest.LogCaptureFixture) -> None:
    """503, then 429 (Retry-After 0.05 s, longer than the backoff's 0.02), then taken: the
    first alert is asked three times, the second waits behind it and is told after it."""
    script = [web.Response(status=503),
              web.Response(status=429, headers={"Retry-After": "0.05"})]

    def answers(payload: dict[str, Any]) -> web.Response:
        return script.pop(0) if script else web.json_response({"ok": True})

    async def body() -> None:
        from gateway.admin.alerts import Alerts
        async with receiver(answers) as (url, got):
            alerts = Alerts([url], retry_first=0.01)
            assert alerts.fire("venue:a", "venue a is down")
            assert alerts.resolve("venue:a", "venue a is up again")
            await alerts.flush()
            assert _drain(got) == [("venue:a", "firing")] * 3 + [("venue:a", "resolved")]
            assert (alerts.sent, alerts.retried, alerts.failed) == (2, 2, 0)
            await alerts.close()
    caplog.set_level(logging.DEBUG, logger="fixgw.alerts")
    run(body())
    said = [(r.levelno, r.getMessage()) for r in caplog.records
            if r.getMessage().startswith("alert webhook")]
    # the alert's first failure a WARNING, the next at DEBUG; the URL's path never
    assert said == [
        (logging.WARNING, "alert webhook at 127.0.0.1 answered 503: venue:a (firing) asked "
                          "again in 0.01 s"),
        (logging.DEBUG, "alert webhook at 127.0.0.1 answered 429: venue:a (firing) asked "
                        "again in 0.05 s")], said


def test_a_webhook_is_given_up_after_retry_for_or_at_once_when_it_refuses_for_good(
        caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]

    def unavailable(payload: dict[str, Any]) -> web.Response:
        now[0] += 10.0  # each try takes 10 s of the alerts' clock
        return web.Response(status=503 if payload["alert"] == "down" else 404)

    async def body() -> None:
        from gateway.admin.alerts import Alerts
        async with receiver(unavailable) as (url, got):
            alerts = Alerts([url], retry_first=0.01, retry_for=20.005, clock=lambda: now[0])
            # tried at 0 (failed at 10: the next would be at 10.01, within 20.005 s) and at 10
            # (failed at 20: the next would be at 20.02, past it): given up after 2 tries
            alerts.fire("down", "x")
            alerts.fire("refused", "y")  # 404: the URL is wrong, asking again would not help
            await alerts.flush()
            assert _drain(got) == [("down", "firing")] * 2 + [("refused", "firing")]
            assert (alerts.sent, alerts.retried, alerts.failed) == (0, 1, 2)
            await alerts.close()
    caplog.set_level(logging.WARNING, logger="fixgw.alerts")
    run(body())
    said = "\n".join(r.getMessage() for r in caplog.records)
    assert "answered 503: down (firing) given up after 2 tries" in said, said
    assert "answered 404: refused (firing) given up" in said, said


def test_alerts_waiting_for_a_webhook_are_bounded_the_oldest_dropped(
        caplog: pytest.LogCaptureFixture) -> None:
    async def body() -> None:
        from gateway.admin.alerts import Alerts
        async with receiver() as (url, got):
            alerts = Alerts([url], max_waiting=2)
            for key in ("a", "b", "c", "d"):  # said before the webhook's task first runs
                alerts.fire(key, key)
            await alerts.flush()
            # "a" is being told; "b", then "c" are the oldest waiting behind it
            assert _drain(got) == [("a", "firing"), ("d", "firing")]
            assert (alerts.sent, alerts.dropped) == (2, 2)
            await alerts.close()
    caplog.set_level(logging.WARNING, logger="fixgw.alerts")
    run(body())
    said = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert said == ["alert webhook at 127.0.0.1: 2 alerts waiting; b (firing) dropped unsent",
                    "alert webhook at 127.0.0.1: 2 alerts waiting; c (firing) dropped unsent"]


def test_an_unforeseen_failure_gives_the_alert_up_and_the_next_is_told(
        caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    async def body() -> None:
        from gateway.admin import alerts as module
        async with receiver() as (url, got):
            alerts = module.Alerts([url])
            post = alerts.http().post
            calls = [0]

            def flaky(*a: Any, **k: Any) -> Any:
                calls[0] += 1
                if calls[0] == 1:
                    raise RuntimeError(f"broken at {url}")
                return post(*a, **k)

            monkeypatch.setattr(alerts.http(), "post", flaky)
            alerts.fire("a", "a")
            alerts.fire("b", "b")
            await alerts.flush()
            assert _drain(got) == [("b", "firing")]
            assert (alerts.sent, alerts.failed) == (1, 1)
            await alerts.close()
        with pytest.raises(ValueError, match="max_waiting"):
            module.Alerts([url], max_waiting=0)
    caplog.set_level(logging.WARNING, logger="fixgw.alerts")
    run(body())
    said = "\n".join(r.getMessage() for r in caplog.records)
    assert "failed unexpectedly (RuntimeError): a (firing) given up" in said, said
    assert "/hooks/" not in said


def test_a_stop_gives_what_waits_one_more_try(caplog: pytest.LogCaptureFixture) -> None:
    async def body() -> None:
        from gateway.admin.alerts import Alerts
        async with receiver(lambda payload: web.Response(status=502)) as (url, got):
            alerts = Alerts([url], retry_first=600, timeout=5)  # the next try in 30 s
            alerts.fire("k", "x")
            assert (await asyncio.wait_for(got.get(), 5))["alert"] == "k"
            # close() wakes the wait: one more try, then given up (unwoken, the wait would
            # outlast close()'s timeout and the alert be abandoned untried)
            await alerts.close()
            assert _drain(got) == [("k", "firing")]
            assert (alerts.sent, alerts.retried, alerts.failed) == (0, 1, 1)
    caplog.set_level(logging.WARNING, logger="fixgw.alerts")
    run(body())
    said = "\n".join(r.getMessage() for r in caplog.records)
    assert "k (firing) given up after 2 tries (stopping)" in said, said


def test_an_alert_webhook_must_be_an_http_url(tmp_path: Path) -> None:
    from gateway.config import ConfigError, load_config

    bad = tmp_path / "bad-alerts.toml"
    bad.write_text('[alerts]\nwebhooks = ["hooks.slack.com/x"]\n')
    with pytest.raises(ConfigError, match="alerts.webhooks"):
        load_config(bad)
