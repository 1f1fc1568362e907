"""Operations under misuse and load: what an operator or a client types cannot reach the wire or
the log as something else (control characters), a request about an unknown order costs an index
lookup, not a scan on the store's writer, a sequence number is checked before it is stored and
set only once stored, a session another node serves is not changed here, the hot path splits no
report it does not have to, the metrics' labels are bounded and every venue call is timed, a
venue's health and the alerts follow what happens (a single failure expires, a flap is said
once), and the event stream refuses what it cannot honour."""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson
import pytest
from orders.support import resting, running
from server.harness import run
from sqlalchemy import create_engine, insert

from gateway.orders.model import order_to_json
from gateway.store.errors import StoreUnavailable
from gateway.store.records import Commit
from gateway.store.schema import order_events
from gateway.store.store import SessionStore

from .test_admin_ops import ADMIN, S1, S50, SESSIONS, TOKEN, TOKEN_ENV, call, metric


@pytest.fixture(autouse=True)
def _token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TOKEN_ENV, TOKEN)


# --- a request about an order the gateway never had ------------------------------------------


def test_a_cancel_of_an_unknown_clordid_does_not_stall_every_sessions_commits(
        store_url: str) -> None:
    """A cancel naming a ClOrdID the session never used is looked up among its past ClOrdIDs
    (too late to cancel, or unknown) on the store's writer thread, the one that commits every
    session's reports: by an index, so a commit queued behind it waits for no scan of a busy
    session's day (100,000 events). A client can send such cancels at will."""
    from store.test_orders_store import SID, order

    url = store_url

    async def body() -> None:
        async with SessionStore(url):
            pass  # the schema
        engine = create_engine(url)
        rows = []
        for i in range(100_000):  # a busy session's day: 25,000 orders, 4 events each
            oid = str(i // 4 + 1)
            if i % 4 == 0:
                kind = "created"
                data: dict[str, Any] = {"order": order_to_json(order(oid, cl_ord_id=f"C{i}"))}
            else:
                kind, data = "accepted", {"venue_order_id": f"V{i}", "status": "new"}
            rows.append({"event_id": i + 1, "order_id": oid, "session_id": SID, "kind": kind,
                         "ts_ns": i, "exec_id": None, "data": orjson.dumps(data).decode(),
                         "cl_ord_id": f"C{i}" if kind == "created" else None})
        with engine.begin() as conn:
            conn.execute(insert(order_events), rows)
        engine.dispose()
        async with SessionStore(url) as store:
            await store.find_order_by_past_cl(SID, "warm-up")
            alone, behind = [], []
            for n in range(3):  # (the best of three each: the machine's noise is not the store's)
                t0 = time.perf_counter()
                await store.commit(Commit("FIX.4.4:GW->OTHER", next_sender=2 + 2 * n,
                                          next_target=2))
                alone.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                scan = asyncio.ensure_future(store.find_order_by_past_cl(SID, "never-had-it"))
                await asyncio.sleep(0)
                # another session's report, committed behind the cancel's lookup
                await store.commit(Commit("FIX.4.4:GW->OTHER", next_sender=3 + 2 * n,
                                          next_target=2))
                behind.append(time.perf_counter() - t0)
                assert await scan is None
        # a scan of the day's events made it wait 95-150 ms; an indexed lookup, a few ms at most
        extra = min(behind) - min(alone)
        assert extra < 0.03, (f"another session's commit waited {extra * 1000:.0f} ms more "
                              f"behind the lookup ({min(behind) * 1000:.0f} vs "
                              f"{min(alone) * 1000:.0f} ms)")

    asyncio.run(body())


def test_a_cancel_naming_a_clordid_never_used_is_unknown_whatever_its_case(
        tmp_path: Path) -> None:
    """ClOrdIDs are case-sensitive (FIX): a cancel of "ABC" is not "too late" with the OrderID
    of "abc" (the default store, SQLite, compared them as its LIKE does: ignoring case)."""

    async def body() -> None:
        async with running(tmp_path) as r:
            c = await r.client()
            await resting(c, "abc")
            await c.cancel("abc2", "abc")
            await c.er(t11="abc2", t39="6")
            await c.er(t11="abc2", t39="4")
            await c.cancel("q", "abc")  # used by this client: too late
            m = await c.expect("9", t11="q")
            assert (m[102], m[37]) == ("0", "1"), str(m)
            await c.cancel("q2", "ABC")  # never used by this client
            m = await c.expect("9", t11="q2")
        assert (m[102], m[37]) == ("1", "NONE"), str(m)

    run(body())


# --- an operator's reason becomes the client's Text (58) ---------------------------------------


def test_an_admin_reason_cannot_inject_fields_into_the_clients_messages(tmp_path: Path) -> None:
    """The kill switch's reason (and an operator cancel's, a logout's) becomes Text (58) of
    what the client receives; a JSON "\\u0001" in it would be a field separator on the wire: a
    reason with a control character is refused."""

    async def body() -> None:
        async with running(tmp_path, SESSIONS, admin=ADMIN) as r:
            c = await r.client()
            await resting(c, "a")
            status, answer = await call(r.gw, "POST", "/kill-switch", {
                "scope": S1, "engaged": True, "reason": "limit\u000158=spoofed\u000139=2"})
            assert status == 400 and "control characters" in answer["error"], answer
            assert r.orders.kill_switches() == {}
            status, _ = await call(r.gw, "POST", "/kill-switch", {
                "scope": S1, "engaged": True, "reason": "limit\n  breached"})
            assert status == 200
            raw = (await c.recv_type("8")).raw
            assert b"\x0158=kill switch: limit breached\x01" in raw, raw

    run(body())


def test_an_operator_cancel_reason_cannot_inject_fields(tmp_path: Path) -> None:
    async def body() -> None:
        async with running(tmp_path, SESSIONS, admin=ADMIN) as r:
            c = await r.client()
            await resting(c, "a")
            order_id = next(iter(r.orders.book.orders))
            for path, body in ((f"/orders/{order_id}/cancel", {}),
                               (f"/sessions/{quote(S1, safe='')}/logout", {}),
                               ("/orders/cancel", {"all": True, "confirm": 1})):
                status, _ = await call(r.gw, "POST", path, {**body, "reason": "fat\u00019999=x"})
                assert status == 400, path
            assert r.orders.book.orders[order_id].is_open

    run(body())


# --- metrics: labels and timings ------------------------------------------------------------


def test_message_types_a_client_invents_are_not_metric_labels(tmp_path: Path) -> None:
    async def body() -> None:
        async with running(tmp_path, SESSIONS, admin=ADMIN) as r:
            c = await r.client()
            for i in range(40):
                await c.send(f"Z{i:03d}")
                await c.recv_type("3")  # Reject: invalid MsgType
            _, text = await call(r.gw, "GET", "/metrics", token=None)
        labels = {line.split('msg_type="')[1].split('"')[0] for line in text.splitlines()
                  if line.startswith("fixgw_session_messages_received_total{")}
        assert len(labels) < 10, sorted(labels)  # one series per invented MsgType
        assert metric(text, "fixgw_session_messages_received_total", session=S1,
                      msg_type="other") == 40

    run(body())


def test_a_venue_call_that_times_out_is_in_the_venue_call_histogram(tmp_path: Path) -> None:
    """fixgw_venue_request_seconds{request="place"} (and the latency alert fed by the same
    hook) times every call: one that took 0.3 s and timed out (the slow venue an operator must
    hear of) too."""

    async def body() -> None:
        async with running(tmp_path, SESSIONS, admin=ADMIN) as r:
            r.venue().update_faults(latency_s=0.3, timeout_next=1)
            c = await r.client()
            await c.order("slow", price="90000", tif="1")
            await c.er(t11="slow", timeout=10)
            await asyncio.wait_for(r.orders.idle(), 10)
            r.venue().update_faults(latency_s=0.0)
            _, text = await call(r.gw, "GET", "/metrics", token=None)
        n = metric(text, "fixgw_venue_request_seconds_count", venue="paper", request="place")
        assert n == 1, n
        total = metric(text, "fixgw_venue_request_seconds_sum", venue="paper", request="place")
        assert total is not None and total >= 0.3, total

    run(body())


def test_an_execution_report_that_is_no_reject_is_not_parsed(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the MsgType of an outbound message is looked at; a reject is split into its
    fields, and an ExecutionReport only when it carries OrdStatus Rejected (39=8): not the
    reports of every order (the hot path).

    Counted on the module as Python, loaded from the source the order path compiles: compiled,
    its call of split_fields is bound when it is built, and no patch reaches it."""
    from gateway.native import ORDER_PATH

    spec = importlib.util.spec_from_file_location(
        "gateway.server.traffic_as_python", ORDER_PATH.source("gateway.server.traffic"))
    assert spec is not None and spec.loader is not None
    traffic_module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, traffic_module)  # (its dataclasses look it up)
    spec.loader.exec_module(traffic_module)
    calls = []
    real = traffic_module.split_fields
    monkeypatch.setattr(traffic_module, "split_fields",
                        lambda data, *a, **kw: calls.append(1) or real(data, *a, **kw))
    er = (b"8=FIX.4.4\x019=80\x0135=8\x0134=12\x0149=GATEWAY\x0156=CLIENT1\x0111=a\x0137=1"
          b"\x0117=1.1\x01150=0\x0139=0\x0110=000\x01")
    t = traffic_module.Traffic()
    for _ in range(100):
        t.outbound("s", [er])
    assert len(calls) == 0, f"{len(calls)} ExecutionReports New split into fields"
    t.outbound("s", [er.replace(b"\x01150=0\x0139=0\x01", b"\x01150=8\x0139=8\x01103=3\x01")])
    assert len(calls) == 1 and t.of("s").rejects == {("ExecutionReport", "3"): 1}


# --- a venue's health -------------------------------------------------------------------------


class _Server:
    """An aiohttp application on a loopback port."""

    def __init__(self, app: Any) -> None:
        from aiohttp import web

        self.runner = web.AppRunner(app, handle_signals=False, access_log=None)
        self.url = ""

    async def __aenter__(self) -> _Server:
        from aiohttp import web

        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.runner.cleanup()


class _Venue:
    def __init__(self, rest: Any) -> None:
        self.rest = rest

    async def health(self) -> Any:
        from connectors.base import Health

        return Health(True, "stream connected")


@pytest.mark.parametrize("status", [502, 418])
def test_one_failure_does_not_leave_the_venue_down_for_good(status: int) -> None:
    """One 5xx of an order (a proxy's hiccup) makes the venue down until it answers again or
    for a request timeout, not until some other REST request happens to be sent; a ban (418)
    for as long as it runs."""
    from aiohttp import web

    from connectors.base import VenueAmbiguous, VenueUnavailable
    from connectors.common.http import Prepared, RestClient
    from gateway.admin.venues import VenueWatch

    async def place(request: web.Request) -> web.Response:
        return web.Response(status=status, text="no", headers={"Retry-After": "2"})

    async def body() -> None:
        app = web.Application()
        app.router.add_post("/order", place)
        async with _Server(app) as srv:
            rest = RestClient(srv.url, name="v", timeout_s=1)
            try:
                with pytest.raises(VenueAmbiguous if status == 502 else VenueUnavailable):
                    await rest.send(lambda: Prepared("POST", "/order"), mutating=True)
                watch = VenueWatch({"v": _Venue(rest)}, {})  # type: ignore[dict-item]
                states = [(await watch.refresh())["v"].up for _ in range(3)]
                await asyncio.sleep(1.1)
                states.append((await watch.refresh())["v"].up)
                await asyncio.sleep(1.0 if status == 418 else 0.0)  # (the ban: 2 s)
                states.append((await watch.refresh())["v"].up)
            finally:
                await rest.close()
        expected = [False] * 3 + ([True] if status == 502 else [False]) + [True]
        assert states == expected, (states, watch.states["v"].detail)
        assert watch.states["v"].rest_error is not None  # (still shown: the last failure)

    asyncio.run(body())


# --- changes without a reason -----------------------------------------------------------------


def test_the_kill_switch_needs_a_reason_like_every_other_change(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "fixgw.admin")

    async def body() -> None:
        async with running(tmp_path, SESSIONS, admin=ADMIN) as r:
            for engaged in (True, False):
                status, _ = await call(r.gw, "POST", "/kill-switch",
                                       {"scope": "*", "engaged": engaged})
                assert status == 400, f"{'engaged' if engaged else 'released'} without a reason"
            assert r.orders.kill_switches() == {}
            status, _ = await call(r.gw, "POST", "/sessions/hand-over",
                                   {"session": S1, "to": "b"})
            assert status == 400  # (a hand-over too)

    run(body())


def test_the_kill_switch_audit_line_is_one_line(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A reason is one line (200 characters at most) in the audit line: a newline in it
    cannot write a second, forged, audit line (text log format)."""
    caplog.set_level(logging.WARNING, "fixgw.admin")
    forged = ("desk\n2026-01-01T00:00:00.000Z WARNING fixgw.admin: admin API: alice from "
              "10.0.0.1: kill switch of * released (why: all clear)")

    async def body() -> None:
        async with running(tmp_path, SESSIONS, admin=ADMIN) as r:
            await call(r.gw, "POST", "/kill-switch",
                       {"scope": "*", "engaged": True, "reason": forged}, operator="eve")
            await call(r.gw, "POST", "/kill-switch",
                       {"scope": "*", "engaged": False, "reason": "x"})

    run(body())
    audit = [rec.getMessage() for rec in caplog.records if rec.name == "fixgw.admin"]
    assert not any("\n" in m for m in audit), audit
    assert any(m.startswith("admin API: eve from ") and "(why: desk 2026" in m for m in audit)


# --- what reaches the log ----------------------------------------------------------------------


def test_the_start_line_carries_no_store_password() -> None:
    from gateway.cli import _store_kind

    for url in ("postgresql+psycopg://db.internal:5432/fixgw?user=gw&password=s3cret",
                "postgresql+psycopg://gw:s3cret@db.internal:5432/fixgw?sslmode=require",
                "postgresql://db/fixgw?sslpassword=s3cret"):
        said = _store_kind(url)
        assert "s3cret" not in said and "user=" not in said and "gw@" not in said, said
        assert "db" in said
    assert _store_kind("sqlite:////var/lib/fixgw/fixgw.db") == "sqlite:////var/lib/fixgw/fixgw.db"


def test_a_clients_text_cannot_forge_an_info_line(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The INFO reject line carries the ClOrdID the client chose (and the logout line its
    Text): its control characters are escaped, so a newline in it writes no line the gateway
    never said."""
    caplog.set_level(logging.INFO)

    async def body() -> None:
        async with running(tmp_path, SESSIONS, admin=ADMIN) as r:
            c = await r.client()
            await c.cancel("x\n2026-01-01T00:00:00.000Z INFO fixgw.session: FORGED", "never")
            await c.expect("9")

    run(body())
    lines = [rec.getMessage() for rec in caplog.records if rec.name == "fixgw.session"]
    assert not any("\n" in m for m in lines), [m for m in lines if "\n" in m]
    assert any("ClOrdID=x\\n2026" in m for m in lines), lines


def test_the_text_log_writes_one_line_per_record() -> None:
    from gateway.logs import TextFormatter, printable

    record = logging.LogRecord("fixgw.x", logging.INFO, __file__, 1, "said %s", ("a\nb\x01",),
                               None)
    line = TextFormatter().format(record)
    assert "\n" not in line and line.endswith("said a\\nb\\x01"), line
    assert printable("café ✓") == "café ✓"


# --- sequence numbers and the node that serves a session ---------------------------------------


def test_a_sequence_number_past_the_stores_range_is_refused_not_stored(tmp_path: Path) -> None:
    """A next MsgSeqNum the store cannot hold (BIGINT) is refused: the session keeps its
    numbers, in memory and in the store, and its next Logon is served."""

    async def body() -> None:
        async with running(tmp_path, SESSIONS, admin=ADMIN) as r:
            path = f"/sessions/{quote(S50, safe='')}"
            for bad in (10**20, 2**63 - 1, 0, -1, True, 1.5):
                status, answer = await call(r.gw, "POST", f"{path}/sequence-numbers", {
                    "next_sender_seq": bad, "reason": "typo", "confirm": S50})
                assert status == 400, (bad, answer)
            _, sessions = await call(r.gw, "GET", "/sessions")
            now = {x["session"]: x["next_sender_seq"] for x in sessions["sessions"]}[S50]
            stored = (await r.store.load(S50)).next_sender
            assert (now, stored) == (1, 1)

    run(body())


def test_a_sequence_number_the_store_does_not_take_is_not_set(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The numbers are stored first, then set: a store that refuses them (down) leaves the
    session as it was (503), not half changed."""

    async def body() -> None:
        async with running(tmp_path, SESSIONS, admin=ADMIN) as r:
            async def down(unit: Commit) -> None:
                raise StoreUnavailable("disk full")

            monkeypatch.setattr(r.store, "commit", down)
            path = f"/sessions/{quote(S50, safe='')}"
            status, answer = await call(r.gw, "POST", f"{path}/sequence-numbers", {
                "next_sender_seq": 7, "reason": "client reset", "confirm": S50})
            assert status == 503 and "nothing changed" in answer["error"], answer
            monkeypatch.undo()
            _, sessions = await call(r.gw, "GET", "/sessions")
            now = {x["session"]: x["next_sender_seq"] for x in sessions["sessions"]}[S50]
            assert (now, (await r.store.load(S50)).next_sender) == (1, 1)

    run(body())


def test_a_session_another_node_serves_is_not_renumbered_here(tmp_path: Path) -> None:
    """Invariant 9: the owner keeps the session's numbers in memory and stores them at its next
    message; numbers written to the shared store by this node would be lost (or fight the
    owner). Renumbering and disabling answer 409 naming the node that serves the session."""

    async def body() -> None:
        async with running(tmp_path, SESSIONS, admin=ADMIN) as r:
            async def elsewhere(session_id: str) -> str | None:
                return f"{session_id} is served by node b"  # another live node serves it

            r.gw.acceptor.owner_check = elsewhere
            path = f"/sessions/{quote(S50, safe='')}"
            status, answer = await call(r.gw, "POST", f"{path}/sequence-numbers", {
                "next_sender_seq": 5, "reason": "client reset", "confirm": S50})
            stored = (await r.store.load(S50)).next_sender
            assert (status, stored) == (409, 1), (status, answer, stored)
            assert "node b" in answer["error"]
            status, answer = await call(r.gw, "POST", f"{path}/disable", {"reason": "x"})
            assert status == 409 and "node b" in answer["error"], answer
            assert S50 not in r.gw.acceptor.disabled
            assert (await call(r.gw, "POST", f"{path}/enable", {"reason": "x"}))[0] == 200

    run(body())


# --- the dashboard -----------------------------------------------------------------------------


def test_the_event_stream_interval_nan_is_refused(tmp_path: Path) -> None:
    """min(max(nan, 0.2), 60) is nan (every comparison with nan is false), and
    asyncio.sleep(nan) never returns: a stream asked for that would send one snapshot and
    stall (a live page that silently stops). A non-finite interval is refused."""
    import aiohttp

    from gateway.app import build_gateway

    async def body() -> None:
        store = SessionStore(f"sqlite:///{tmp_path / 'fixgw.db'}")
        await store.start()
        from orders.support import config

        gw = build_gateway(config(SESSIONS, admin=ADMIN), store)
        await gw.start()
        host, port = gw.admin_address  # type: ignore[misc]
        statuses = []
        try:
            async with aiohttp.ClientSession() as http:
                for interval in ("nan", "inf", "-inf", "soon"):
                    async with http.get(f"http://{host}:{port}/events?interval={interval}",
                                        headers={"Authorization": f"Bearer {TOKEN}"}) as resp:
                        statuses.append(resp.status)
        finally:
            await gw.stop()
            await store.close()
        assert statuses == [400] * 4

    run(body(), timeout=60)


def test_the_dashboard_counts_every_open_order_of_a_session(tmp_path: Path) -> None:
    """The snapshot lists the last open orders (200); each session's count is all of its."""
    from gateway.admin import views

    async def body() -> None:
        async with running(tmp_path, SESSIONS, admin=ADMIN) as r:
            c = await r.client()
            await resting(c, "a", "b", "c")
            admin = r.gw.admin
            assert admin is not None
            snap = views.snapshot(r.gw.acceptor, r.orders, admin.venues.states, (), r.store,
                                  limit=1)
        assert len(snap["orders"]) == 1 and snap["open_orders"] == 3
        assert {s["session"]: s["open_orders"] for s in snap["sessions"]} == {S1: 3, S50: 0}

    run(body())


# --- alerts -----------------------------------------------------------------------------------


def test_a_flapping_venue_is_not_said_at_every_flap(caplog: pytest.LogCaptureFixture) -> None:
    """An alert fired again within repeat_after of its last saying is held back (its end too),
    however often the condition flaps; if it still fires once repeat_after has passed, it is
    said then."""
    from gateway.admin.alerts import Alerts

    caplog.set_level(logging.WARNING, "fixgw.alerts")
    now = [0.0]
    alerts = Alerts([], repeat_after=600, clock=lambda: now[0])
    for _ in range(10):  # ten reconnects of a venue's stream within a minute
        alerts.fire("venue:binance", "venue binance is down")
        now[0] += 3
        alerts.resolve("venue:binance", "venue binance is up again")
        now[0] += 3
    said = [r.getMessage() for r in caplog.records if r.name == "fixgw.alerts"]
    assert said == ["ALERT venue:binance: venue binance is down",
                    "RESOLVED venue:binance: venue binance is up again"], said
    alerts.fire("venue:binance", "venue binance is down: for good")  # the last flap stays
    alerts.tick()
    now[0] = 599.0
    alerts.tick()
    assert len([r for r in caplog.records if r.name == "fixgw.alerts"]) == 2
    now[0] = 600.0
    alerts.tick()
    said = [r.getMessage() for r in caplog.records if r.name == "fixgw.alerts"]
    assert said[2:] == ["ALERT venue:binance: venue binance is down: for good"], said
    alerts.resolve("venue:binance", "venue binance is up again")
    said = [r.getMessage() for r in caplog.records if r.name == "fixgw.alerts"]
    assert said[3:] == ["RESOLVED venue:binance: venue binance is up again"], said
