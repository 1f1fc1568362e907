#!/usr/bin/env python3
"""Order-path load benchmark: fixgw against the gateway a team would build on QuickFIX (the
peer) and against the limit of a FIX round trip, over loopback, each server in its own process,
in ONE interleaved run of several rounds.

An initiator (scripts/benchlib/client.py: one blocking socket, hand-built messages, no
validation) sends limit NewOrderSingles on BTC/USDT that are marketable (buy 0.001 at 98000,
sell 0.001 at 96000 alternately: each is acknowledged and filled, the balances hold), keeping 1
and then 100 orders unanswered (an order is answered by its Fill ER). Reported per round: orders/s
over the run, the latency from sending an order to its FIRST ExecutionReport (p50, p99), the
server's CPU per order (all its threads) and its context switches per order.

Servers (``--engines``), each a separate process, all started afresh for each round (in an
order that rotates from round to round) and warmed up, then measured in turns: the orders at 1
in flight go in ``--slices`` slices (10), those at 100 in ``--slices100`` (5), each server
running one slice while the others are paused (SIGSTOP), in a shuffled order from slice to
slice, so that all are measured over the same minutes of the machine -- its speed moves widely
from one second to the next, and a server measured alone in a slow moment would carry it
alone (at 100 in flight the rate of each slice's steady part, the window full):

* ``fixgw``      -- ``fixgw run``: SQLite store in a temp dir, file log on, pre-trade checks on
                    (the embedded configuration's limits, max_open_orders raised:
                    scripts/benchlib/gwconfig.py);
* ``peer-order`` -- scripts/qf_peer.py --commit order: QuickFIX (C++ engine, Python application,
                    FileStore, FileLog, FIX 4.4 dictionary) doing fixgw's durable work per order
                    (the same checks and limits, the intent in SQLite/WAL before the in-process
                    matcher, each event and its report committed before sending), one
                    transaction per write;
* ``peer-group`` -- the same with group commit (one writer thread batching what arrives);
* ``qf-echo``    -- QuickFIX's C++ engine with a C++ application (scripts/native/qf_echo.cpp,
                    run by scripts/qf_acceptor.py --native; built by setup.sh --bench)
                    answering New + Fill from the message alone (FileStore, FileLog,
                    dictionary; no state, no database): the limit of a FIX round trip on this
                    machine (left out, with a note, when it is not built);
* ``qf-echo-py`` -- the same acceptor with its application in Python (scripts/qf_acceptor.py):
                    what the Python callbacks alone cost;
* ``fixgw-pg``   -- fixgw on PostgreSQL (a scratch database on --pg-url's server each round,
                    dropped after; skipped when the server is unreachable);
* ``client``     -- scripts/benchlib/echo_acceptor.py (not by default): no engine at all, the
                    client's own ceiling.

Then, each round, ``--sessions`` sessions at once (CLIENT1..CLIENT20, one connection each,
``--sessions-window`` in flight each, the clients spread over two processes) against fixgw and
the peer (``--sessions-engines``): the aggregate orders/s.

At the end: every figure as a range over the rounds, and the ratios of each round: fixgw / the
peer's better variant (orders/s), fixgw / qf-echo, fixgw's p50 at 1 in flight against the
peer's, the 20 sessions.

    .venv/bin/python scripts/bench_orders.py                 # 5 rounds (~7 min)
    .venv/bin/python scripts/bench_orders.py --quick         # 2 short rounds (< 1 min): smoke
    .venv/bin/python scripts/bench_orders.py --rounds 3 --engines fixgw,peer-group --no-sessions
    .venv/bin/python scripts/bench_orders.py --only memory --only restart
    .venv/bin/python scripts/bench_orders.py --only profile --profile-dir /tmp/prof [--cprofile]
        # fixgw (and the peer) at 1 and at 100 in flight: CPU and context switches per order
        # per thread, the store's commits per order, system calls per order (strace -c), then
        # py-spy over every thread of fixgw (.venv/bin/pip install py-spy); see
        # docs/performance.md

Targets (issue 15; SQLite, pre-trade checks on, same run): fixgw >= 2x the peer's better
variant in orders/s at 1 and at 100 in flight, with a p50 at 1 in flight no higher than the
peer's (floor: parity at 1 in flight, 1.5x at 100).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import native, procs  # noqa: E402
from benchlib.client import LeanClient, OrderSpec, RunResult  # noqa: E402
from benchlib.gwconfig import write_config  # noqa: E402
from benchlib.multi import MultiResult, run_sessions  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
MARKETABLE = OrderSpec()  # buy 0.001 @ 98000 / sell 0.001 @ 96000 (mid ~97000), DAY
RESTING = OrderSpec(buy_px=b"92000", sides=b"1", tif=b"1")  # buys 5% under the mid, GTC
DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
ENGINES = ("fixgw", "peer-order", "peer-group", "qf-echo", "qf-echo-py", "fixgw-pg", "client")
DEFAULT_ENGINES = "fixgw,peer-order,peer-group,qf-echo,qf-echo-py,fixgw-pg"
NATIVE_ECHO = BIN / "qf_echo"
PEERS = ("peer-order", "peer-group")
T = TypeVar("T")


@dataclass
class Row:
    engine: str
    round: int
    result: RunResult | MultiResult
    cpu_s: float
    """CPU time the server process used during the run (all its threads)."""
    ctx: int
    """Context switches of the server's threads during the run."""

    @property
    def window(self) -> int:
        return self.result.window

    @property
    def cpu_us_per_order(self) -> float:
        return self.cpu_s * 1e6 / self.result.count

    @property
    def ctx_per_order(self) -> float:
        return self.ctx / self.result.count

    @property
    def cores(self) -> float:
        return self.cpu_s / self.result.elapsed


