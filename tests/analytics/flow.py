"""A gateway flow whose store ``fixgw report`` reads (tests/analytics): two accounts trading
BTC/USDT on the simulated venue with its synthetic market trading, ``benchmark_books`` on;
marketable buys, a sell that closes part of a buy, a resting buy filled by the market (then
cancelled if not whole), a refusal by the pre-trade checks. What the client was told, and
what the test saw independently (the venue's book at each arrival, every public trade the
gateway's feed counted, the gateway's own positions), is kept in :class:`Facts` to check the
report against. :func:`report` runs ``fixgw report`` in this process."""

# ruff: noqa: ASYNC109

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from orders.support import BTC, OrderClient, Run, running, session, sid, until, venue

from connectors.base import PublicTrade
from gateway.cli import main
from gateway.marketdata.book import Book
from gateway.orders.benchmarks import Benchmarks
from gateway.orders.model import Order
from gateway.store.store import SessionStore

D = Decimal
SESSIONS = [session("CLIENT1", accounts={"ACC1": "paper", "ACC2": "paper"},
                    risk={"max_order_qty": "5"})]
VENUES = [venue(market=[{"symbol": BTC, "trade_rate": "2", "trade_size": "0.05"}])]


@dataclass
class Facts:
    reports: list[Any] = field(default_factory=list)
    """Every ExecutionReport the client got."""
    arrival_mid: dict[str, Decimal] = field(default_factory=dict)
    """ClOrdID -> the venue's mid as the test saw it just before sending the order."""
    market_vwap: dict[str, Decimal] = field(default_factory=dict)
    """ClOrdID -> the VWAP of the public trades the gateway's feed counted over its life."""
    realized: Decimal = D(0)
    """The realized PnL of the gateway's own positions (computed live from its fills)."""
    venue_orders: int = 0


class Tape:
    """Every public trade the gateway's feed counts, in the order it counts them."""

    def __init__(self) -> None:
        self.trades: list[PublicTrade] = []

    def book_changed(self, book: Book, trades: Sequence[PublicTrade]) -> None:
        self.trades.extend(trades)

    def vwap(self, start: int, end: int) -> Decimal | None:
        got = self.trades[start:end]
        size = sum((t.size for t in got), D(0))
        return None if not size else sum((t.size * t.price for t in got), D(0)) / size


async def make_flow(tmp_path: Path, store: SessionStore, mp: pytest.MonkeyPatch) -> Facts:
    facts = Facts()
    async with running(tmp_path, SESSIONS, VENUES, store=store,
                       gateway={"benchmark_books": True}) as r:
        c = await r.client()
        # the first order of the instrument has no benchmark: it starts watching the book
        await trade(r, c, facts, "first", "ACC1", "1", "0.01", "98000")
        view = r.orders.children.market
        await until(lambda: view.quote("paper", BTC) is not None)
        tape = Tape()
        await r.gw.market_data.md.watch("paper", BTC, tape)
        seen: dict[str, int] = {}
        bench = r.orders.recorder.benchmarks
        assert isinstance(bench, Benchmarks)
        arrival, end = bench.arrival, bench.end

        def at_arrival(o: Order) -> dict[str, Any] | None:
            seen[o.cl_ord_id] = len(tape.trades)
            return arrival(o)

        def at_end(o: Order) -> list[str] | None:
            vwap = tape.vwap(seen[o.cl_ord_id], len(tape.trades))
            if vwap is not None:
                facts.market_vwap[o.cl_ord_id] = vwap
            return end(o)

        mp.setattr(bench, "arrival", at_arrival)
        mp.setattr(bench, "end", at_end)
        await synced(r)
        await trade(r, c, facts, "b1", "ACC1", "1", "0.1", "98000")
        await synced(r)
        await trade(r, c, facts, "s1", "ACC1", "2", "0.05", "90000")  # closes some: PnL
        await synced(r)
        await trade(r, c, facts, "b2", "ACC2", "1", "0.3", "98000")
        # refused by the pre-trade checks (max_order_qty 5): stored, rejected
        await c.order("big", qty="10", price="98000", extra=[(1, "ACC1")])
        facts.reports.append(await c.er(t11="big", t39="8"))
        # a buy at the top of the book, filled (in part) by the market's sellers, then cancelled
        await synced(r)
        facts.arrival_mid["rest"] = mid_before(r)
        bid = r.venue().exchange.book(BTC).best_bid()
        assert bid is not None
        await c.order("rest", qty="1", price=str(bid + D("0.01")), tif="1",
                      extra=[(1, "ACC1")])
        facts.reports.append(await c.er(t11="rest", t39="0"))
        facts.venue_orders += 1
        for _ in range(200):  # ticks of the market until the market's sellers reach it
            r.venue().tick()
            try:
                m = await c.er(0.05)
            except TimeoutError:
                continue
            facts.reports.append(m)
            if m[150] == "F":
                break
        else:
            raise AssertionError("the market never traded with the resting buy")
        if m[39] != "2":  # (a large trade of the market may have filled it whole)
            await c.cancel("rest-x", "rest", qty="1")
            while m[39] not in ("4", "2"):
                m = await c.recv_type("8", skip=("0", "9"))  # (too late: filled meanwhile)
                facts.reports.append(m)
        await r.orders.idle()
        assert r.gw.positions is not None
        facts.realized = sum((p.realized for p in r.gw.positions.of_session(sid())), D(0))
        assert "rest" in facts.market_vwap
    return facts


async def synced(r: Run) -> None:
    """Until the gateway's book shows the venue's best bid and ask."""
    view = r.orders.children.market
    book = r.venue().exchange.book(BTC)
    await until(lambda: view.quote("paper", BTC) == (book.best_bid(), book.best_ask()))


async def trade(r: Run, c: OrderClient, facts: Facts, cl: str, account: str, side: str,
                qty: str, price: str) -> None:
    """A marketable order, until it is filled (the venue's mid seen just before it is sent is
    kept as its expected arrival mid)."""
    facts.arrival_mid[cl] = mid_before(r)
    await c.order(cl, side=side, qty=qty, price=price, extra=[(1, account)])
    facts.venue_orders += 1
    while True:
        m = await c.er(t11=cl)
        facts.reports.append(m)
        if m[39] in ("2", "4", "8", "C"):
            return


def mid_before(r: Run) -> Decimal:
    book = r.venue().exchange.book(BTC)
    bid, ask = book.best_bid(), book.best_ask()
    assert bid is not None and ask is not None
    return (bid + ask) / 2


def report(*args: str | Path) -> tuple[int, str, str]:
    """``fixgw report ARGS`` in this process: (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["report", *(str(a) for a in args)])
    return code, out.getvalue(), err.getvalue()
