"""NewOrderSingle end to end over loopback TCP: order types, TimeInForce, ExecInst, routing,
rejects of what is not supported, fills and their consistency (FIX 4.4 and FIXT.1.1/5.0SP2)."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from server.fixclient import FixMessage
from server.harness import run

from connectors.base import Side

from .support import BTC, PERP, D, consistent, fmt, running, session, venue

BEGINS = ["FIX.4.4", "FIXT.1.1"]


def _fixtime(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, UTC).strftime("%Y%m%d-%H:%M:%S.%f")[:-3]


@pytest.mark.parametrize("begin", BEGINS)
def test_order_types_and_time_in_force(tmp_path: Path, begin: str) -> None:
    async def body() -> None:
        async with running(tmp_path, [session("C1", begin)]) as r:
            c = await r.client("C1", begin)
            book = r.venue().exchange.book(BTC)
            bid, ask = book.best_bid(), book.best_ask()
            assert bid is not None and ask is not None
            far_below = bid - D(100)

            # market: New, then one ER per fill, the venue's id in 198, OrderID ours
            await c.order("m1", ord_type="1", qty="0.2")
            new = await c.er(t11="m1", t39="0", t150="0", t14="0", t151="0.2")
            assert new[198].startswith("P") and new[37] != new[198]
            # the venue takes a buy's fee from the base asset received: 12 and 479 say so
            fill = await c.er(t11="m1", t150="F", t39="2", t32="0.2", t851="2", t13="3",
                              t479="BTC")
            assert D(fill[31]) == ask and D(fill[6]) == ask
            assert D(fill[12]) == D("0.2") * D("0.0005")
            consistent(new)
            consistent(fill)

            # limit GTC resting, limit Day, GTD with ExpireTime echoed
            await c.order("l1", price=far_below, tif="1")
            consistent(await c.er(t11="l1", t39="0", t150="0", t59="1", t151="0.1", t14="0"))
            await c.order("l2", price=far_below, tif="0")
            await c.er(t11="l2", t39="0", t59="0")
            # soon, so that moving the venue's clock past it never crosses UTC midnight (which
            # would expire the Day order too)
            expire = (time.time_ns() // 10**6 + 2_000) * 10**6
            await c.order("g1", price=far_below, tif="6", extra=[(126, _fixtime(expire))])
            g1 = await c.er(t11="g1", t39="0", t59="6")
            assert g1[126] == _fixtime(expire)

            # stop (market when triggered) and stop-limit, waiting at the venue
            await c.order("s1", ord_type="3", stop=ask + D(500))
            await c.er(t11="s1", t39="0", t40="3", t99=fmt(ask + D(500)))
            await c.order("s2", ord_type="4", side="2", stop=bid - D(500),
                          price=bid - D(501))
            await c.er(t11="s2", t39="0", t40="4", t44=fmt(bid - D(501)))

            # IOC that does not cross: New, then Canceled by the venue
            await c.order("i1", price=far_below, tif="3")
            await c.er(t11="i1", t39="0")
            gone = await c.er(t11="i1", t39="4", t150="4", t151="0")
            assert "ioc" in gone[58]
            # FOK larger than the best level: canceled whole
            await c.order("f1", price=ask, qty="1", tif="4")
            await c.er(t11="f1", t39="0")
            await c.er(t11="f1", t39="4", t150="4", t14="0")

            # post-only (ExecInst 6): rests when it would not take, refused when it would
            await c.order("p1", price=far_below, extra=[(18, "6")])
            await c.er(t11="p1", t39="0", t18="6")
            await c.order("p2", price=ask, extra=[(18, "6")])
            rej = await c.er(t11="p2", t39="8", t150="8", t103="99")
            assert "post-only" in rej[58]

            # reduce-only (ExecInst E) on the perpetual: refused without a position, then
            # reduces one
            await c.order("r0", symbol=PERP, side="2", ord_type="1", qty="0.01",
                          extra=[(18, "E")])
            rej = await c.er(t11="r0", t39="8", t150="8")
            assert "reduce" in rej[58]
            await c.order("r1", symbol=PERP, ord_type="1", qty="0.01")
            await c.er(t11="r1", t39="0")
            await c.er(t11="r1", t39="2")
            await c.order("r2", symbol=PERP, side="2", ord_type="1", qty="0.01",
                          extra=[(18, "E")])
            await c.er(t11="r2", t39="0", t18="E")
            await c.er(t11="r2", t39="2", t150="F", t14="0.01")

            # the GTD order expires when the venue's clock passes its ExpireTime
            r.venue().tick(expire + 1)
            await c.er(t11="g1", t39="C", t150="C", t151="0")
            ids = [m[37] for m in c.received if m.msg_type == "8"]
            assert all(i.isdigit() for i in ids)
    run(body())


UNSUPPORTED: list[tuple[dict[int, str | None], str, str]] = [
    ({40: "P"}, "11", "OrdType"),
    ({59: "2"}, "11", "TimeInForce"),
    ({18: "G"}, "11", "ExecInst"),
    ({54: "5"}, "11", "Side"),
    ({59: "6"}, "99", "ExpireTime"),
    ({44: None}, "99", "Price"),
    ({40: "3", 44: None}, "99", "StopPx"),
    ({55: "DOGE/USDT"}, "1", "unknown symbol"),
    ({100: "nowhere"}, "0", "nowhere"),
    ({38: "0.000001"}, "13", "lot size"),
    ({44: "90000.001"}, "99", "tick size"),
    ({1: "nobody"}, "0", "unknown account"),
    # hostile numbers: a clean reject, not "Application error" (DivisionImpossible in the
    # lot-size check)
    ({38: "100000000000000000000000"}, "13", "OrderQty (38) is too large"),
    ({44: "9" * 30}, "99", "Price (44) is too large"),
    ({38: "0." + "0" * 20 + "1"}, "13", "more than 12 decimals"),
    ({44: "90000.0000000000000000001"}, "99", "more than 12 decimals"),
    # 29 digits: rounded to the context's 28 it would be 1E+15, an integer
    ({38: "999999999999999.99999999999999"}, "13", "more than 12 decimals"),
]


@pytest.mark.parametrize("begin", BEGINS)
def test_unsupported_values_are_rejected(tmp_path: Path, begin: str) -> None:
    async def body() -> None:
        sessions = [session("C1", begin, accounts={"main": "paper"})]
        async with running(tmp_path, sessions) as r:
            c = await r.client("C1", begin)
            for i, (fields, reason, text) in enumerate(UNSUPPORTED):
                cl = f"u{i}"
                base: dict[int, str | None] = {11: cl, 38: "0.1", 40: "2", 44: "90000",
                                                54: "1", 55: BTC, 60: "20260101-00:00:00"}
                if begin == "FIX.4.4":
                    base[21] = "1"
                base.update(fields)
                await c.send("D", sorted((t, v) for t, v in base.items() if v is not None))
                m = await c.er(t11=cl, t39="8", t150="8", t103=reason, t14="0", t151="0")
                assert text in m[58], (fields, m[58])
            assert await r.open_at_venue() == []
    run(body())


def test_routing_by_destination_exchange_and_account(tmp_path: Path) -> None:
    async def body() -> None:
        sessions = [session(venues=["paper", "alt"], accounts={"A2": "alt", "A1": "paper"})]
        async with running(tmp_path, sessions, [venue(), venue("alt", seed=5)]) as r:
            c = await r.client()
            px = r.venue().exchange.book(BTC).best_bid()
            assert px is not None
            px -= 100
            await c.order("d0", price=px)
            await c.order("d1", price=px, extra=[(100, "alt")])
            await c.order("d2", price=px, extra=[(207, "alt")])
            await c.order("d3", price=px, extra=[(1, "A2")])
            await c.order("d4", price=px, extra=[(1, "A1")])
            for cl in ("d0", "d1", "d2", "d3", "d4"):
                m = await c.er(t11=cl, t39="0")
                if cl in ("d3", "d4"):
                    assert m[1] == ("A2" if cl == "d3" else "A1")
            await c.order("d5", price=px, extra=[(1, "A1"), (100, "alt")])
            m = await c.er(t11="d5", t39="8", t103="0")
            assert "A1" in m[58]
            main, alt = await r.open_at_venue(), await r.open_at_venue("alt")
            assert len(main) == 2 and len(alt) == 3
    run(body())


def test_duplicate_clordid_of_a_live_order(tmp_path: Path) -> None:
    async def body() -> None:
        async with running(tmp_path) as r:
            c = await r.client()
            await c.order("dup", price="90000")
            first = await c.er(t11="dup", t39="0")
            await c.order("dup", price="90001")
            m = await c.er(t11="dup", t39="8", t150="8", t103="6")
            assert "duplicate" in m[58].lower() and m[37] != first[37]
            assert len(await r.open_at_venue()) == 1
    run(body())


@pytest.mark.parametrize("begin", BEGINS)
def test_fills_sweep_levels_avgpx_exact(tmp_path: Path, begin: str) -> None:
    async def body() -> None:
        async with running(tmp_path, [session("C1", begin)]) as r:
            c = await r.client("C1", begin)
            levels = r.venue().exchange.book(BTC).levels(Side.SELL)
            await c.order("sw", ord_type="1", qty="1.7")
            await c.er(t11="sw", t39="0")
            fills: list[FixMessage] = []
            while not fills or fills[-1][39] != "2":
                m = await c.er(t11="sw", t150="F")
                consistent(m)
                fills.append(m)
            assert len(fills) == 4 and len({m[17] for m in fills}) == 4
            notional = sum((D(m[31]) * D(m[32]) for m in fills), Decimal(0))
            cum = Decimal(0)
            for m in fills:
                cum += D(m[32])
                assert D(m[14]) == cum
            assert [D(m[31]) for m in fills] == [p for p, _ in levels[:4]]
            assert D(fills[-1][6]) == notional / D("1.7")
            # a filled order leaves nothing behind in the order path (memory stays flat: the
            # last fill used to leave its venue order's fill count)
            await asyncio.wait_for(r.orders.idle(), 5)
            assert r.orders.orders == {} and r.orders.book.empty()
    run(body())


def test_pending_new_report_and_native_symbol(tmp_path: Path) -> None:
    async def body() -> None:
        begin = "FIXT.1.1"
        async with running(tmp_path, [session("C1", begin, report_pending_new=True)]) as r:
            c = await r.client("C1", begin)
            await c.order("n1", symbol="BTC-USDT", price="90000",
                          extra=[(22, "8"), (48, "BTC-USDT")])
            pending = await c.er(t11="n1", t39="A", t150="A", t55=BTC, t151="0.1")
            new = await c.er(t11="n1", t39="0", t150="0")
            assert pending[37] == new[37] and pending[17] != new[17]
    run(body())
