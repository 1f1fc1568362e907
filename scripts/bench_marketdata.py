#!/usr/bin/env python3
"""Market data benchmark: how fast the gateway applies book updates, and how long a venue's
book change takes to reach a subscribed client as a MarketDataIncrementalRefresh (X).

1. ``apply``: ``gateway.marketdata.book.Book.apply`` of one-level BookUpdates (a price level
   changed), updates/s, and each venue connector's own book sync: decode the venue's
   WebSocket message bytes (generated in the venue's documented format), check the sequence
   (and OKX's CRC32 checksum), apply, updates/s.
2. ``to-socket``: the gateway (simulated venue, SQLite store in a temporary directory) runs
   in this process; a FIX client (gateway.initiator, over loopback TCP) subscribes to the
   venue's book (incremental, depth 10). Each round a resting order is placed straight at the
   venue, inside the spread (a new best bid), and the time from that call to the X on the
   client's socket is measured; then the order is canceled (another X, not timed). Prints
   p50 / p90 / p99 / max. Client and gateway share one event loop, so the figure includes the
   client's own reading.

    .venv/bin/python scripts/bench_marketdata.py [--updates 200000] [--rounds 500]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import statistics
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchlib import native  # noqa: E402

from connectors.base import BookUpdate, OrderRequest, OrderType, Side  # noqa: E402
from gateway.marketdata.book import Book  # noqa: E402


def bench_apply(n: int) -> float:
    book = Book("v", "BTC/USDT")
    base = Decimal("97000")
    step = Decimal("0.01")
    updates = [
        BookUpdate("BTC/USDT", ((base - step * (i % 200), Decimal(i % 7)),), (), i)
        for i in range(n)
    ]
    t0 = time.perf_counter()
    for u in updates:
        book.apply(u)
    return n / (time.perf_counter() - t0)


async def bench_to_socket(rounds: int) -> list[float]:
    from gateway.app import build_gateway
    from gateway.config import Config
    from gateway.fix.dictionary import standard
    from gateway.fix.session import Session, SessionID, SessionSettings
    from gateway.fix.states import Role
    from gateway.initiator import Initiator
    from gateway.store.store import SessionStore

    with tempfile.TemporaryDirectory() as tmp:
        cfg = Config.model_validate({
            "gateway": {"host": "127.0.0.1", "port": 0, "log_dir": None,
                        "store": f"sqlite:///{Path(tmp) / 'fixgw.db'}"},
            "venue": [{"name": "paper", "tick_interval": 3600}],
            "session": [{"target_comp_id": "MD1", "begin_string": "FIX.4.4",
                         "default_venue": "paper"}],
        })
        store = SessionStore(cfg.gateway.store)
        await store.start()
        gw = build_gateway(cfg, store)
        host, port = await gw.start()
        assert gw.orders is not None
        venue = gw.orders.connectors["paper"]
        session = Session(SessionSettings(SessionID("FIX.4.4", "MD1", "GATEWAY"),
                                          role=Role.INITIATOR), standard("FIX.4.4"))
        client = await Initiator.connect(session, host, port)
        await client.logon(reset=True)
        await client.send(b"V", [(262, b"bench"), (263, b"1"), (264, b"10"), (265, b"1"),
                                 (267, b"2"), (269, b"0"), (269, b"1"), (146, b"1"),
                                 (55, b"BTC/USDT")])
        first = await client.receive(10.0)
        assert first is not None and first.msg_type == b"W", first
        exchange = getattr(venue, "exchange")  # noqa: B009 - the simulated venue
        best = exchange.book("BTC/USDT").best_bid()
        latencies: list[float] = []
        for i in range(rounds):
            cid = f"bench{i}"
            t0 = time.perf_counter()
            await venue.place(OrderRequest(cid, "BTC/USDT", Side.BUY, OrderType.LIMIT,
                                           Decimal("0.001"), best + Decimal("0.01")))
            msg = await client.receive(10.0)
            latencies.append(time.perf_counter() - t0)
            assert msg is not None and msg.msg_type == b"X", msg
            await venue.cancel("BTC/USDT", cid)
            msg = await client.receive(10.0)
            assert msg is not None and msg.msg_type == b"X", msg
        await client.logout()
        await client.close()
        await gw.stop()
        await store.close()
        return latencies


def _okx_messages(n: int, checksums: bool) -> tuple[list[bytes], list[bytes]]:
    """A 400-level snapshot and ``n`` one-level updates of OKX's ``books`` channel, seqIds
    chained; with ``checksums`` each carries the right CRC32 (else 0, as after OKX's
    deprecation of the field)."""
    from connectors.okx.book import BookSync

    levels = 200
    snap = {"arg": {"channel": "books", "instId": "BTC-USDT"}, "action": "snapshot",
            "data": [{"asks": [[f"{97000 + i / 10:.1f}", "1.5", "0", "2"]
                               for i in range(1, levels + 1)],
                      "bids": [[f"{97000 - i / 10:.1f}", "1.5", "0", "2"]
                               for i in range(levels)],
                      "ts": "1", "checksum": 0, "prevSeqId": -1, "seqId": 1}]}
    model = BookSync("BTC/USDT", "BTC-USDT")
    if checksums:
        model.receive(json.dumps(snap))
        snap["data"][0]["checksum"] = model.checksum()  # type: ignore[index]
    first = json.dumps(snap).encode()
    model = BookSync("BTC/USDT", "BTC-USDT")
    model.receive(first)
    out = []
    for i in range(n):
        side = "bids" if i % 2 else "asks"
        px = 97000 - (i % 50) / 10 if side == "bids" else 97000 + (1 + i % 50) / 10
        msg = {"arg": {"channel": "books", "instId": "BTC-USDT"}, "action": "update",
               "data": [{"asks": [], "bids": [], "ts": "1", "checksum": 0,
                         "prevSeqId": i + 1, "seqId": i + 2}]}
        msg["data"][0][side] = [[f"{px:.1f}", str(1 + i % 5), "0", "1"]]  # type: ignore[index]
        if checksums:
            model.receive(json.dumps(msg))
            msg["data"][0]["checksum"] = model.checksum()  # type: ignore[index]
        out.append(json.dumps(msg).encode())
    return [first], out


def _timed(sync: object, first: list[bytes], updates: list[bytes]) -> float:
    receive = getattr(sync, "receive")  # noqa: B009
    for raw in first:
        receive(raw)
    t0 = time.perf_counter()
    for raw in updates:
        receive(raw)
    elapsed = time.perf_counter() - t0
    assert getattr(sync, "synced"), "the benchmark's own stream went out of sync"  # noqa: B009
    assert getattr(sync, "resyncs") == 0  # noqa: B009
    return len(updates) / elapsed


def bench_okx(n: int, checksums: bool) -> float:
    from connectors.okx.book import BookSync

    first, updates = _okx_messages(n, checksums)
    return _timed(BookSync("BTC/USDT", "BTC-USDT"), first, updates)


def bench_bybit(n: int) -> float:
    from connectors.bybit.book import BookSync

    def msg(kind: str, u: int, bids: list[list[str]], asks: list[list[str]]) -> bytes:
        return json.dumps({"topic": "orderbook.50.BTCUSDT", "type": kind, "ts": 1,
                           "data": {"s": "BTCUSDT", "b": bids, "a": asks, "u": u, "seq": u},
                           "cts": 1}).encode()

    first = [msg("snapshot", 1, [[f"{97000 - i / 10:.1f}", "1.5"] for i in range(50)],
                 [[f"{97000 + i / 10:.1f}", "1.5"] for i in range(1, 51)])]
    updates = []
    for i in range(n):
        level = [[f"{97000 - (i % 50) / 10:.1f}", str(1 + i % 5)]]
        updates.append(msg("delta", i + 2, level if i % 2 else [], [] if i % 2 else [
            [f"{97000 + (1 + i % 50) / 10:.1f}", str(1 + i % 5)]]))
    return _timed(BookSync("BTC/USDT", "BTCUSDT"), first, updates)


def bench_binance(n: int, levels: int = 1) -> float:
    """Binance's combined-stream ``depthUpdate`` frames (``levels`` changed levels each, a
    random walk over 200 levels a side, consecutive update ids) after a snapshot; the consumer
    takes what changed every 10th frame. Updates (frames) per second."""
    import random

    from connectors.binance.book import DepthSync

    rng = random.Random(1)  # noqa: S311 - test data
    frames, uid = [], 1001
    for _ in range(n):
        b = [[f"{97000 - rng.randrange(200) * 0.01:.2f}", f"{rng.randrange(0, 50) / 10:.8f}"]
             for _ in range(levels // 2)]
        a = [[f"{97000.01 + rng.randrange(200) * 0.01:.2f}", f"{rng.randrange(0, 50) / 10:.8f}"]
             for _ in range(levels - levels // 2)]
        frames.append(json.dumps({"stream": "btcusdt@depth@100ms", "data": {
            "e": "depthUpdate", "E": 1_700_000_000_000, "s": "BTCUSDT", "U": uid,
            "u": uid + levels - 1, "b": b, "a": a}}).encode())
        uid += levels
    sync = DepthSync("BTC/USDT")
    snap = {"lastUpdateId": 1000,
            "bids": [[f"{97000 - i * 0.01:.2f}", "1"] for i in range(200)],
            "asks": [[f"{97000.01 + i * 0.01:.2f}", "1"] for i in range(200)]}
    assert sync.snapshot(json.dumps(snap).encode(), 0)
    t0 = time.perf_counter()
    for i, raw in enumerate(frames):
        sync.feed(raw)
        if i % 10 == 0:
            sync.take()
    elapsed = time.perf_counter() - t0
    assert sync.stats.gaps == 0 and sync.stats.resyncs == 0
    return n / elapsed


def _sync_benchmarks(n: int) -> list[tuple[str, float]]:
    """Each venue connector's own book sync (its sans-I/O class): decode the venue's
    WebSocket message bytes, check the sequence (and OKX's checksum), apply."""
    return [("binance (1 level a frame)", bench_binance(n)),
            ("binance (10 levels a frame: frames/s)", bench_binance(n // 10, 10)),
            ("okx (checksum verified)", bench_okx(n, True)),
            ("okx (checksum 0)", bench_okx(n, False)),
            ("bybit", bench_bybit(n))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--updates", type=int, default=200_000)
    ap.add_argument("--rounds", type=int, default=500)
    ap.add_argument("--sync-updates", type=int, default=100_000)
    args = ap.parse_args()
    native.refuse_stale()
    logging.basicConfig(level=logging.WARNING)
    rate = bench_apply(args.updates)
    print(f"Book.apply, one-level updates: {rate:,.0f} updates/s ({args.updates:,})")
    for venue, r in _sync_benchmarks(args.sync_updates):
        print(f"{venue} book sync, decode + apply: {r:,.0f} updates/s")
    lat = sorted(asyncio.run(bench_to_socket(args.rounds)))
    ms = [x * 1000 for x in lat]
    q = statistics.quantiles(ms, n=100)
    print(f"venue change -> X on the client socket, {len(ms)} rounds: p50 {q[49]:.3f} ms, "
          f"p90 {q[89]:.3f} ms, p99 {q[98]:.3f} ms, max {ms[-1]:.3f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
