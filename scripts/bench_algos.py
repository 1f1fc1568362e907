#!/usr/bin/env python3
"""The execution algorithms on the simulated market: TWAP, VWAP, POV and iceberg, one after
the other, each a buy over the same window, and how each did.

One process: the gateway is built in-process (``build_gateway``, port 0, SQLite store in a temp
dir) on the paper venue with a moving BTC/USDT market (a tick every 50 ms, the mid's random
walk, synthetic market trades: ``--trades`` a tick of ``--size`` BTC on average); a FIX 4.4
client on the same loop (the gateway's own initiator session, :mod:`gateway.initiator`) sends
each order and reads its reports until it ends. The market's public trades are recorded from
the venue's feed (ours are among them). For each strategy:

* filled, average price (AvgPx) and the number of venue orders it took;
* slippage: the average price against the mid when the order was sent, in basis points (a buy:
  positive is worse);
* tracking: the average price against the market's VWAP over the order's life (send to end),
  in basis points;
* for the POV, the realised rate: what it filled over the market's volume in its window
  (ours included), against the target.

The orders (``--seconds`` window, default 20): TWAP of ``--qty`` in 1 s slices, VWAP of
``--qty`` in 1 s buckets (flat profile: the synthetic flow is even in time), both limit at the
arrival mid + 1% (they take liquidity); POV at 10% as a market order of 100 x ``--qty`` (it
does not fill in the window) until its ExpireTime; iceberg of ``--qty`` shown ``--qty``/10 at a
time, a limit 1 bp under the mid (it waits for the market to come down to it: the spread is
two ticks, 0.002 bp, and the mid moves about 0.2 bp a tick), cancelled at the end of the window
if not filled by then.

    .venv/bin/python scripts/bench_algos.py                  # 20 s each, about 90 s
    .venv/bin/python scripts/bench_algos.py --seconds 10 --seed 3
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import logging
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from benchlib import native

from connectors.base import PublicTrade
from connectors.paper.venue import PaperConnector
from gateway.app import build_gateway
from gateway.config import Config
from gateway.fix.custom import ICEBERG, TWAP
from gateway.fix.dictionary import standard
from gateway.fix.message import Message
from gateway.fix.session import Session, SessionID, SessionSettings
from gateway.fix.states import Role
from gateway.initiator import Initiator
from gateway.orders.iceberg import Iceberg
from gateway.orders.pov import POV, Pov
from gateway.orders.twap import Twap
from gateway.orders.vwap import VWAP, Vwap
from gateway.store.store import SessionStore

SYMBOL = "BTC/USDT"
NS = 1_000_000_000
BP = Decimal(10_000)
RATE = Decimal("0.1")


def _config(store: str, seed: int, trades: str, size: str) -> Config:
    return Config.model_validate({
        "gateway": {"host": "127.0.0.1", "port": 0, "store": store, "log_dir": None},
        "venue": [{"name": "paper", "seed": seed, "tick_interval": 0.05,
                   "market": [{"symbol": SYMBOL, "trade_rate": trades, "trade_size": size}]}],
        "session": [{"target_comp_id": "CLIENT1", "begin_string": "FIX.4.4",
                     "default_venue": "paper"}],
    })


def _fixtime(ns: int) -> bytes:
    return datetime.fromtimestamp(ns / 1e9, UTC).strftime("%Y%m%d-%H:%M:%S.%f")[:-3].encode()


@dataclass
class Result:
    name: str
    filled: Decimal
    quantity: Decimal
    avg_px: Decimal
    arrival_mid: Decimal
    market_vwap: Decimal | None
    market_volume: Decimal
    children: int
    seconds: float

    def row(self) -> str:
        slip = (self.avg_px - self.arrival_mid) / self.arrival_mid * BP if self.filled else None
        track = (None if not self.filled or self.market_vwap is None
                 else (self.avg_px - self.market_vwap) / self.market_vwap * BP)
        rate = (f"{self.filled / self.market_volume:.4f} (target {RATE})"
                if self.name == "POV" and self.market_volume else "")
        avg = f"{self.avg_px:.2f}" if self.filled else "-"
        return (f"{self.name:8} {self.filled:>9} of {self.quantity:<6} {avg:>10} "
                f"{_bp(slip):>9} {_bp(track):>9} {self.children:>8} {self.seconds:>6.1f}  {rate}")


def _bp(v: Decimal | None) -> str:
    return "-" if v is None else f"{v:+.2f}"


class Bench:
    def __init__(self, client: Initiator, venue: PaperConnector, seconds: float) -> None:
        self.client = client
        self.venue = venue
        self.seconds = seconds
        self.tape: list[tuple[int, PublicTrade]] = []
        self.n = 0

    async def record(self) -> None:
        """The market's public trades, with when they were received."""
        async for ev in self.venue.market_data(SYMBOL):
            if isinstance(ev, PublicTrade):
                self.tape.append((time.time_ns(), ev))

    def _book(self) -> tuple[Decimal, Decimal]:
        book = self.venue.exchange.book(SYMBOL)
        bid, ask = book.best_bid(), book.best_ask()
        assert bid is not None and ask is not None
        return bid, ask

    async def run(self, name: str, qty: Decimal, fields: list[tuple[int, bytes]],
                  cancel_at_end: bool = False) -> Result:
        self.n += 1
        cl = f"{name}-{self.n}".encode()
        bid, ask = self._book()
        mid = (bid + ask) / 2
        placed = self._venue_orders()
        start = time.time_ns()
        body = [(11, cl), (21, b"1"), (38, str(qty).encode()), *fields, (54, b"1"),
                (55, SYMBOL.encode()), (60, _fixtime(start))]
        await self.client.send(b"D", sorted(body, key=lambda f: f[0]))
        last = await self._until_done(cl, start, cancel_at_end, qty)
        end = time.time_ns()
        window = [t for at, t in self.tape if start <= at <= end]
        volume = sum((t.size for t in window), Decimal(0))
        vwap = (sum((t.price * t.size for t in window), Decimal(0)) / volume if volume
                else None)
        return Result(name, Decimal(last.get_str(14) or "0"), qty,
                      Decimal(last.get_str(6) or "0"), mid, vwap, volume,
                      self._venue_orders() - placed, (end - start) / NS)

    def _venue_orders(self) -> int:
        return sum(1 for _ in self.venue.exchange.orders())

    async def _until_done(self, cl: bytes, start: int, cancel_at_end: bool,
                          qty: Decimal) -> Message:
        deadline = start / NS + self.seconds + 10
        cancel_at = start / NS + self.seconds
        canceled = False
        while True:
            now = time.time()
            if cancel_at_end and not canceled and now >= cancel_at:
                canceled = True
                await self.client.send(b"F", [(11, cl + b"-x"), (38, str(qty).encode()),
                                              (41, cl), (54, b"1"), (55, SYMBOL.encode()),
                                              (60, _fixtime(time.time_ns()))])
            wait = (cancel_at if cancel_at_end and not canceled else deadline) - now
            m = await self.client.receive(max(0.05, wait))
            if m is None:
                if time.time() >= deadline:
                    raise RuntimeError(f"{cl.decode()}: not ended within the window + 10 s")
                continue
            if m.msg_type != b"8" or m.get(37) is None:
                continue
            if m.get(11) not in (cl, cl + b"-x") and m.get(41) != cl:
                continue
            if m.get(39) == b"8":
                raise RuntimeError(f"{cl.decode()} rejected: {m.get_str(58)}")
            if m.get(39) in (b"2", b"4", b"C"):
                return m


