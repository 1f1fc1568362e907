"""Pre-trade checks of [session.risk]: each limit refuses with ExecutionReport(Rejected),
OrdRejReason (103) and a text naming the limit; the venue never sees the order."""

from __future__ import annotations

from pathlib import Path

from server.harness import run

from .support import BTC, ETH, D, running, session


def test_pre_trade_limits(tmp_path: Path) -> None:
    async def body() -> None:
        sessions = [
            session("QTY", risk={"max_order_qty": "1"}),
            session("NOTIONAL", risk={"max_notional": "50000"}),
            session("BAND", risk={"price_band": "0.05"}),
            session("OPEN", risk={"max_open_orders": 2}),
            session("RATE", risk={"max_orders_per_second": 3}),
            session("KILL", risk={"kill_switch": True}),
        ]
        async with running(tmp_path, sessions) as r:
            last = r.venue().last_price(BTC)
            assert last is not None
            below = last - 100

            c = await r.client("QTY")
            await c.order("q1", price=below, qty="1")
            await c.er(t11="q1", t39="0")
            await c.order("q2", price=below, qty="1.5")
            m = await c.er(t11="q2", t39="8", t150="8", t103="3")
            assert "max_order_qty" in m[58]

            c = await r.client("NOTIONAL")
            await c.order("n1", price=below, qty="0.5")  # ~48 500
            await c.er(t11="n1", t39="0")
            await c.order("n2", ord_type="1", qty="0.6")  # market: priced at the last price
            m = await c.er(t11="n2", t39="8", t103="3")
            assert "max_notional" in m[58]

            c = await r.client("BAND")
            await c.order("b1", price=last * D("0.96"))
            await c.er(t11="b1", t39="0")
            await c.order("b2", price=last * D("0.94"))
            m = await c.er(t11="b2", t39="8", t103="3")
            assert "price_band" in m[58]
            await c.order("b3", side="2", price=last * D("1.06"))
            await c.er(t11="b3", t39="8", t103="3")

            c = await r.client("OPEN")
            for cl in ("o1", "o2"):
                await c.order(cl, price=below)
                await c.er(t11=cl, t39="0")
            await c.order("o3", price=below)
            m = await c.er(t11="o3", t39="8", t103="3")
            assert "max_open_orders" in m[58]
            await c.cancel("o1c", "o1")
            await c.er(t11="o1c", t39="6")
            await c.er(t11="o1c", t39="4")
            await c.order("o4", price=below)  # one closed: room again
            await c.er(t11="o4", t39="0")

            c = await r.client("RATE")
            for i in range(4):
                await c.order(f"r{i}", price=below)
            got = {m[11]: m for m in [await c.er() for _ in range(4)]}
            assert {cl: m[39] for cl, m in got.items()} == {"r0": "0", "r1": "0", "r2": "0",
                                                            "r3": "8"}
            assert got["r3"][103] == "3" and "max_orders_per_second" in got["r3"][58]

            c = await r.client("KILL")
            await c.order("k1", symbol=ETH, price="3000")
            m = await c.er(t11="k1", t39="8", t150="8", t103="2")
            assert "kill switch" in m[58]

            # accepted: q1, n1, b1, o2, o4, r0-r2
            assert len(await r.open_at_venue()) == 8
    run(body())


def test_replace_is_checked_against_the_limits(tmp_path: Path) -> None:
    async def body() -> None:
        async with running(tmp_path, [session(risk={"max_order_qty": "1"})]) as r:
            c = await r.client()
            await c.order("a", price="90000", qty="0.5")
            await c.er(t11="a", t39="0")
            await c.replace("b", "a", qty="5", price="90000")
            m = await c.expect("9", t11="b", t434="2")
            assert "max_order_qty" in m[58]
    run(body())


def test_checks_that_need_a_price_refuse_when_the_venue_has_none() -> None:
    """Fail safe: a venue that has not told its last price yet (a connector just started, a
    symbol never traded) cannot pass a price band or a market order's notional check."""
    from connectors.base import OrderType
    from gateway.risk.checks import RiskEngine, RiskLimits

    risk = RiskEngine()
    risk.limits["S"] = RiskLimits(price_band=D("0.05"), max_notional=D("100000"))
    kw = {"session_id": "S", "account": None, "quantity": D("1"), "now": 0.0}
    band = risk.check(order_type=OrderType.LIMIT, price=D("90000"), last_price=None, **kw)
    assert band is not None and "price_band cannot be checked" in band.text
    market = risk.check(order_type=OrderType.MARKET, price=None, last_price=None, **kw)
    assert market is not None and "max_notional" in market.text
    ok = risk.check(order_type=OrderType.LIMIT, price=D("90000"), last_price=D("91000"), **kw)
    assert ok is None


def test_per_account_limits(tmp_path: Path) -> None:
    """``[session.risk.accounts.A]`` replaces the session's limits for Account (1) A's orders
    (the keys it names; the others stay the session's)."""
    async def body() -> None:
        risk = {"max_order_qty": "2", "max_open_orders": 5,
                "accounts": {"A": {"max_order_qty": "1", "max_open_orders": 1}}}
        sessions = [session(accounts={"A": "paper", "B": "paper"}, risk=risk)]
        async with running(tmp_path, sessions) as r:
            last = r.venue().last_price(BTC)
            assert last is not None
            below = last - 100
            c = await r.client()
            await c.order("a1", price=below, qty="1.5", extra=[(1, "A")])
            m = await c.er(t11="a1", t39="8", t103="3")
            assert "max_order_qty" in m[58]
            await c.order("b1", price=below, qty="1.5", extra=[(1, "B")])
            await c.er(t11="b1", t39="0")
            await c.order("x1", price=below, qty="2.5", extra=[(1, "B")])
            m = await c.er(t11="x1", t39="8", t103="3")  # B keeps the session's 2
            assert "max_order_qty" in m[58]
            await c.order("a2", price=below, qty="0.5", extra=[(1, "A")])
            await c.er(t11="a2", t39="0")
            await c.order("a3", price=below, qty="0.5", extra=[(1, "A")])
            m = await c.er(t11="a3", t39="8", t103="3")
            assert "max_open_orders" in m[58]
            await c.order("b2", price=below, qty="0.5", extra=[(1, "B")])
            await c.er(t11="b2", t39="0")
    run(body())


def test_session_limits_count_every_account(tmp_path: Path) -> None:
    """A session's max_open_orders caps all its orders, whatever their Account (1)."""
    async def body() -> None:
        sessions = [session(accounts={"B": "paper", "C": "paper"},
                            risk={"max_open_orders": 3})]
        async with running(tmp_path, sessions) as r:
            last = r.venue().last_price(BTC)
            assert last is not None
            c = await r.client()
            for cl, account in (("b1", "B"), ("b2", "B"), ("c1", "C")):
                await c.order(cl, price=last - 100, extra=[(1, account)])
                await c.er(t11=cl, t39="0")
            await c.order("c2", price=last - 100, extra=[(1, "C")])
            m = await c.er(t11="c2", t39="8", t103="3")
            assert "3 open orders, max_open_orders is 3" in m[58]
            await c.order("n1", price=last - 100)  # no account: the session's orders too
            await c.er(t11="n1", t39="8", t103="3")
    run(body())
