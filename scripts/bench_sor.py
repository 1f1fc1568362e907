#!/usr/bin/env python3
"""Smart order routing benchmark: what routing saves, and how long a decision takes.

Three simulated venues with different prices, depths and taker fees (below). The gateway runs
in this process (SQLite store in a temporary directory); a FIX client (gateway.initiator, over
loopback TCP) sends the orders.

1. ``slippage``: one marketable buy of ``--qty`` BTC (limit: the best ask + 60 USDT) sent to
   each venue alone (ExDestination x, y, z) and through the router (ExDestination SOR), each
   on a fresh gateway with the same books. Prints the average price, the fees paid (each
   fill's venue's taker fee) and the cost against the arrival mid of the consolidated book
   (the best bid and the best ask over the three venues), in basis points.
2. ``decision``: ``--orders`` routed IOC buys at the best bid (no venue offers that: nothing
   fills, the books stay as they are), each routed over the three venues' 20-level books:
   the router's decision time (gateway.orders.sor.SmartRouter.decide: the books read, the
   balances, the plan) p50 / p99, and the time from sending the order to its final ExecutionReport.

    .venv/bin/python scripts/bench_sor.py [--qty 3] [--orders 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchlib import native  # noqa: E402

from gateway.app import build_gateway  # noqa: E402
from gateway.config import Config  # noqa: E402
from gateway.fix.custom import SOR  # noqa: E402
from gateway.fix.dictionary import standard  # noqa: E402
from gateway.fix.session import Session, SessionID, SessionSettings  # noqa: E402
from gateway.fix.states import Role  # noqa: E402
from gateway.initiator import Initiator  # noqa: E402
from gateway.orders.sor import SmartRouter  # noqa: E402
from gateway.store.store import SessionStore  # noqa: E402

BTC = "BTC/USDT"
VENUES: list[dict[str, Any]] = [
    # x: the tightest price, thin, expensive; y: a little higher, deep, cheap; z: thin, cheap
    {"name": "x", "taker_fee": "0.0010", "mid": "97000", "level_size": "0.4"},
    {"name": "y", "taker_fee": "0.0002", "mid": "97006", "level_size": "0.6"},
    {"name": "z", "taker_fee": "0.0002", "mid": "97002", "level_size": "0.5"},
]
FEES = {v["name"]: Decimal(v["taker_fee"]) for v in VENUES}


def config(tmp: Path) -> Config:
    return Config.model_validate({
        "gateway": {"host": "127.0.0.1", "port": 0, "log_dir": None,
                    "store": f"sqlite:///{tmp / 'fixgw.db'}"},
        "venue": [{"name": v["name"], "tick_interval": 3600, "taker_fee": v["taker_fee"],
                   "market": [{"symbol": BTC, "mid": v["mid"], "volatility": "0",
                               "levels": 20, "level_size": v["level_size"],
                               "level_step_ticks": 200}]} for v in VENUES],
        "session": [{"target_comp_id": "B1", "begin_string": "FIX.4.4", "default_venue": "x",
                     "venues": [v["name"] for v in VENUES], "default_time_in_force": "gtc"}],
    })


class Bench:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.n = 0

    async def __aenter__(self) -> Bench:
        cfg = config(self.tmp)
        self.store = SessionStore(cfg.gateway.store)
        await self.store.start()
        self.gw = build_gateway(cfg, self.store)
        host, port = await self.gw.start()
        session = Session(SessionSettings(SessionID("FIX.4.4", "B1", "GATEWAY"),
                                          role=Role.INITIATOR), standard("FIX.4.4"))
        self.client = await Initiator.connect(session, host, port)
        await self.client.logon(reset=True)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.client.logout()
        await self.client.close()
        await self.gw.stop()
        await self.store.close()

    def books(self) -> tuple[Decimal, Decimal]:
        """The consolidated best bid and best ask now."""
        assert self.gw.orders is not None
        bids, asks = [], []
        for name in FEES:
            book = getattr(self.gw.orders.connectors[name], "exchange").book(BTC)  # noqa: B009
            bids.append(book.best_bid())
            asks.append(book.best_ask())
        return max(bids), min(asks)

    async def order(self, dest: str, qty: Decimal, price: Decimal, tif: bytes
                    ) -> list[tuple[str, Decimal, Decimal]]:
        """Send a buy; its fills (venue, qty, price) once it is done."""
        self.n += 1
        await self.client.send(b"D", [(11, f"o{self.n}".encode()), (21, b"1"),
                                      (38, str(qty).encode()), (40, b"2"),
                                      (44, str(price).encode()), (54, b"1"), (55, BTC.encode()),
                                      (59, tif), (60, b"20260101-00:00:00"),
                                      (100, dest.encode())])
        fills = []
        while True:
            m = await self.client.receive(10.0)
            if m is None or m.msg_type != b"8":
                continue
            if m.get(150) == b"F":
                fills.append(((m.get(30) or dest.encode()).decode(),
                              Decimal(m.get_str(32) or "0"), Decimal(m.get_str(31) or "0")))
            if m.get(39) in (b"2", b"4", b"8", b"C"):
                return fills


async def slippage(qty: Decimal) -> None:
    print(f"1. a marketable buy of {qty} BTC (limit: best ask + 60), each on fresh books")
    print(f"   {'sent to':8} {'filled':>8} {'avg price':>12} {'fees':>9} {'cost vs mid':>12}")
    for dest in ("x", "y", "z", SOR):
        with tempfile.TemporaryDirectory() as tmp:
            async with Bench(Path(tmp)) as b:
                bid, ask = b.books()
                mid = (bid + ask) / 2
                fills = await b.order(dest, qty, ask + 60, b"1")
        filled = sum((q for _, q, _ in fills), Decimal(0))
        notional = sum((q * p for _, q, p in fills), Decimal(0))
        fees = sum((q * p * FEES[v] for v, q, p in fills), Decimal(0))
        avg = notional / filled if filled else Decimal(0)
        cost = ((notional + fees) / filled / mid - 1) * 10000 if filled else Decimal(0)
        where = ", ".join(sorted({v for v, _, _ in fills}))
        print(f"   {dest:8} {filled:>8} {avg:>12.2f} {fees:>9.2f} {cost:>9.2f} bp"
              f"   ({where})")


async def decisions(n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        async with Bench(Path(tmp)) as b:
            assert b.gw.orders is not None
            router = b.gw.orders.strategy(SOR)
            assert isinstance(router, SmartRouter)
            bid, _ = b.books()  # (an IOC buy at the best bid takes nothing)
            await b.order(SOR, Decimal("0.001"), bid, b"3")  # (the books watched)
            router.decisions_ns.clear()
            round_trips = []
            for _ in range(n):
                t0 = time.perf_counter()
                await b.order(SOR, Decimal("0.001"), bid, b"3")
                round_trips.append(time.perf_counter() - t0)
            took = sorted(router.decisions_ns[-n:])
    q = statistics.quantiles(took, n=100)
    rt = statistics.quantiles(round_trips, n=100)
    print(f"2. {n} routed IOC orders over 3 venues x 20 levels a side")
    print(f"   router decision: p50 {q[49] / 1000:.1f} us, p99 {q[98] / 1000:.1f} us")
    print(f"   order sent -> final ExecutionReport: p50 {rt[49] * 1000:.2f} ms, "
          f"p99 {rt[98] * 1000:.2f} ms")


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--qty", type=Decimal, default=Decimal(3))
    ap.add_argument("--orders", type=int, default=2000)
    args = ap.parse_args()
    native.refuse_stale()
    logging.basicConfig(level=logging.ERROR)
    await slippage(args.qty)
    await decisions(args.orders)


if __name__ == "__main__":
    asyncio.run(main())
