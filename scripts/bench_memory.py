#!/usr/bin/env python3
"""Memory under steady load: does the gateway's RSS stay flat as orders go through?

``fixgw venue-sim`` runs as its own process (so the gateway holds only its own state), and
``fixgw run`` (SQLite store, file log on, pre-trade checks on, the venue ``paper-remote``)
takes marketable limit orders on BTC/USDT -- each acknowledged and filled, then forgotten by the
order path -- 100 in flight. After every ``--step`` orders the gateway's and the venue's RSS
are printed; the verdict compares the gateway's last RSS with the one after the first step
(imports, caches and the store's buffers have settled by then).

    .venv/bin/python scripts/bench_memory.py                       # 200,000 orders (~2 min)
    .venv/bin/python scripts/bench_memory.py --orders 40000 --step 10000

Target (the issue): growth under 5% over 200,000 orders.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import native, procs  # noqa: E402
from benchlib.client import LeanClient, OrderSpec  # noqa: E402

BIN = Path(sys.executable).parent
MARKETABLE = OrderSpec()  # buy 0.001 @ 98000 / sell 0.001 @ 96000 alternately: filled at once


def gateway_config(path: Path, tmp: Path, venue_port: int) -> Path:
    path.write_text(f"""
[gateway]
host = "127.0.0.1"
port = 0
sender_comp_id = "GATEWAY"
store = "sqlite:///{tmp / 'fixgw.db'}"
log_dir = "{tmp / 'log'}"

[[venue]]
name = "paper"
kind = "paper-remote"
host = "127.0.0.1"
port = {venue_port}

[[session]]
target_comp_id = "CLIENT1"
begin_string = "FIX.4.4"
default_venue = "paper"
rate_limit = 0

[session.risk]
max_order_qty = "100"
max_notional = "1000000"
price_band = "0.10"
max_open_orders = 5000
""")
    return path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--orders", type=int, default=200_000)
    ap.add_argument("--step", type=int, default=20_000)
    ap.add_argument("--window", type=int, default=100, help="orders in flight")
    args = ap.parse_args()
    native.refuse_stale()
    tmp = Path(tempfile.mkdtemp(prefix="fixgw-mem-"))
    venue = gw = None
    try:
        venue = procs.start("venue-sim", [str(BIN / "fixgw"), "venue-sim", "--port", "0"],
                            stderr_path=tmp / "venue.stderr", cwd=tmp)
        cfg = gateway_config(tmp / "gw.toml", tmp, venue.port)
        gw = procs.start("fixgw", [str(BIN / "fixgw"), "run", "--config", str(cfg)],
                         stderr_path=tmp / "fixgw.stderr", cwd=tmp)
        c = LeanClient(gw.host, gw.port)
        c.logon()
        print(f"{'orders':>9} {'gateway RSS MB':>15} {'venue RSS MB':>13} {'orders/s':>9}",
              flush=True)
        first: int | None = None
        last = 0
        done = 0
        rejected = 0
        while done < args.orders:
            n = min(args.step, args.orders - done)
            t0 = time.perf_counter()
            r = c.run_window(MARKETABLE, n, args.window, f"m{done}x", deadline_s=600)
            rate = n / (time.perf_counter() - t0)
            done += n
            rejected += r.rejected
            last = gw.rss_kb()
            if first is None:
                first = last
            print(f"{done:>9,} {last / 1024:>15.1f} {venue.rss_kb() / 1024:>13.1f} "
                  f"{rate:>9,.0f}", flush=True)
        c.logout()
        assert first is not None
        growth = (last - first) / first * 100
        print(f"gateway RSS after {args.step:,}: {first / 1024:.1f} MB; after {done:,}: "
              f"{last / 1024:.1f} MB; growth {growth:+.1f}% (target < 5%: "
              f"{'MET' if growth < 5 else 'NOT MET'}); {rejected} orders rejected")
        return 0
    finally:
        for p in (gw, venue):
            if p is not None:
                p.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