async def main(args: argparse.Namespace) -> None:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'fixgw.db'}"
        store = SessionStore(url)
        await store.start()
        seconds = args.seconds
        strategies = {
            TWAP: functools.partial(Twap, slice_seconds=1.0),
            VWAP: functools.partial(Vwap, bucket_seconds=1.0),
            POV: functools.partial(Pov, interval=0.25),
            ICEBERG: Iceberg,
        }
        gw = build_gateway(_config(url, args.seed, args.trades, args.size), store,
                           strategies=strategies)
        host, port = await gw.start()
        assert gw.orders is not None
        venue = gw.orders.connectors["paper"]
        assert isinstance(venue, PaperConnector)
        dd = standard("FIX.4.4")
        session = Session(SessionSettings(SessionID("FIX.4.4", "CLIENT1", "GATEWAY"),
                                          role=Role.INITIATOR), dd, {"FIX.4.4": dd})
        client = await Initiator.connect(session, host, port)
        await client.logon(reset=True)
        bench = Bench(client, venue, seconds)
        recorder = asyncio.get_running_loop().create_task(bench.record())
        await asyncio.sleep(1.0)  # the market trades a while first
        qty = Decimal(args.qty)
        tick = venue.exchange.market(SYMBOL).tick_size
        results: list[Result] = []
        try:
            for name in args.only or ("TWAP", "VWAP", "POV", "iceberg"):
                bid, ask = bench._book()
                cap = str(((bid + ask) / 2 * Decimal("1.01")).quantize(tick)).encode()
                end = _fixtime(time.time_ns() + int(seconds * NS))
                if name == "TWAP":
                    fields = [(40, b"2"), (44, cap), (59, b"1"), (126, end), (847, b"1000")]
                    results.append(await bench.run(name, qty, fields))
                elif name == "VWAP":
                    fields = [(40, b"2"), (44, cap), (59, b"1"), (126, end), (847, b"1")]
                    results.append(await bench.run(name, qty, fields))
                elif name == "POV":
                    fields = [(40, b"1"), (59, b"1"), (126, end), (847, b"2"),
                              (849, str(RATE).encode())]
                    results.append(await bench.run(name, qty * 100, fields))
                else:  # passive: 1 bp under the mid (the mid moves ~0.2 bp a tick)
                    price = str(((bid + ask) / 2 * Decimal("0.9999")).quantize(tick)).encode()
                    fields = [(40, b"2"), (44, price), (59, b"1"), (111, str(qty / 10).encode())]
                    results.append(await bench.run(name, qty, fields, cancel_at_end=True))
                print(f"  {name} done", file=sys.stderr, flush=True)
        finally:
            recorder.cancel()
            await client.logout()
            await client.close()
            await gw.stop()
            await store.close()
    print(f"BTC/USDT on the paper venue (seed {args.seed}): a tick every 50 ms, "
          f"{args.trades} synthetic trades a tick of {args.size} BTC on average; "
          f"windows of {seconds:g} s")
    print(f"{'strategy':8} {'filled':>9}    {'qty':<6} {'avg px':>10} {'slip bp':>9} "
          f"{'track bp':>9} {'children':>8} {'secs':>6}  POV rate")
    for r in results:
        print(r.row())


def _args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--seconds", type=float, default=20.0, help="each order's window")
    ap.add_argument("--qty", default="0.2", help="BTC of the TWAP, VWAP and iceberg")
    ap.add_argument("--trades", default="1", help="synthetic market trades a tick (mean)")
    ap.add_argument("--size", default="0.01", help="their mean size, BTC")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--only", nargs="*", choices=("TWAP", "VWAP", "POV", "iceberg"))
    args = ap.parse_args()
    native.refuse_stale()
    return args


if __name__ == "__main__":
    asyncio.run(main(_args()))