# ---- the servers ---------------------------------------------------------------------------------

def start_fixgw(tmp: Path, name: str, store: str, log: bool = True,
                sessions: int = 1, busy_poll_us: int | None = None) -> procs.Server:
    cfg = write_config(tmp / f"{name}.toml", store=store, sessions=sessions,
                       log_dir=(tmp / f"{name}-log") if log else None, busy_poll_us=busy_poll_us)
    return procs.start(name, [str(BIN / "fixgw"), "run", "--config", str(cfg)],
                       stderr_path=tmp / f"{name}.stderr", cwd=tmp)


def start_peer(tmp: Path, name: str, commit: str, sessions: int = 1) -> procs.Server:
    """scripts/qf_peer.py serving the sessions (and limits) of the benchmarks' fixgw config."""
    cfg = write_config(tmp / f"{name}.toml", store="sqlite://", log_dir=None, sessions=sessions)
    return procs.start(name, [sys.executable, str(ROOT / "scripts" / "qf_peer.py"),
                              "--workdir", str(tmp / name), "--config", str(cfg),
                              "--commit", commit],
                       stderr_path=tmp / f"{name}.stderr")


def start_qf(tmp: Path, name: str = "qf-echo-py", native: bool = False) -> procs.Server:
    return procs.start(name, [sys.executable, str(ROOT / "scripts" / "qf_acceptor.py"),
                              "--workdir", str(tmp / name), *(["--native"] if native else [])],
                       stderr_path=tmp / f"{name}.stderr")


def start_echo(tmp: Path) -> procs.Server:
    return procs.start("echo", [sys.executable,
                                str(ROOT / "scripts" / "benchlib" / "echo_acceptor.py")],
                       stderr_path=tmp / "echo.stderr")


def starter(engine: str, tmp: Path, pg_url: str | None, sessions: int = 1
            ) -> Callable[[], procs.Server] | None:
    """How to start ``engine`` in ``tmp`` (None: fixgw-pg without a PostgreSQL URL)."""
    if engine == "fixgw":
        return lambda: start_fixgw(tmp, "fixgw", f"sqlite:///{tmp / 'fixgw.db'}",
                                   sessions=sessions)
    if engine == "fixgw-pg":
        if pg_url is None:
            return None
        url = pg_url
        return lambda: start_fixgw(tmp, "fixgw-pg", url, sessions=sessions)
    if engine in PEERS:
        return lambda: start_peer(tmp, engine, engine.split("-")[1], sessions)
    if engine == "qf-echo":
        return lambda: start_qf(tmp, engine, native=True)
    if engine == "qf-echo-py":
        return lambda: start_qf(tmp, engine)
    return lambda: start_echo(tmp)


# ---- the load ------------------------------------------------------------------------------------

def _line(row: Row) -> str:
    r = row.result
    sessions = f" x{r.sessions} sessions" if isinstance(r, MultiResult) else ""
    return (f"  {row.engine:<11} {r.window:>3} in flight{sessions}: {r.rate:>7,.0f} orders/s  "
            f"p50 {r.pct(50):7.3f} ms  p99 {r.pct(99):7.3f} ms  "
            f"CPU {row.cpu_us_per_order:5,.0f} us/order ({row.cores:.2f} cores)  "
            f"{row.ctx_per_order:5.1f} cs/order  ({r.count} orders, {r.rejected} rejected)")


PRIMER = 10
"""Orders a server answers, untimed, each time it is resumed, before its measured orders: what
fell due while it was paused -- fixgw's checkpoint, its node's lease renewal and watch, its
session timers, QuickFIX's own timers -- runs then, all at once, and would otherwise land on
the first order of every slice (some 10 ms for fixgw, half a millisecond for the peer; a
continuous run spreads that work over its orders)."""
HEARTBEAT_S = 600
"""The load's sessions' HeartBtInt: a server paused through the other servers' runs must not
take its client for gone (2.4 heartbeats of silence end a session) when it is resumed."""


