"""Positions over FIX (RequestForPositions AN -> AO + AP), computed from the gateway's own
fills: quantities, average entry, realized PnL, fees; the same after a restart (from the
store); a session sees only its own."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from server.harness import run

from gateway.positions.book import Position
from gateway.store.store import SessionStore

from .support import BTC, NOW, OrderClient, running, session
from .test_market_data import Inbox

D = Decimal


async def _ask(c: OrderClient, req_id: str, *, account: str | None = None,
               symbol: str | None = None) -> None:
    body: list[tuple[int, Any]] = [(710, req_id), (724, "0"), (453, "1"), (448, c.sender),
                                   (447, "D"), (452, "3")]
    if c.begin == "FIX.4.4" or account is not None:
        body.append((1, account or c.sender))
    body += [(581, "1"), (715, "20260101"), (60, NOW)]
    if symbol is not None:
        body.append((55, symbol))
    await c.send("AN", body)


async def _fills(inbox: Inbox, cl: str) -> list[tuple[Decimal, Decimal]]:
    """(LastQty, LastPx) of ``cl``'s fills, until it is filled."""
    out = []
    while True:
        m = await inbox.get("8", t11=cl)
        if m.get(150) == "F":
            out.append((D(m[32]), D(m[31])))
        if m.get(39) == "2":
            return out


def _report(m: Any) -> dict[str, Any]:
    amounts = {}
    fields = [(t, v.decode()) for t, v in m.fields]
    for i, (t, v) in enumerate(fields):
        if t == 707:
            amounts[v] = D(fields[i + 1][1])
    return {"long": D(m[704]), "short": D(m[705]), "avg": D(m[734]), "amounts": amounts,
            "symbol": m[55], "venue": m[207], "account": m[1], "text": m.get(58)}


@pytest.mark.parametrize("begin", ["FIX.4.4", "FIXT.1.1"])
def test_positions_from_fills_and_after_a_restart(tmp_path: Path, begin: str) -> None:
    async def body() -> None:
        store = SessionStore(f"sqlite:///{tmp_path / 'fixgw.db'}")
        await store.start()
        try:
            async with running(tmp_path, [session("C1", begin)], store=store) as r:
                c = await r.client("C1", begin)
                inbox = Inbox(c)
                await c.order("b1", ord_type="1", qty="0.01")
                buys = await _fills(inbox, "b1")
                await c.order("s1", ord_type="1", qty="0.004", side="2")
                sells = await _fills(inbox, "s1")
                await _ask(c, "p1")
                ack = await inbox.get("AO", t710="p1", t728="0", t729="0", t727="1")
                assert ack[453] == "1"
                first = _report(await inbox.get("AP", t710="p1"))
                bought = sum(q for q, _ in buys)
                avg = sum(q * p for q, p in buys) / bought
                sold = sum(q for q, _ in sells)
                realized = sum(q * p for q, p in sells) - sold * avg
                # the buy's fee was paid in BTC, out of what it bought
                btc_fees = sum(D(m[12]) for m in c.received if m.msg_type == "8"
                               and m.get(150) == "F" and m.get(479) == "BTC")
                assert btc_fees > 0
                assert (first["long"], first["short"]) == (bought - sold - btc_fees, D(0))
                assert first["avg"] == avg
                assert first["amounts"]["TVAR"] == realized
                assert "FMTM" in first["amounts"]
                assert first["text"] is not None and "BTC" in first["text"]  # buy fee in BTC
                assert (first["symbol"], first["venue"]) == (BTC, "paper")
                live: list[Position] = r.gw.positions.of_session(str(c_sid(c)))  # type: ignore[union-attr]
                assert len(live) == 1
            # the gateway again, on the same store: the same position, from the stored fills
            async with running(tmp_path, [session("C1", begin)], store=store) as r:
                c = await r.client("C1", begin)
                inbox = Inbox(c)
                await _ask(c, "p2")
                await inbox.get("AO", t710="p2", t728="0", t727="1")
                again = _report(await inbox.get("AP", t710="p2"))
                assert {k: v for k, v in again.items() if k != "amounts"} == {
                    k: v for k, v in first.items() if k != "amounts"}
                assert again["amounts"]["TVAR"] == first["amounts"]["TVAR"]
        finally:
            await store.close()

    run(body())


def c_sid(c: OrderClient) -> str:
    return f"{c.begin}:GATEWAY->{c.sender}"


