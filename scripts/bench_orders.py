#!/usr/bin/env python3
"""Order-path load benchmark: fixgw against QuickFIX, over loopback, each server in its own process.

An initiator (scripts/benchlib/client.py: one blocking socket, hand-built messages, no
validation) sends limit NewOrderSingles on BTC/USDT that are marketable on the simulated venue
(buy 0.001 at 98000, sell 0.001 at 96000 alternately: each is acknowledged and filled, the
balances hold), keeping 1 and then 100 orders unanswered (an order is answered by its Fill ER).
Reported: orders/s over the run and the latency from sending an order to its FIRST
ExecutionReport (p50, p99).

Servers, each a separate process:

* echo     -- scripts/benchlib/echo_acceptor.py: answers New+Fill with no engine at all; shows
              the client's own ceiling;
* fixgw    -- ``fixgw run --config <tmp toml>``: SQLite store in a temp dir, FileLog on,
              pre-trade checks on (the embedded configuration's limits, max_open_orders raised);
* QuickFIX -- scripts/qf_acceptor.py: C++ engine + Python application answering New+Fill,
              FileStore + FileLog on, FIX 4.4 dictionary validation;
* fixgw on PostgreSQL (a scratch database created on --pg-url's server and dropped after).

Then: memory per open order (VmRSS of a fresh gateway before/after --resting resting buys at
92000, GTC) and restart time with --restart-orders orders in the store (pushed through the
gateway, then the process is restarted; time from spawn to its ``listening on`` line).

    .venv/bin/python scripts/bench_orders.py                      # everything (~5 min)
    .venv/bin/python scripts/bench_orders.py --only load --no-pg   # the comparison table only
    .venv/bin/python scripts/bench_orders.py --only profile --profile-dir /tmp/prof [--cprofile]
        # fixgw/SQLite at 100 in flight: CPU per thread and store use per order (no profiler),
        # then py-spy over every thread (.venv/bin/pip install py-spy), then cProfile

Targets (the issue): fixgw (SQLite, checks on) >= 2x QuickFIX's orders/s; fixgw's p50 with 1 in
flight no worse than QuickFIX's.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import procs  # noqa: E402
from benchlib.client import LeanClient, OrderSpec, RunResult  # noqa: E402
from benchlib.gwconfig import write_config  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
MARKETABLE = OrderSpec()  # buy 0.001 @ 98000 / sell 0.001 @ 96000 (mid ~97000), DAY
RESTING = OrderSpec(buy_px=b"92000", sides=b"1", tif=b"1")  # buys 5% under the mid, GTC
DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


@dataclass
class Row:
    engine: str
    result: RunResult
    cpu_s: float
    """CPU time the server process used during the run (all its threads)."""

    @property
    def cpu_us_per_order(self) -> float:
        return self.cpu_s * 1e6 / self.result.count

    @property
    def cores(self) -> float:
        return self.cpu_s / self.result.elapsed


def start_fixgw(tmp: Path, name: str, store: str, log: bool = True) -> procs.Server:
    cfg = write_config(tmp / f"{name}.toml", store=store,
                       log_dir=(tmp / f"{name}-log") if log else None)
    return procs.start(name, [str(BIN / "fixgw"), "run", "--config", str(cfg)],
                       stderr_path=tmp / f"{name}.stderr", cwd=tmp)


def start_qf(tmp: Path) -> procs.Server:
    return procs.start("quickfix", [sys.executable, str(ROOT / "scripts" / "qf_acceptor.py"),
                                    "--workdir", str(tmp / "qf")],
                       stderr_path=tmp / "qf.stderr")


def start_echo(tmp: Path) -> procs.Server:
    return procs.start("echo", [sys.executable,
                                str(ROOT / "scripts" / "benchlib" / "echo_acceptor.py")],
                       stderr_path=tmp / "echo.stderr")


def load(server: procs.Server, engine: str, args: argparse.Namespace) -> list[Row]:
    """Warm-up, then the 1-in-flight and the 100-in-flight runs on one connection."""
    c = LeanClient(server.host, server.port)
    c.logon()
    rows = []
    try:
        c.run_window(MARKETABLE, args.warmup, 100, "w", deadline_s=args.deadline)
        for window, n in ((1, args.n1), (100, args.n100)):
            cpu0 = server.cpu_s()
            r = c.run_window(MARKETABLE, n, window, f"r{window}x", deadline_s=args.deadline)
            row = Row(engine, r, server.cpu_s() - cpu0)
            rows.append(row)
            print(f"  {engine:<18} {window:>3} in flight: {r.rate:>8,.0f} orders/s  "
                  f"p50 {r.pct(50):.3f} ms  p99 {r.pct(99):.3f} ms  "
                  f"server CPU {row.cpu_us_per_order:,.0f} us/order ({row.cores:.2f} cores)  "
                  f"({r.count} orders, {r.rejected} rejected)", flush=True)
    finally:
        c.logout()
    return rows


def table(rows: list[Row]) -> str:
    out = [f"{'engine':<22} {'in-flight':>9} {'orders':>7} {'orders/s':>9} {'p50 ms':>8} "
           f"{'p99 ms':>8} {'server CPU us/order':>20}"]
    for row in rows:
        r = row.result
        out.append(f"{row.engine:<22} {r.window:>9} {r.count:>7} {r.rate:>9,.0f} "
                   f"{r.pct(50):>8.3f} {r.pct(99):>8.3f} {row.cpu_us_per_order:>20,.0f}")
    return "\n".join(out)


def verdict(rows: list[Row]) -> str:
    by = {(r.engine, r.result.window): r.result for r in rows}
    lines = []
    for w in (1, 100):
        gw, qf = by.get(("fixgw/sqlite", w)), by.get(("quickfix", w))
        if gw and qf:
            ratio = gw.rate / qf.rate
            lines.append(f"{w:>3} in flight: fixgw/QuickFIX orders/s = {ratio:.2f}x "
                         f"(target >= 2x: {'MET' if ratio >= 2 else 'NOT MET'})")
    gw, qf = by.get(("fixgw/sqlite", 1)), by.get(("quickfix", 1))
    if gw and qf:
        ok = gw.pct(50) <= qf.pct(50)
        lines.append(f"p50 at 1 in flight: fixgw {gw.pct(50):.3f} ms vs QuickFIX "
                     f"{qf.pct(50):.3f} ms (target no worse: {'MET' if ok else 'NOT MET'})")
    return "\n".join(lines)


def memory(tmp: Path, args: argparse.Namespace) -> None:
    s = start_fixgw(tmp, "fixgw-mem", f"sqlite:///{tmp / 'mem.db'}")
    try:
        c = LeanClient(s.host, s.port)
        c.logon()
        c.run_window(MARKETABLE, args.warmup, 100, "w", deadline_s=args.deadline)
        time.sleep(1.0)
        before = s.rss_kb()
        r = c.run_window(RESTING, args.resting, 100, "m", answer="first",
                         deadline_s=args.deadline)
        time.sleep(2.0)  # the last snapshots commit, the writer goes idle
        after = s.rss_kb()
        hwm = procs.status_kb(s.pid, "VmHWM")
        per = (after - before) * 1024 / args.resting
        print(f"  {args.resting} resting orders ({r.rate:,.0f} orders/s, {r.rejected} "
              f"rejected): VmRSS {before / 1024:.1f} MiB -> {after / 1024:.1f} MiB "
              f"(VmHWM {hwm / 1024:.1f} MiB) = {per:,.0f} bytes per open order "
              "(gateway + in-process simulated venue)", flush=True)
        c.logout()
    finally:
        s.stop()


def restart(tmp: Path, args: argparse.Namespace) -> None:
    db = tmp / "restart.db"
    store = f"sqlite:///{db}"
    s = start_fixgw(tmp, "fixgw-restart", store)
    print(f"  start with an empty store (migrations included): {s.startup_s:.2f} s", flush=True)
    try:
        c = LeanClient(s.host, s.port)
        c.logon()
        t0 = time.perf_counter()
        done = 0
        chunk = 20_000
        while done < args.restart_orders:
            n = min(chunk, args.restart_orders - done)
            c.run_window(MARKETABLE, n, 100, f"p{done}x", deadline_s=args.deadline)
            done += n
        print(f"  populated {done} filled orders through the gateway in "
              f"{time.perf_counter() - t0:.0f} s", flush=True)
        c.logout()
    finally:
        s.stop()
    size = sum(p.stat().st_size for p in tmp.glob("restart.db*")) / 2**20
    times = []
    for i in range(args.restarts):
        s = start_fixgw(tmp, "fixgw-restart", store)
        times.append(s.startup_s)
        rss = s.rss_kb()
        s.stop()
        print(f"  restart {i + 1}: {s.startup_s:.2f} s to 'listening on' (VmRSS then "
              f"{rss / 1024:.0f} MiB)", flush=True)
    times.sort()
    print(f"  restart with {args.restart_orders:,} orders in the store ({size:.0f} MiB SQLite): "
          f"median {times[len(times) // 2]:.2f} s", flush=True)


def interpreter_floor() -> float:
    """Time to spawn the venv's Python and import what ``fixgw run`` imports (best of 3)."""
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import gateway.cli, gateway.app, "
                        "gateway.store.sessions, gateway.store.migrate"],
                       check=True, cwd=ROOT, timeout=60)
        best = min(best, time.perf_counter() - t0)
    return best