def _measured(server: procs.Server, engine: str, rnd: int, c: LeanClient, count: int,
              window: int, prefix: str, args: argparse.Namespace) -> Row:
    """``count`` orders at ``window`` in flight on ``c``, ``server`` resumed meanwhile (it is
    paused again after); first :data:`PRIMER` untimed orders."""
    server.resume()
    try:
        # (a prefix no other run's extends, nor extends another's)
        c.run_window(MARKETABLE, PRIMER, 1, "p" + prefix[1:], deadline_s=args.deadline)
        cpu0, cs0 = server.cpu_s(), server.ctx_switches()
        r = c.run_window(MARKETABLE, count, window, prefix, deadline_s=args.deadline)
        return Row(engine, rnd, r, server.cpu_s() - cpu0, server.ctx_switches() - cs0)
    finally:
        server.pause()


def turns(servers: list[T], rnd: int, i: int) -> list[T]:
    """The order in which ``servers`` run their ``i``-th slice of round ``rnd``: shuffled, the
    same for the same round and slice in every run, so that no server follows the same one
    slice after slice (whose leftovers -- PostgreSQL's background writes after fixgw-pg, a warm
    library after a server that shares it -- would always land on it)."""
    order = list(servers)
    random.Random(f"{rnd}:{i}").shuffle(order)
    return order