def test_a_session_sees_only_its_own_positions(tmp_path: Path) -> None:
    async def body() -> None:
        async with running(tmp_path, [session("C1"), session("C2")]) as r:
            c1 = await r.client("C1")
            in1 = Inbox(c1)
            await c1.order("b1", ord_type="1", qty="0.01")
            await _fills(in1, "b1")
            c2 = await r.client("C2")
            in2 = Inbox(c2)
            await _ask(c2, "mine")
            await in2.get("AO", t710="mine", t728="2", t729="0", t727="0")
            await _ask(c1, "other", account="ELSEWHERE")
            await in1.get("AO", t710="other", t728="2")
            await _ask(c1, "sym", symbol="ETH/USDT")
            await in1.get("AO", t710="sym", t728="2")

    run(body())


def test_balances_and_positions_through_the_admin_api(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from .test_kill_switch import ADMIN, TOKEN, TOKEN_ENV, _admin

    monkeypatch.setenv(TOKEN_ENV, TOKEN)

    async def body() -> None:
        async with running(tmp_path, [session("C1")], admin=ADMIN) as r:
            c = await r.client("C1")
            inbox = Inbox(c)
            await c.order("b1", ord_type="1", qty="0.01")
            buys = await _fills(inbox, "b1")
            status, answer = await _admin(r.gw, "GET", "/positions?symbol=BTC/USDT")
            assert status == 200
            (p,) = answer["positions"]
            bought = sum(q for q, _ in buys)
            fee = D(p["fees"]["BTC"])  # paid out of what was bought
            assert (p["session"], p["venue"], D(p["quantity"])) == (c_sid(c), "paper",
                                                                     bought - fee)
            assert D(p["avg_price"]) == sum(q * px for q, px in buys) / bought
            assert p["unrealized_pnl"] is not None and "BTC" in p["fees"]
            assert answer["by_asset"] == {"BTC": p["quantity"]}
            assert answer["by_symbol"] == {"BTC/USDT": p["quantity"]}
            status, answer = await _admin(r.gw, "GET", "/positions?venue=elsewhere")
            assert (status, answer) == (200, {"positions": [], "adjustments": [],
                                              "by_symbol": {}, "by_asset": {}})
            status, answer = await _admin(r.gw, "GET", "/balances?asset=BTC")
            assert status == 200 and answer["errors"] == {}
            (b,) = answer["balances"]
            venue_btc = next(x for x in await r.venue().balances() if x.asset == "BTC")
            assert (D(b["total"]), D(b["free"])) == (venue_btc.total, venue_btc.free)
            status, _ = await _admin(r.gw, "GET", "/balances?venue=nowhere")
            assert status == 404
            status, _ = await _admin(r.gw, "GET", "/positions", token="wrong")
            assert status == 401

    run(body())


def _btc_fees(c: OrderClient, cl: str) -> Decimal:
    """The Commission (12) paid in BTC by ``cl``'s fills."""
    return sum((D(m[12]) for m in c.received if m.msg_type == "8" and m.get(11) == cl
                and m.get(150) == "F" and m.get(479) == "BTC"), D(0))


def _two_venues() -> list[dict[str, Any]]:
    from .support import venue

    return [venue("paper"), venue("paper2", seed=7)]


def test_max_position_counts_every_venue_and_the_open_orders(tmp_path: Path) -> None:
    async def body() -> None:
        sessions = [session("C1", venues=["paper", "paper2"],
                            risk={"max_position": "0.015"})]
        async with running(tmp_path, sessions, _two_venues()) as r:
            c = await r.client("C1")
            inbox = Inbox(c)
            await c.order("b1", ord_type="1", qty="0.01")
            await _fills(inbox, "b1")
            held = D("0.01") - _btc_fees(c, "b1")
            await c.order("b2", ord_type="1", qty="0.01", extra=[(100, "paper2")])
            m = await inbox.get("8", t11="b2", t39="8", t103="3")
            assert m[58] == (f"risk: the position in BTC across venues would reach "
                             f"{held + D('0.01'):f} (held {held:f}, open 0, this order 0.01), "
                             "beyond max_position 0.015")
            await c.order("r1", price="90000", qty="0.004", tif="1", extra=[(100, "paper2")])
            await inbox.report("r1", "0")
            await c.order("b3", ord_type="1", qty="0.002")
            m = await inbox.get("8", t11="b3", t39="8")
            assert f"held {held:f}, open 0.004, this order 0.002" in m[58]
            await c.order("s1", ord_type="1", qty="0.01", side="2", extra=[(100, "paper2")])
            await _fills(inbox, "s1")  # selling brings the net back to 0 across venues

    run(body())


def test_max_gross_notional_across_venues(tmp_path: Path) -> None:
    async def body() -> None:
        sessions = [session("C1", venues=["paper", "paper2"],
                            risk={"max_gross_notional": "1500"})]
        async with running(tmp_path, sessions, _two_venues()) as r:
            c = await r.client("C1")
            inbox = Inbox(c)
            await c.order("b1", ord_type="1", qty="0.01")
            await _fills(inbox, "b1")
            await c.order("b2", ord_type="1", qty="0.01", extra=[(100, "paper2")])
            m = await inbox.get("8", t11="b2", t39="8", t103="3")
            assert "gross exposure across venues would reach" in m[58]
            assert "beyond max_gross_notional 1500" in m[58]

    run(body())


def test_the_loss_of_the_day_engages_the_kill_switch(tmp_path: Path) -> None:
    async def body() -> None:
        sessions = [session("C1", risk={"max_daily_loss": "0.5"})]
        async with running(tmp_path, sessions) as r:
            c = await r.client("C1")
            inbox = Inbox(c)
            await c.order("b1", ord_type="1", qty="0.01")
            await _fills(inbox, "b1")
            await c.order("s1", ord_type="1", qty="0.01", side="2")
            # two taker fees (0.05% of about 970 each) and the spread: a loss past 0.5
            await _fills(inbox, "s1")
            await asyncio.wait_for(r.orders.idle(), 5)  # the engaging is a task of its own
            assert r.orders.kill_switches().get(c_sid(c), "").startswith(
                "risk: the loss of the day")
            await c.order("b2", ord_type="1", qty="0.01")
            m = await inbox.get("8", t11="b2", t39="8")
            assert "kill switch" in m[58]

    run(body())


def test_a_venue_position_the_fills_do_not_explain_is_adjusted_once(tmp_path: Path) -> None:
    """A perpetual traded through the gateway matches the venue; then the venue account
    trades outside the gateway: the difference is stored as an adjustment (logged, told to the
    alert hooks), not invented as a fill, and not made again after a restart."""
    from connectors.base import OrderRequest, OrderType, Side

    from .support import PERP, restart, venue_survives

    async def body() -> None:
        store = SessionStore(f"sqlite:///{tmp_path / 'fixgw.db'}")
        await store.start()
        try:
            async with running(tmp_path, [session("C1")], store=store) as r:
                venue_survives(r)
                reconciler = r.gw.reconciler
                assert reconciler is not None
                alerts: list[Any] = []
                reconciler.alerts.append(alerts.append)
                c = await r.client("C1")
                inbox = Inbox(c)
                await c.order("p1", ord_type="1", qty="0.01", symbol=PERP)
                await _fills(inbox, "p1")
                await asyncio.wait_for(r.orders.idle(), 5)
                assert await reconciler.reconcile() == []
                await r.venue().place(OrderRequest("outside1", PERP, Side.BUY, OrderType.MARKET,
                                                   D("0.005")))
                # seen once it is only suspected (a fill may be on its way); the same
                # difference seen again is adjusted
                assert await reconciler.reconcile() == []
                (adjusted,) = await reconciler.reconcile()
                assert (adjusted.symbol, adjusted.computed, adjusted.venue_quantity,
                        adjusted.delta) == (PERP, D("0.01"), D("0.015"), D("0.005"))
                assert alerts == [adjusted]
                assert r.gw.positions is not None
                assert r.gw.positions.venue_totals("paper")[PERP] == D("0.015")
                # the session's own position is what its fills make: nothing was invented
                (mine,) = r.gw.positions.of_session(c_sid(c), symbol=PERP)
                assert mine.quantity == D("0.01")
                assert await reconciler.reconcile() == []
            # the gateway again, on the same store and the same venue account: the stored
            # adjustment counts, the start's reconciliation finds nothing to adjust
            gw = restart(r, store, [session("C1")])
            await gw.start()
            try:
                assert gw.reconciler is not None and gw.positions is not None
                reconciler = gw.reconciler
                for _ in range(500):  # the reconciliation at start (a task of its own)
                    if reconciler.runs:
                        break
                    await asyncio.sleep(0.01)
                assert reconciler.runs == 1
                assert await gw.reconciler.reconcile() == []
                assert gw.positions.venue_totals("paper")[PERP] == D("0.015")
                assert len(await store.load_adjustments()) == 1
            finally:
                await gw.stop()
        finally:
            await store.close()

    run(body())


def test_a_subscription_reports_each_change_until_it_ends(tmp_path: Path) -> None:
    async def body() -> None:
        async with running(tmp_path, [session("C1")]) as r:
            c = await r.client("C1")
            inbox = Inbox(c)
            body_ = [(710, "sub"), (724, "0"), (263, "1"), (453, "1"), (448, "C1"),
                     (447, "D"), (452, "3"), (1, "C1"), (581, "1"), (715, "20260101"),
                     (60, NOW)]
            await c.send("AN", body_)
            await inbox.get("AO", t710="sub", t728="2", t729="0")  # nothing yet
            await c.order("b1", ord_type="1", qty="0.01")
            await _fills(inbox, "b1")
            update = await inbox.get("AP", t710="sub", t263="1")
            assert D(update[704]) == D("0.01") - _btc_fees(c, "b1")
            # the fill's ExecutionReport came before the position update it caused
            fill_at = next(i for i, m in enumerate(c.received)
                           if m.msg_type == "8" and m.get(11) == "b1" and m.get(150) == "F")
            assert fill_at < c.received.index(update)
            await c.send("AN", [*body_[:2], (263, "1"), *body_[3:]])  # the same id again
            await inbox.get("AO", t710="sub", t728="1", t729="2")
            await c.send("AN", [(710, "sub"), (724, "0"), (263, "2"), *body_[3:]])
            await inbox.get("AO", t710="sub", t728="0")
            await c.order("b2", ord_type="1", qty="0.01")
            await _fills(inbox, "b2")
            await inbox.nothing_more("AP")

    run(body())


def test_a_balance_subscription_reports_each_pushed_change_until_it_ends(tmp_path: Path) -> None:
    async def body() -> None:
        async with running(tmp_path, [session("C1")]) as r:
            c = await r.client("C1")
            inbox = Inbox(c)
            await c.send("BB", [(909, "sub"), (263, "1")])
            first = [await inbox.get("BA", t909="sub") for _ in await r.venue().balances()]
            assert first[-1][912] == "Y"
            # a resting buy locks USDT: the venue pushes it, the subscriber is told
            await c.order("r1", price="90000", qty="0.01", tif="1")
            await inbox.report("r1", "0")
            usdt = next(b for b in await r.venue().balances() if b.asset == "USDT")
            while True:
                m = await inbox.get("BA", t909="sub")
                if m[15] == "USDT" and D(m[20011]) == usdt.locked:
                    break
            assert D(m[20011]) > 0 and 912 not in m  # an update, not an answer's part
            await c.send("BB", [(909, "sub"), (263, "1")])
            await inbox.get("BG", t909="sub", t945="4")  # already subscribed
            await c.send("BB", [(909, "sub"), (263, "2")])
            await inbox.get("BG", t909="sub", t945="0", t946="0")
            await c.send("BB", [(909, "sub"), (263, "2")])
            await inbox.get("BG", t909="sub", t945="4")  # no longer subscribed
            inbox.kept.clear()
            await c.order("r2", price="90000", qty="0.01", tif="1")
            await inbox.report("r2", "0")
            await inbox.nothing_more("BA")

    run(body())


def test_positions_are_marked_at_the_mid_while_the_book_is_watched(tmp_path: Path) -> None:
    from .test_market_data import _request

    async def body() -> None:
        async with running(tmp_path, [session("C1")]) as r:
            c = await r.client("C1")
            inbox = Inbox(c)
            await c.order("b1", ord_type="1", qty="0.01")
            await _fills(inbox, "b1")
            book = r.venue().exchange.book(BTC)
            last = r.venue().last_price(BTC)
            await _ask(c, "unwatched")
            ap = await inbox.get("AP", t710="unwatched")
            assert D(ap[730]) == last
            await _request(c, "md", exchange="paper", depth=1, types=("0", "1"))
            await inbox.get("W", t262="md")
            bid, ask = book.best_bid(), book.best_ask()
            assert bid is not None and ask is not None
            await _ask(c, "watched")
            ap = await inbox.get("AP", t710="watched")
            assert D(ap[730]) == (bid + ask) / 2

    run(body())
