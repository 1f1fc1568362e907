#!/usr/bin/env python3
"""What an order costs and what a round trip costs: fixgw and the QuickFIX peer at 1, 2, 4, 8
and 100 orders in flight.

With ``w`` orders in flight the server handles them in batches of about ``w``: one read, one
commit of their intents, one of their reports, one write. Its CPU per order is then close to
``a + b / w``: ``a`` the work of one order (parsing, checks, the order's rows, its reports),
``b`` the work of one round trip whatever it carries (the commits' fixed part -- BEGIN, COMMIT,
the write-ahead log's pages --, the socket calls, the event loop's turns, waking up). This
prints both servers' orders/s, p50 and CPU per order (all threads) at each window, and the
least-squares ``a`` and ``b`` of each: at 1 in flight a server pays ``a + b``, at 100 about ``a``.

    .venv/bin/python scripts/window_sweep.py [--orders 3000] [--windows 1,2,4,8,100]
        [--engines fixgw,peer-group] [--rounds 2]

Each engine runs in its own process (fixgw: ``benchlib/gw_inproc.py``, the benchmarks'
configuration without busy polling; the peer: ``scripts/qf_peer.py``), one client session,
marketable orders (``benchlib.client``); the engines alternate round by round.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_orders import MARKETABLE, _counters, _inproc, start_peer  # noqa: E402
from benchlib import native, procs  # noqa: E402
from benchlib.client import LeanClient  # noqa: E402


def fit(points: list[tuple[int, float]]) -> tuple[float, float]:
    """Least squares of ``cpu = a + b / w`` over (w, cpu) points: (a, b)."""
    xs = [1.0 / w for w, _ in points]
    ys = [cpu for _, cpu in points]
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx
    return my - b * mx, b


def sweep(server: procs.Server, windows: list[int], orders: int, tag: str
          ) -> list[tuple[int, float, float, float, float]]:
    """(window, orders/s, p50 ms, CPU us an order, commits an order) at each window."""
    c = LeanClient(server.host, server.port)
    c.logon()
    c.run_window(MARKETABLE, 1000, 100, f"{tag}w", deadline_s=600)
    rows = []
    for w in windows:
        n = orders if w < 100 else orders * 4
        c0 = _counters(server)
        cpu0 = server.cpu_s()
        r = c.run_window(MARKETABLE, n, w, f"{tag}x{w}", deadline_s=600)
        cpu = server.cpu_s() - cpu0
        c1 = _counters(server)
        commits = (int(c1["commits"]) - int(c0["commits"])) / r.count  # type: ignore[call-overload]
        rows.append((w, r.rate, r.pct(50), cpu * 1e6 / r.count, commits))
    c.logout()
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--orders", type=int, default=3000, help="orders per window (x4 at 100)")
    ap.add_argument("--windows", default="1,2,4,8,100")
    ap.add_argument("--engines", default="fixgw,peer-group")
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    windows = [int(w) for w in args.windows.split(",")]
    engines = args.engines.split(",")
    if "fixgw" in engines:
        native.refuse_stale()
    tmp = Path(tempfile.mkdtemp(prefix="fixgw-sweep-"))
    points: dict[str, list[tuple[int, float]]] = {e: [] for e in engines}
    for rnd in range(args.rounds):
        for engine in engines if rnd % 2 == 0 else reversed(engines):
            name = f"{engine}-{rnd}"
            server = (_inproc(tmp, name) if engine == "fixgw"
                      else start_peer(tmp, name, engine.split("-")[1]))
            try:
                rows = sweep(server, windows, args.orders, f"r{rnd}")
            finally:
                server.stop()
            for w, rate, p50, cpu, commits in rows:
                print(f"round {rnd} {engine:<11} {w:>3} in flight: {rate:>7,.0f} orders/s  "
                      f"p50 {p50:6.3f} ms  {cpu:5.0f} us CPU/order  {commits:.2f} commits/order",
                      flush=True)
                points[engine].append((w, cpu))
    if len(set(windows)) < 2:
        return  # (a fit needs two windows at least)
    for engine, pts in points.items():
        a, b = fit(pts)
        print(f"{engine:<11} CPU an order ~ {a:.0f} us + {b:.0f} us / orders in flight "
              f"(an order's own work {a:.0f} us, a round trip's {b:.0f} us)")


if __name__ == "__main__":
    main()