def slice_count(total: int, window: int, slices: int) -> int:
    """How many slices ``total`` orders at ``window`` in flight go in: ``slices``, at most one
    an order, and at 100 in flight at most one in five windows (each slice then has a steady
    part of three windows or more)."""
    return max(1, min(slices, total if window == 1 else total // (5 * window)))


def _sliced(servers: list[tuple[str, procs.Server, LeanClient]], rnd: int, window: int,
            total: int, slices: int, args: argparse.Namespace) -> list[Row]:
    """``total`` orders a server at ``window`` in flight, in ``slices`` slices (at most one an
    order): the servers take turns (:func:`turns`), each paused while the others run; each
    server's figures are those of its slices together -- at 100 in flight the rate of their
    steady parts (:meth:`RunResult.merged`)."""
    slices = slice_count(total, window, slices)
    parts: dict[str, list[Row]] = {engine: [] for engine, _, _ in servers}
    for i in range(slices):
        count = total // slices + (1 if i < total % slices else 0)
        for engine, server, c in turns(servers, rnd, i):
            parts[engine].append(
                _measured(server, engine, rnd, c, count, window, f"r{window}x{i}-", args))
    rows = []
    for engine, _, _ in servers:
        sl = parts[engine]
        results = [r.result for r in sl]
        steady = window > 1 and all(r.steady_count for r in results)  # (then steady_s > 0)
        result = RunResult.merged(results, steady=steady)  # type: ignore[arg-type]
        row = Row(engine, rnd, result, sum(r.cpu_s for r in sl), sum(r.ctx for r in sl))
        rows.append(row)
        print(_line(row), flush=True)
    return rows


def load(servers: list[tuple[str, procs.Server, LeanClient]], rnd: int,
         args: argparse.Namespace) -> list[Row]:
    """The 1-in-flight runs in ``args.slices`` slices, then the 100-in-flight runs in
    ``args.slices100``: the servers take turns, each paused while the others run, so that
    every server is measured over the same minutes of the machine -- whose speed moves widely
    from one second to the next -- rather than in seconds of its own; a slow moment
    shorter than a turn still falls on one slice, but no longer on one server's whole
    figure."""
    if not servers:
        return []
    return (_sliced(servers, rnd, 1, args.n1, args.slices, args)
            + _sliced(servers, rnd, 100, args.n100, args.slices100, args))


def many(server: procs.Server, engine: str, rnd: int, args: argparse.Namespace) -> Row:
    cpu0, cs0 = server.cpu_s(), server.ctx_switches()
    r = run_sessions(server.host, server.port, sessions=args.sessions,
                     count=args.sessions_orders, window=args.sessions_window,
                     deadline_s=args.deadline)
    # (the CPU includes the sessions' logons and warm-up: a small share of the run)
    total = r.count + args.sessions * min(200, args.sessions_orders)
    row = Row(engine, rnd, r, (server.cpu_s() - cpu0) * r.count / total,
              round((server.ctx_switches() - cs0) * r.count / total))
    print(_line(row), flush=True)
    return row


def one_round(rnd: int, tmp: Path, engines: list[str], args: argparse.Namespace) -> list[Row]:
    """Every engine started afresh (in an order that rotates from round to round), warmed up
    and paused; then :func:`load`; then the sessions at once, one engine after another."""
    rows: list[Row] = []
    k = rnd % len(engines)
    order = engines[k:] + engines[:k]
    with contextlib.ExitStack() as stack:
        servers: list[tuple[str, procs.Server, LeanClient]] = []
        for engine in order:
            d = tmp / f"r{rnd}-{engine}"
            d.mkdir()
            url = None
            if engine == "fixgw-pg":
                from benchlib.pg import scratch_database

                url = stack.enter_context(scratch_database(args.pg_url))
            start = starter(engine, d, url)
            if start is None:
                continue
            server = start()
            stack.callback(server.stop)
            c = LeanClient(server.host, server.port)
            c.logon(HEARTBEAT_S)
            stack.callback(c.logout)
            stack.callback(server.resume)  # (first at the end: the logout needs it running)
            c.run_window(MARKETABLE, args.warmup, 100, "w", deadline_s=args.deadline)
            server.pause()
            servers.append((engine, server, c))
        rows += load(servers, rnd, args)
    if args.sessions:
        for engine in args.sessions_engines.split(","):
            d = tmp / f"r{rnd}-{engine}-many"
            d.mkdir()
            start = starter(engine, d, None, args.sessions)
            assert start is not None
            rows += _serve(start, lambda s, e=engine: [many(s, e, rnd, args)])
    return rows


def _serve(start: Callable[[], procs.Server],
           run: Callable[[procs.Server], list[Row]]) -> list[Row]:
    s = start()
    try:
        return run(s)
    finally:
        s.stop()


# ---- the summary ---------------------------------------------------------------------------------

def _rng(values: list[float], fmt: str) -> str:
    lo, hi = min(values), max(values)
    if len(values) == 1 or fmt.format(lo) == fmt.format(hi):
        return fmt.format(lo)
    return f"{fmt.format(lo)}-{fmt.format(hi)}"


def _ratio_format(values: list[float], bounds: tuple[float, ...]) -> str:
    """Two decimals, or three where two would print a ratio under a bound as the bound itself
    (0.9985 as 1.00 beside "floor 1x not met")."""
    hidden = any(float(f"{x:.2f}") >= b > x for x in values for b in bounds)
    return "{:.3f}" if hidden else "{:.2f}"


def table(rows: list[Row]) -> str:
    """Each engine and load: the range over the rounds (the median of orders/s in brackets)."""
    keys: list[tuple[str, int, bool]] = []
    for r in rows:
        k = (r.engine, r.window, isinstance(r.result, MultiResult))
        if k not in keys:
            keys.append(k)
    out = [f"{'engine':<11} {'load':<16} {'orders/s':>22} {'p50 ms':>13} {'p99 ms':>13} "
           f"{'CPU us/order':>12} {'cs/order':>9}"]
    for engine, window, multi in keys:
        sel = [r for r in rows if (r.engine, r.window, isinstance(r.result, MultiResult))
               == (engine, window, multi)]
        load_ = (f"{sel[0].result.sessions}x{window} in flight" if multi  # type: ignore[union-attr]
                 else f"{window} in flight")
        rates = [r.result.rate for r in sel]
        out.append(
            f"{engine:<11} {load_:<16} "
            f"{_rng(rates, '{:,.0f}') + f' ({statistics.median(rates):,.0f})':>22} "
            f"{_rng([r.result.pct(50) for r in sel], '{:.2f}'):>13} "
            f"{_rng([r.result.pct(99) for r in sel], '{:.2f}'):>13} "
            f"{_rng([r.cpu_us_per_order for r in sel], '{:,.0f}'):>12} "
            f"{_rng([r.ctx_per_order for r in sel], '{:.1f}'):>9}")
    return "\n".join(out)


def ratios(rows: list[Row], rounds: int) -> str:
    """Per round: fixgw / the peer's better variant, fixgw / qf-echo; then the ranges and the
    targets."""
    def get(engine: str, rnd: int, window: int, multi: bool = False) -> Row | None:
        for r in rows:
            if (r.engine, r.round, r.window, isinstance(r.result, MultiResult)) == (
                    engine, rnd, window, multi):
                return r
        return None

    lines = []
    for window, target, floor in ((1, 2.0, 1.0), (100, 2.0, 1.5)):
        vs_peer: list[float] = []
        vs_echo: list[float] = []
        p50: list[tuple[float, float]] = []
        best_names: list[str] = []
        echo_name = "qf-echo" if any(r.engine == "qf-echo" for r in rows) else "qf-echo-py"
        for rnd in range(rounds):
            gw = get("fixgw", rnd, window)
            peers = [p for p in (get(e, rnd, window) for e in PEERS) if p is not None]
            echo = get("qf-echo", rnd, window) or get("qf-echo-py", rnd, window)
            if gw is None:
                continue
            if peers:
                best = max(peers, key=lambda p: p.result.rate)
                best_names.append(best.engine)
                vs_peer.append(gw.result.rate / best.result.rate)
                p50.append((gw.result.pct(50), min(p.result.pct(50) for p in peers)))
            if echo is not None:
                vs_echo.append(gw.result.rate / echo.result.rate)
        if vs_peer:
            verdict = ("MET" if min(vs_peer) >= target else
                       f"NOT MET; floor {floor:g}x {'met' if min(vs_peer) >= floor else 'not met'}")
            fmt = _ratio_format(vs_peer, (floor, target))
            lines.append(f"{window:>3} in flight: fixgw / peer's better variant "
                         f"({', '.join(sorted(set(best_names)))}) orders/s: "
                         f"{' '.join(fmt.format(x) for x in vs_peer)}  -> "
                         f"{_rng(vs_peer, fmt)}x (target >= {target:g}x: {verdict})")
        if vs_echo:
            lines.append(f"{window:>3} in flight: fixgw / {echo_name} orders/s: "
                         f"{' '.join(f'{x:.2f}' for x in vs_echo)}  -> {_rng(vs_echo, '{:.2f}')}x")
        if window == 1 and p50:
            ok = all(g <= p for g, p in p50)
            lines.append("  1 in flight: p50 fixgw vs the peer's lower: " + "  ".join(
                f"{g:.3f}/{p:.3f}" for g, p in p50)
                + f" ms (target no higher: {'MET' if ok else 'NOT MET'})")
    many_ratio = []
    for rnd in range(rounds):
        gw = next((r for r in rows if r.engine == "fixgw" and r.round == rnd
                   and isinstance(r.result, MultiResult)), None)
        peer = [r for r in rows if r.engine in PEERS and r.round == rnd
                and isinstance(r.result, MultiResult)]
        if gw is not None and peer:
            many_ratio.append(gw.result.rate / max(p.result.rate for p in peer))
    if many_ratio:
        lines.append(f"sessions at once: fixgw / peer aggregate orders/s: "
                     f"{' '.join(f'{x:.2f}' for x in many_ratio)}  -> "
                     f"{_rng(many_ratio, '{:.2f}')}x")
    return "\n".join(lines)


# ---- memory and restart --------------------------------------------------------------------------

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
    """fixgw instrumented (benchlib/gw_inproc.py), without busy polling: what the profiles and
    window_sweep's fit count is the order path's work and its waits, not the polls."""
    cfg = write_config(tmp / f"{name}.toml", store=f"sqlite:///{tmp / (name + '.db')}",
                       log_dir=tmp / f"{name}-log", busy_poll_us=0)
    return procs.start(name, [sys.executable, str(ROOT / "scripts" / "benchlib" / "gw_inproc.py"),
                              "--config", str(cfg), *extra],
                       stderr_path=tmp / f"{name}.stderr", cwd=tmp)


# ---- the profile ---------------------------------------------------------------------------------

WRITES = ("write", "pwrite64", "writev", "pwritev", "pwritev2", "sendto", "sendmsg")
SYNCS = ("fsync", "fdatasync")


def _counters(s: procs.Server) -> dict[str, object]:
    """The counters the server prints on SIGUSR1 (gw_inproc.py, qf_peer.py)."""
    s.proc.send_signal(signal.SIGUSR1)
    while True:
        line = s.readline().strip()
        if line.startswith(b"{"):  # (not the end of the ``listening on`` line)
            return json.loads(line)  # type: ignore[no-any-return]


def _by_thread(s: procs.Server, before: dict[int, procs.ThreadCounters], names: dict[str, str],
               n: int) -> list[str]:
    """CPU and context switches per order of each thread since ``before``."""
    out = []
    for t in sorted(procs.threads(s.pid), key=lambda t: t.tid):
        b = before.get(t.tid)
        cpu = t.cpu_s - (b.cpu_s if b else 0)
        kernel = t.sys_s - (b.sys_s if b else 0)
        vol = t.voluntary - (b.voluntary if b else 0)
        inv = t.involuntary - (b.involuntary if b else 0)
        if cpu == 0 and vol + inv == 0:
            continue
        name = names.get(str(t.tid)) or ("main" if t.tid == s.pid else "QuickFIX (C++ thread)")
        if name == "MainThread":
            name = "main (event loop)" if s.name.startswith("fixgw") else "main (idle)"
        out.append(f"      {name:<24} CPU {cpu * 1e6 / n:6,.0f} us/order ({kernel * 1e6 / n:4,.0f} "
                   "in the kernel)   context switches "
                   f"{vol / n:5.2f} voluntary + {inv / n:4.2f} involuntary per order")
    return out


def _strace(s: procs.Server, c: LeanClient, window: int, n: int, prefix: str,
            out_dir: Path, args: argparse.Namespace) -> str:
    """System calls per order over ``n`` orders (strace -c -f attached to every thread; it
    slows the server, so the batching at 100 in flight is not the same as without it)."""
    out = out_dir / f"strace-{s.name}-{window}.txt"
    tracer = subprocess.Popen(["strace", "-c", "-f", "-p", str(s.pid), "-o", str(out)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)  # attached to every thread
    r = c.run_window(MARKETABLE, n, window, prefix, deadline_s=args.deadline)
    tracer.send_signal(signal.SIGINT)
    tracer.wait(30)
    calls: dict[str, int] = {}
    for line in out.read_text().splitlines():
        parts = line.split()
        if len(parts) >= 5 and parts[0][:1].isdigit() and parts[-1] != "total":
            calls[parts[-1]] = int(parts[3])
    total = sum(calls.values())
    writes = {k: v for k, v in calls.items() if k in WRITES}
    top = sorted(calls.items(), key=lambda kv: -kv[1])[:8]
    return (f"    under strace ({r.count} orders, {r.rate:,.0f} orders/s): "
            f"{total / r.count:.1f} system calls per order; writes "
            + ", ".join(f"{k} {v / r.count:.1f}" for k, v in sorted(writes.items()))
            + f"; syncs {sum(calls.get(k, 0) for k in SYNCS) / r.count:.2f}; most called: "
            + ", ".join(f"{k} {v / r.count:.1f}" for k, v in top))


def _perf(tmp: Path, window: int, n: int, out_dir: Path, args: argparse.Namespace) -> str:
    """``perf record -e cpu-clock`` over fixgw's threads during ``n`` orders: the share of each
    (thread, library) -- the interpreter, SQLite, the kernel, ... -- in the samples."""
    s = _inproc(tmp, f"fixgw-perf{window}")
    data = out_dir / f"perf-{window}.data"
    try:
        c = LeanClient(s.host, s.port)
        c.logon()
        c.run_window(MARKETABLE, args.warmup, 100, "w", deadline_s=args.deadline)
        rec = subprocess.Popen(["perf", "record", "-q", "-e", "cpu-clock", "-F", "1000", "-p",
                                str(s.pid), "-o", str(data)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1.0)
        r = c.run_window(MARKETABLE, n, window, f"p{window}x", deadline_s=args.deadline)
        rec.send_signal(signal.SIGINT)
        rec.wait(60)
        names: dict[str, str] = _counters(s)["threads"]  # type: ignore[assignment]
        c.logout()
    finally:
        s.stop()
    report = subprocess.run(["perf", "report", "-i", str(data), "--no-children", "--sort",
                             "pid,dso", "-g", "none", "--stdio"],
                            capture_output=True, text=True, check=False).stdout
    out = [f"  perf, fixgw at {window} in flight ({r.rate:,.0f} orders/s under perf), share of "
           "the samples by thread and library:"]
    for line in report.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[0].endswith("%") and ":" in parts[1]:
            share = float(parts[0].rstrip("%"))
            if share < 0.5:
                continue
            tid = parts[1].split(":")[0]
            name = names.get(tid, tid)
            out.append(f"    {share:5.1f}%  {name:<18} {' '.join(parts[2:])}")
    return "\n".join(out)


def profile(tmp: Path, args: argparse.Namespace) -> None:
    """(1) counters without a profiler, fixgw and the peers, at 1 and at 100 in flight: CPU and
    context switches per order per thread, commits per order, system calls per order
    (strace); (2) py-spy over every thread of fixgw at 1 and at 100, sampling the thread that
    holds the GIL (without ``--gil`` py-spy counts a thread waiting in epoll or on the writer's
    queue as busy on this machine); (3) perf's cpu-clock samples by thread and library;
    (4) optionally cProfile."""
    out_dir = args.profile_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    has_strace = shutil.which("strace") is not None and not args.no_strace
    for engine in args.profile_engines.split(","):
        print(f"  {engine}:", flush=True)
        if engine == "fixgw":
            s = _inproc(tmp, "fixgw-count")
        else:
            s = start_peer(tmp, f"{engine}-count", engine.split("-")[1])
        try:
            c = LeanClient(s.host, s.port)
            c.logon()
            c.run_window(MARKETABLE, args.warmup, 100, "w", deadline_s=args.deadline)
            for window, n in ((1, args.n1), (100, args.n100)):
                c0 = _counters(s)
                t0 = {t.tid: t for t in procs.threads(s.pid)}
                cpu0 = s.cpu_s()
                r = c.run_window(MARKETABLE, n, window, f"r{window}x", deadline_s=args.deadline)
                cpu = s.cpu_s() - cpu0
                c1 = _counters(s)
                names: dict[str, str] = c1["threads"]  # type: ignore[assignment]
                commits = int(c1["commits"]) - int(c0["commits"])  # type: ignore[call-overload]
                store = f"{commits / r.count:.2f} commits/order"
                if "inline_commits" in c1:
                    inline = int(c1["inline_commits"]) - int(c0["inline_commits"])  # type: ignore[call-overload]
                    store += f" ({inline / max(commits, 1):.0%} inline)"
                if "requests" in c1:
                    requests = int(c1["requests"]) - int(c0["requests"])  # type: ignore[call-overload]
                    store += (f", {requests / r.count:.1f} store requests/order (writes, reads, "
                              f"log lines; {requests / max(commits, 1):.1f} per commit)")
                print(f"    {window:>3} in flight: {r.rate:,.0f} orders/s, p50 "
                      f"{r.pct(50):.3f} ms; process CPU {cpu * 1e6 / r.count:,.0f} us/order "
                      f"({cpu / r.elapsed:.2f} cores); {store}", flush=True)
                print("\n".join(_by_thread(s, t0, names, r.count)), flush=True)
                if has_strace:
                    print(_strace(s, c, window, args.strace_orders[window == 100], f"s{window}x",
                                  out_dir, args), flush=True)
            c.logout()
        finally:
            s.stop()
    if not has_strace:
        print("  (no strace: no system call counts)")
    # (2) py-spy: every thread of fixgw, sampled, at 1 and at 100 in flight
    spy = shutil.which("py-spy", path=str(BIN)) or shutil.which("py-spy")
    if spy is None:
        print("  py-spy is not installed (.venv/bin/pip install py-spy): no sampled profile")
    else:
        from benchlib.collapsed import summarise

        for window, n in ((1, args.n1), (100, args.n100)):
            s = start_fixgw(tmp, f"fixgw-prof{window}", f"sqlite:///{tmp / f'prof{window}.db'}",
                            busy_poll_us=0)  # (py-spy: the order path's samples, not the polls)
            raw = out_dir / f"fixgw-{window}-inflight.txt"
            try:
                c = LeanClient(s.host, s.port)
                c.logon()
                c.run_window(MARKETABLE, args.warmup, 100, "w", deadline_s=args.deadline)
                with open(out_dir / "py-spy.log", "ab") as spy_log:
                    spy_proc = subprocess.Popen(
                        [spy, "record", "--pid", str(s.pid), "--rate", "250", "--format", "raw",
                         "--threads", "--gil", "--output", str(raw), "--nonblocking"],
                        stdout=subprocess.DEVNULL, stderr=spy_log)
                    time.sleep(1.0)
                    r = c.run_window(MARKETABLE, n, window, "r", deadline_s=args.deadline)
                    spy_proc.send_signal(signal.SIGINT)
                    spy_proc.wait(60)
                c.logout()
            finally:
                s.stop()
            summary = summarise(raw, args.top)
            (out_dir / f"summary-{window}.txt").write_text(summary + "\n")
            print(f"  py-spy, fixgw at {window} in flight ({r.rate:,.0f} orders/s, p50 "
                  f"{r.pct(50):.3f} ms under the profiler; samples of the thread holding the "
                  "GIL: Python's own time, not SQLite's nor the kernel's):")
            print(summary, flush=True)
    # (3) perf (cpu-clock samples, no hardware counters needed): each thread's time by library
    if shutil.which("perf") is not None and not args.no_perf:
        for window, n in ((1, args.n1), (100, args.n100)):
            print(_perf(tmp, window, n, out_dir, args), flush=True)
    # (4) cProfile of the event loop: call counts per order
    if args.cprofile:
        import pstats

        pfile = out_dir / "loop.pstats"
        s = _inproc(tmp, "fixgw-cprof", ["--cprofile", str(pfile)])
        try:
            c = LeanClient(s.host, s.port)
            c.logon()
            window = args.cprofile_window
            c.run_window(MARKETABLE, args.warmup, window, "w", deadline_s=args.deadline)
            _counters(s)
            r = c.run_window(MARKETABLE, args.n1 if window == 1 else args.n100, window, "r",
                             deadline_s=args.deadline)
            c.logout()
        finally:
            s.stop()
        print(f"  under cProfile, {window} in flight: {r.rate:,.0f} orders/s; event loop, "
              "by own time "
              f"({r.count} orders; see {pfile}):")
        pstats.Stats(str(pfile)).sort_stats("tottime").print_stats(args.top)


# ---- main ----------------------------------------------------------------------------------------

def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--quick", action="store_true",
                    help="2 rounds of few orders (a smoke test, under a minute)")
    ap.add_argument("--engines", default=DEFAULT_ENGINES,
                    help=f"comma-separated, of {', '.join(ENGINES)} (default {DEFAULT_ENGINES})")
    ap.add_argument("--n1", type=int, default=3000, help="orders with 1 in flight")
    ap.add_argument("--slices", type=int, default=10,
                    help="slices the 1-in-flight orders are sent in, the servers taking turns "
                         "(at most one an order)")
    ap.add_argument("--slices100", type=int, default=5,
                    help="slices the 100-in-flight orders are sent in (their rate: the steady "
                         "part of each, the window full)")
    ap.add_argument("--n100", type=int, default=5000, help="orders with 100 in flight")
    ap.add_argument("--warmup", type=int, default=500)
    ap.add_argument("--sessions", type=int, default=20,
                    help="sessions at once, each on its own connection (0: none)")
    ap.add_argument("--no-sessions", dest="sessions", action="store_const", const=0)
    ap.add_argument("--sessions-window", type=int, default=10, help="in flight per session")
    ap.add_argument("--sessions-orders", type=int, default=250, help="orders per session")
    ap.add_argument("--sessions-engines", default="fixgw,peer-group")
    ap.add_argument("--resting", type=int, default=20000)
    ap.add_argument("--restart-orders", type=int, default=100_000)
    ap.add_argument("--restarts", type=int, default=3)
    ap.add_argument("--pg-url", default=DEFAULT_PG)
    ap.add_argument("--no-pg", action="store_true", help="leave fixgw-pg out")
    ap.add_argument("--only", choices=["load", "memory", "restart", "profile"], action="append",
                    help="run only these parts (repeatable); default: load")
    ap.add_argument("--profile-dir", type=Path, default=Path("bench-profile"))
    ap.add_argument("--profile-engines", default="fixgw,peer-order,peer-group")
    ap.add_argument("--strace-orders", type=lambda v: tuple(int(x) for x in v.split(",")),
                    default=(300, 2000), help="orders under strace at 1,100 in flight")
    ap.add_argument("--no-strace", action="store_true")
    ap.add_argument("--no-perf", action="store_true")
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--cprofile-window", type=int, choices=(1, 100), default=100,
                    help="orders in flight under cProfile")
    ap.add_argument("--cprofile", action="store_true",
                    help="with --only profile: also a cProfile run of the event loop")
    ap.add_argument("--deadline", type=float, default=900.0, help="seconds per run, at most")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = ap.parse_args()
    if args.quick:
        args.rounds, args.n1, args.n100, args.warmup = 2, 200, 1500, 150
        args.sessions_orders = min(args.sessions_orders, 60)
    engines = [e for e in args.engines.split(",") if e and not (args.no_pg and e == "fixgw-pg")]
    if "qf-echo" in engines and not NATIVE_ECHO.exists():
        print(f"(no {NATIVE_ECHO}: scripts/setup.sh --bench builds it; qf-echo left out)")
        engines.remove("qf-echo")
    unknown = [e for e in engines + args.sessions_engines.split(",") if e not in ENGINES]
    if unknown:
        ap.error(f"unknown engine(s): {', '.join(unknown)}")
    parts = set(args.only or ["load"])
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.2f}; client, servers and their threads share them", flush=True)
    sessions_engines = args.sessions_engines.split(",") if args.sessions else []
    if parts - {"load"} or any(e.startswith("fixgw") for e in engines + sessions_engines):
        native.refuse_stale(say=True)
    tmp = Path(tempfile.mkdtemp(prefix="fixgw-bench-"))
    t_start = time.perf_counter()
    try:
        if "load" in parts:
            rows: list[Row] = []
            print(f"load: {args.rounds} rounds of {', '.join(engines)} (warm-up of "
                  f"{args.warmup} orders, then {args.n1} orders at 1 in flight in "
                  f"{slice_count(args.n1, 1, args.slices)} slices and {args.n100} at 100 in "
                  f"{slice_count(args.n100, 100, args.slices100)}, the servers taking turns)"
                  + (f"; then {args.sessions} sessions x {args.sessions_window} in flight x "
                     f"{args.sessions_orders} orders against {args.sessions_engines}"
                     if args.sessions else ""), flush=True)
            for rnd in range(args.rounds):
                print(f"round {rnd + 1} (load average {os.getloadavg()[0]:.2f}):", flush=True)
                rows += one_round(rnd, tmp, engines, args)
            print()
            print(f"over {args.rounds} rounds (min-max, median orders/s in brackets):")
            print(table(rows))
            print()
            print(ratios(rows, args.rounds))
            print(f"({time.perf_counter() - t_start:.0f} s)", flush=True)
            print(flush=True)
        if "memory" in parts:
            print("memory per open order:", flush=True)
            memory(tmp, args)
        if "restart" in parts:
            print(f"restart time (spawning python + importing the gateway alone: "
                  f"{interpreter_floor():.2f} s):", flush=True)
            restart(tmp, args)
        if "profile" in parts:
            print("profile (counters without a profiler, then py-spy):", flush=True)
            profile(tmp, args)
    finally:
        if args.keep:
            print("kept", tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
