#!/usr/bin/env python3
"""Binance diff depth frames decoded and applied to the local book, per second, no I/O.

Builds ``--frames`` combined-stream ``depthUpdate`` frames (``--levels`` changed levels each,
a random walk over 200 price levels a side, consecutive update ids), takes a snapshot, then
times :meth:`connectors.binance.book.DepthSync.feed` over them (msgspec decode, Decimal
conversion, the U/u checks, the book and the consumer's pending changes), with a consumer that
takes what changed every ``--take-every`` frames.

    .venv/bin/python scripts/bench_depth.py
    .venv/bin/python scripts/bench_depth.py --frames 200000 --levels 20
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from connectors.binance.book import DepthSync  # noqa: E402


def frames(n: int, levels: int, seed: int = 1) -> list[bytes]:
    rng = random.Random(seed)  # noqa: S311 - test data
    out, uid = [], 1001
    for _ in range(n):
        b = [[f"{97000 - rng.randrange(200) * 0.01:.2f}", f"{rng.randrange(0, 50) / 10:.8f}"]
             for _ in range(levels // 2)]
        a = [[f"{97000.01 + rng.randrange(200) * 0.01:.2f}", f"{rng.randrange(0, 50) / 10:.8f}"]
             for _ in range(levels - levels // 2)]
        out.append(orjson.dumps({"stream": "btcusdt@depth@100ms", "data": {
            "e": "depthUpdate", "E": 1_700_000_000_000, "s": "BTCUSDT", "U": uid,
            "u": uid + levels - 1, "b": b, "a": a}}))
        uid += levels
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=100_000)
    ap.add_argument("--levels", type=int, default=10)
    ap.add_argument("--take-every", type=int, default=10)
    args = ap.parse_args()
    data = frames(args.frames, args.levels)
    sync = DepthSync("BTC/USDT")
    snap = {"lastUpdateId": 1000,
            "bids": [[f"{97000 - i * 0.01:.2f}", "1"] for i in range(200)],
            "asks": [[f"{97000.01 + i * 0.01:.2f}", "1"] for i in range(200)]}
    assert sync.snapshot(orjson.dumps(snap), 0)
    every = max(1, args.take_every)
    t0 = time.perf_counter()
    for i, raw in enumerate(data):
        sync.feed(raw)
        if i % every == 0:
            sync.take()
    dt = time.perf_counter() - t0
    s = sync.stats
    assert s.gaps == 0 and s.resyncs == 0
    print(f"{args.frames} frames x {args.levels} levels: {args.frames / dt:,.0f} frames/s, "
          f"{args.frames * args.levels / dt:,.0f} levels/s ({dt * 1e6 / args.frames:.1f} us a "
          "frame)")


if __name__ == "__main__":
    main()