def _inproc(tmp: Path, name: str, extra: list[str] = ()) -> procs.Server:  # type: ignore[assignment]
    cfg = write_config(tmp / f"{name}.toml", store=f"sqlite:///{tmp / (name + '.db')}",
                       log_dir=tmp / f"{name}-log")
    return procs.start(name, [sys.executable, str(ROOT / "scripts" / "benchlib" / "gw_inproc.py"),
                              "--config", str(cfg), *extra],
                       stderr_path=tmp / f"{name}.stderr", cwd=tmp)


def profile(tmp: Path, args: argparse.Namespace) -> None:
    """(1) counters without a profiler, (2) py-spy over every thread, (3) optionally cProfile."""
    import json

    out_dir = args.profile_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    # (1) where the CPU goes by thread, and how the store is used, per order
    s = _inproc(tmp, "fixgw-count")
    try:
        c = LeanClient(s.host, s.port)
        c.logon()
        c.run_window(MARKETABLE, args.warmup, 100, "w", deadline_s=args.deadline)
        s.proc.send_signal(signal.SIGUSR1)
        time.sleep(0.2)
        cpu0 = s.cpu_s()
        r = c.run_window(MARKETABLE, args.n100, 100, "r", deadline_s=args.deadline)
        cpu = s.cpu_s() - cpu0
        c.logout()
    finally:
        s.stop()
    stats = json.loads(s.tail.decode().strip().splitlines()[-1])
    n = r.count
    loop_cpu = stats["loop_cpu_s"]
    print(f"  no profiler: {r.rate:,.0f} orders/s; process CPU {cpu * 1e6 / n:,.0f} us/order "
          f"({cpu / r.elapsed:.2f} cores), of which event loop {loop_cpu * 1e6 / n:,.0f} us, "
          f"other threads (store writer, file log) {(cpu - loop_cpu) * 1e6 / n:,.0f} us")
    print(f"  store: {stats['commits'] / n:.2f} commits/order, {stats['requests'] / n:.2f} "
          f"requests/order (writes + reads + log lines), mean batch "
          f"{stats['requests'] / max(stats['commits'], 1):.1f}, largest "
          f"{stats['largest_batch']}", flush=True)
    # (2) py-spy: every thread, sampled
    spy = shutil.which("py-spy", path=str(BIN)) or shutil.which("py-spy")
    if spy is None:
        print("  py-spy is not installed (.venv/bin/pip install py-spy): no sampled profile")
    else:
        s = start_fixgw(tmp, "fixgw-prof", f"sqlite:///{tmp / 'prof.db'}")
        raw = out_dir / "fixgw-100-inflight.txt"
        try:
            c = LeanClient(s.host, s.port)
            c.logon()
            c.run_window(MARKETABLE, args.warmup, 100, "w", deadline_s=args.deadline)
            with open(out_dir / "py-spy.log", "wb") as spy_log:
                spy_proc = subprocess.Popen(
                    [spy, "record", "--pid", str(s.pid), "--rate", "200", "--format", "raw",
                     "--threads", "--output", str(raw), "--nonblocking"],
                    stdout=subprocess.DEVNULL, stderr=spy_log)
                time.sleep(1.0)
                r = c.run_window(MARKETABLE, args.n100, 100, "r", deadline_s=args.deadline)
                spy_proc.send_signal(signal.SIGINT)
                spy_proc.wait(60)
            print(f"  under py-spy: {r.rate:,.0f} orders/s, p50 {r.pct(50):.3f} ms", flush=True)
            c.logout()
        finally:
            s.stop()
        from benchlib.collapsed import summarise

        summary = summarise(raw, args.top)
        (out_dir / "summary.txt").write_text(summary + "\n")
        print(summary)
    # (3) cProfile of the event loop: call counts per order
    if args.cprofile:
        import pstats

        pfile = out_dir / "loop.pstats"
        s = _inproc(tmp, "fixgw-cprof", ["--cprofile", str(pfile)])
        try:
            c = LeanClient(s.host, s.port)
            c.logon()
            c.run_window(MARKETABLE, args.warmup, 100, "w", deadline_s=args.deadline)
            s.proc.send_signal(signal.SIGUSR1)
            time.sleep(0.2)
            r = c.run_window(MARKETABLE, args.n100, 100, "r", deadline_s=args.deadline)
            c.logout()
        finally:
            s.stop()
        print(f"  under cProfile: {r.rate:,.0f} orders/s; event loop, by own time "
              f"({r.count} orders; see {pfile}):")
        pstats.Stats(str(pfile)).sort_stats("tottime").print_stats(args.top)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n1", type=int, default=3000, help="orders with 1 in flight")
    ap.add_argument("--n100", type=int, default=20000, help="orders with 100 in flight")
    ap.add_argument("--warmup", type=int, default=1000)
    ap.add_argument("--resting", type=int, default=20000)
    ap.add_argument("--restart-orders", type=int, default=100_000)
    ap.add_argument("--restarts", type=int, default=3)
    ap.add_argument("--pg-url", default=DEFAULT_PG)
    ap.add_argument("--no-pg", action="store_true")
    ap.add_argument("--only", choices=["load", "memory", "restart", "profile"], action="append",
                    help="run only these parts (repeatable); default: all but profile")
    ap.add_argument("--profile-dir", type=Path, default=Path("bench-profile"))
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--cprofile", action="store_true",
                    help="with --only profile: also a cProfile run of the event loop")
    ap.add_argument("--deadline", type=float, default=900.0, help="seconds per run, at most")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = ap.parse_args()
    parts = set(args.only or ["load", "memory", "restart"])
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs; client, server and the "
          "server's store thread share them", flush=True)
    tmp = Path(tempfile.mkdtemp(prefix="fixgw-bench-"))
    try:
        if "load" in parts:
            rows: list[Row] = []
            print("load (warm-up of", args.warmup, "orders before each engine):", flush=True)
            for engine, starter in (
                ("echo (client ceiling)", lambda: start_echo(tmp)),
                ("fixgw/sqlite", lambda: start_fixgw(tmp, "fixgw-sqlite",
                                                      f"sqlite:///{tmp / 'gw.db'}")),
                ("quickfix", lambda: start_qf(tmp)),
            ):
                s = starter()
                try:
                    rows += load(s, engine, args)
                finally:
                    s.stop()
            if not args.no_pg:
                from benchlib.pg import scratch_database

                with scratch_database(args.pg_url) as url:
                    if url is not None:
                        s = start_fixgw(tmp, "fixgw-pg", url)
                        try:
                            rows += load(s, "fixgw/postgresql", args)
                        finally:
                            s.stop()
            print()
            print(table(rows))
            print(verdict(rows))
            print(flush=True)
        if "memory" in parts:
            print("memory per open order:", flush=True)
            memory(tmp, args)
        if "restart" in parts:
            print(f"restart time (spawning python + importing the gateway alone: "
                  f"{interpreter_floor():.2f} s):", flush=True)
            restart(tmp, args)
        if "profile" in parts:
            print("profile of fixgw/sqlite at 100 in flight:", flush=True)
            profile(tmp, args)
    finally:
        if args.keep:
            print("kept", tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
