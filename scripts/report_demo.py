#!/usr/bin/env python3
"""A store to try ``fixgw report`` on: a gateway in this process trades for ``--seconds`` on
two simulated venues whose markets move and trade (``benchmark_books`` on, so that orders
record their arrival mid and the market's trades), for two accounts (DESK-A at sim-a, DESK-B
at sim-b): marketable orders, passive orders cancelled when the market has not come to them
within a few seconds, TWAPs, orders the pre-trade checks refuse and post-only orders the venue
refuses. Then it says how to report on the store.

    .venv/bin/python scripts/report_demo.py --seconds 60 --store sqlite:///data/demo.db
    .venv/bin/fixgw report --store sqlite:///data/demo.db --html report.html
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import random
import sys
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from connectors.paper.venue import PaperConnector
from gateway.app import build_gateway
from gateway.config import Config
from gateway.fix.dictionary import standard
from gateway.fix.session import Session, SessionID, SessionSettings
from gateway.fix.states import Role
from gateway.initiator import Initiator
from gateway.store.store import SessionStore

SYMBOLS = {"BTC/USDT": (Decimal("0.01"), Decimal("0.00001"), "0.02"),
           "ETH/USDT": (Decimal("0.01"), Decimal("0.0001"), "0.3")}
"""symbol -> (tick, lot, mean size of an order)."""
ACCOUNTS = {"DESK-A": "sim-a", "DESK-B": "sim-b"}
NS = 1_000_000_000


def _config(store: str, seed: int) -> Config:
    def venue(name: str, seed: int) -> dict[str, object]:
        return {"name": name, "seed": seed, "tick_interval": 0.1,
                "market": [{"symbol": s, "trade_rate": "1.5", "trade_size": size,
                            "volatility": "0.00005"} for s, (_, _, size) in SYMBOLS.items()]}

    return Config.model_validate({
        "gateway": {"host": "127.0.0.1", "port": 0, "store": store, "log_dir": None,
                    "benchmark_books": True},
        "venue": [venue("sim-a", seed), venue("sim-b", seed + 1)],
        "session": [{"target_comp_id": "CLIENT1", "begin_string": "FIX.4.4",
                     "default_venue": "sim-a", "venues": list(ACCOUNTS.values()),
                     "accounts": ACCOUNTS, "default_time_in_force": "gtc",
                     "risk": {"max_order_qty": "20"}}],
    })


def _fixtime(ns: int) -> bytes:
    return datetime.fromtimestamp(ns / 1e9, UTC).strftime("%Y%m%d-%H:%M:%S.%f")[:-3].encode()


class Demo:
    def __init__(self, client: Initiator, venues: dict[str, PaperConnector], rng: random.Random):
        self.client = client
        self.venues = venues
        self.rng = rng
        self.n = 0
        self.resting: dict[bytes, tuple[float, list[tuple[int, bytes]]]] = {}
        """ClOrdID -> (when to cancel it, the fields naming it)."""
        self.sent = 0
        self.reports = 0

    def mid(self, venue: str, symbol: str) -> Decimal:
        book = self.venues[venue].exchange.book(symbol)
        bid, ask = book.best_bid(), book.best_ask()
        assert bid is not None and ask is not None
        return (bid + ask) / 2

    async def order(self) -> None:
        rng = self.rng
        self.n += 1
        cl = f"demo-{self.n}".encode()
        account = rng.choice(list(ACCOUNTS))
        symbol = rng.choice(list(SYMBOLS))
        tick, lot, size = SYMBOLS[symbol]
        side = rng.choice((b"1", b"2"))
        qty = max(lot, (Decimal(size) * Decimal(rng.expovariate(1.0))).quantize(lot))
        mid = self.mid(ACCOUNTS[account], symbol)
        sign = 1 if side == b"1" else -1
        kind = rng.choices(("take", "rest", "twap", "big", "post"), (50, 30, 8, 6, 6))[0]
        fields: list[tuple[int, bytes]] = [(1, account.encode()), (11, cl), (21, b"1"),
                                           (40, b"2"), (54, side), (55, symbol.encode()),
                                           (60, _fixtime(time.time_ns()))]
        if kind in ("take", "twap", "big"):
            price = mid * (1 + sign * Decimal("0.002"))
        else:  # at or a little behind the best price: the market may come to it
            price = mid * (1 - sign * Decimal(rng.randint(0, 3)) / Decimal(10_000))
        if kind == "big":
            qty = Decimal(100)
        if kind == "twap":
            qty *= 5
            fields += [(126, _fixtime(time.time_ns() + rng.randint(4, 8) * NS)),
                       (847, b"1000")]
        if kind == "post":  # post-only across the spread: the venue refuses it
            price = mid * (1 + sign * Decimal("0.001"))
            fields.append((18, b"6"))
        fields += [(38, str(qty).encode()), (44, str(price.quantize(tick)).encode())]
        await self.client.send(b"D", sorted(fields, key=lambda f: f[0]))
        self.sent += 1
        if kind == "rest":
            self.resting[cl] = (time.monotonic() + rng.uniform(1, 5),
                                [(38, str(qty).encode()), (54, side), (55, symbol.encode())])

    async def cancel_due(self, everything: bool = False) -> None:
        now = time.monotonic()
        for cl, (when, fields) in list(self.resting.items()):
            if everything or when <= now:
                del self.resting[cl]
                await self.client.send(b"F", sorted([(11, cl + b"-x"), (41, cl), *fields,
                                                     (60, _fixtime(time.time_ns()))]))

    async def read(self) -> None:
        while True:
            m = await self.client.receive(3600)
            if m is None:
                continue
            if m.msg_type == b"8":
                self.reports += 1
                if m.get(39) in (b"2", b"4", b"8", b"C"):
                    self.resting.pop(m.get(11) or b"", None)


async def main(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    if args.store.startswith("sqlite:///"):
        Path(args.store[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
    store = SessionStore(args.store)
    await store.start()
    gw = build_gateway(_config(args.store, args.seed), store)
    host, port = await gw.start()
    assert gw.orders is not None
    venues = {name: c for name, c in gw.orders.connectors.items()
              if isinstance(c, PaperConnector)}
    dd = standard("FIX.4.4")
    session = Session(SessionSettings(SessionID("FIX.4.4", "CLIENT1", "GATEWAY"),
                                      role=Role.INITIATOR), dd, {"FIX.4.4": dd})
    client = await Initiator.connect(session, host, port)
    await client.logon(reset=True)
    demo = Demo(client, venues, random.Random(args.seed))
    reader = asyncio.get_running_loop().create_task(demo.read())
    end = time.monotonic() + args.seconds
    try:
        while time.monotonic() < end:
            await demo.order()
            await demo.cancel_due()
            await asyncio.sleep(demo.rng.expovariate(1 / args.every))
            if sys.stderr.isatty():
                left = int(end - time.monotonic())
                print(f"\r{demo.sent} orders, {demo.reports} reports, {left} s left   ",
                      end="", file=sys.stderr, flush=True)
        await demo.cancel_due(everything=True)
        await asyncio.sleep(2)  # the last reports
        await asyncio.wait_for(gw.orders.idle(), 30)
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
        await client.logout()
        await client.close()
        await gw.stop()
        await store.close()
    print(f"\n{demo.sent} orders sent, {demo.reports} reports, stored in {args.store}; now:\n"
          f"  .venv/bin/fixgw report --store {args.store} --html report.html", file=sys.stderr)
    return 0


def _args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--store", default="sqlite:///data/report-demo.db")
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--every", type=float, default=0.25,
                    help="mean seconds between two orders")
    ap.add_argument("--seed", type=int, default=1)
    return ap.parse_args()


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main(_args())))
