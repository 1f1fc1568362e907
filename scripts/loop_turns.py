#!/usr/bin/env python3
"""What the event loop does for one order: turns, callbacks and the CPU each kind costs.

Runs the gateway in this process (the benchmarks' configuration: SQLite, file log, pre-trade
checks on; on asyncio's own event loop, without ``fixgw run``'s busy polling, so that the
selector's time is the waits and not the polls) and a client in another (``benchlib.client``:
marketable orders, ``--window`` in flight), and over the measured orders counts, on the event
loop's thread: the turns of the loop (``_run_once``), the callbacks it ran by kind (a task's
step is named by its coroutine) and the thread's CPU time inside each kind, the time in the
selector, and the loop thread's voluntary and involuntary context switches. Everything per
order.

    .venv/bin/python scripts/loop_turns.py [--orders 2000] [--window 1] [--warmup 1000]

The instruments wrap asyncio's ``Handle._run`` and the selector: they add a few microseconds a
callback, so the CPU figures are a little above an unmeasured run's; compare kinds, not runs.
"""

from __future__ import annotations

import argparse
import asyncio
import asyncio.base_events
import asyncio.events
import re
import selectors
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from benchlib import native  # noqa: E402
from benchlib.gwconfig import write_config  # noqa: E402

_ADDRESS = re.compile(r" object at 0x[0-9a-f]+|<|>")
_COMPILED_METHOD = re.compile(r"^(?:[\w.]*\.)?(?P<func>\w+?)_(?P<cls>[A-Z]\w*)_gen$")
"""A compiled coroutine's generator class (``gateway.orders.venue.place_VenueSide_gen``)."""

_CLIENT = """
import sys
sys.path.insert(0, {scripts!r})
from benchlib.client import LeanClient, OrderSpec
c = LeanClient({host!r}, {port})
c.logon()
c.run_window(OrderSpec(), {warmup}, {window}, "w")
print("ready", flush=True)
sys.stdin.readline()
r = c.run_window(OrderSpec(), {orders}, {window}, "m")
print("done %.0f %.3f" % (r.rate, r.pct(50)), flush=True)
c.logout()
"""


@dataclass
class Tally:
    """What the instruments saw while :attr:`on`."""

    on: bool = False
    turns: int = 0
    calls: Counter[str] = field(default_factory=Counter)
    cpu_ns: defaultdict[str, int] = field(default_factory=lambda: defaultdict(int))
    select_ns: int = 0


def callback_name(handle: asyncio.Handle) -> str:
    """A callback's kind: its qualified name; a task's step or wake-up by its coroutine's."""
    cb: Any = handle._callback  # type: ignore[attr-defined]
    if hasattr(cb, "func"):  # functools.partial
        cb = cb.func
    name = getattr(cb, "__qualname__", None) or type(cb).__name__
    owner = getattr(cb, "__self__", None)
    if isinstance(owner, asyncio.Task):
        coro = owner.get_coro()
        name = "task " + (getattr(coro, "__qualname__", None) or repr(coro))
    name = _ADDRESS.sub("", name)
    if name.startswith("task "):  # a compiled method's coroutine: named as it is in Python
        compiled = _COMPILED_METHOD.match(name[5:])
        if compiled is not None:
            name = f"task {compiled['cls']}.{compiled['func']}"
    return name


def instrument(tally: Tally) -> None:
    """Wrap the loop's turn, a callback's run and the selector's wait (this process only)."""
    run_once = asyncio.base_events.BaseEventLoop._run_once  # type: ignore[attr-defined]
    handle_run = asyncio.events.Handle._run
    select = selectors.EpollSelector.select
    cpu = time.thread_time_ns

    def counted_run_once(self: asyncio.AbstractEventLoop) -> None:
        if tally.on:
            tally.turns += 1
        run_once(self)

    def timed_run(self: asyncio.Handle) -> None:
        if not tally.on:
            handle_run(self)
            return
        name = callback_name(self)
        t0 = cpu()
        try:
            handle_run(self)
        finally:
            tally.calls[name] += 1
            tally.cpu_ns[name] += cpu() - t0

    def timed_select(self: selectors.EpollSelector, timeout: float | None = None) -> Any:
        if not tally.on:
            return select(self, timeout)
        t0 = cpu()
        try:
            return select(self, timeout)
        finally:
            tally.select_ns += cpu() - t0

    asyncio.base_events.BaseEventLoop._run_once = counted_run_once  # type: ignore[attr-defined]
    asyncio.events.Handle._run = timed_run  # type: ignore[method-assign]
    selectors.EpollSelector.select = timed_select  # type: ignore[method-assign, assignment]


def context_switches() -> tuple[int, int]:
    """(voluntary, involuntary) context switches of the calling thread so far."""
    values = {}
    with open("/proc/thread-self/status") as f:
        for line in f:
            if "ctxt_switches" in line:
                key, value = line.split(":")
                values[key.strip()] = int(value)
    return values["voluntary_ctxt_switches"], values["nonvoluntary_ctxt_switches"]


def start_client(args: argparse.Namespace, host: str, port: int) -> subprocess.Popen[str]:
    """The client, in a process of its own (it does not share the gateway's GIL)."""
    script = _CLIENT.format(scripts=str(ROOT / "scripts"), host=host, port=port,
                            warmup=args.warmup, window=args.window, orders=args.orders)
    return subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)


async def measure(args: argparse.Namespace, tally: Tally) -> list[str]:
    from gateway.app import build_gateway
    from gateway.cli import _tune_gc
    from gateway.config import load_config
    from gateway.store.store import SessionStore

    tmp = Path(tempfile.mkdtemp(prefix="fixgw-turns-"))
    cfg = load_config(write_config(tmp / "gw.toml", store=f"sqlite:///{tmp}/gw.db",
                                   log_dir=tmp / "log"))
    store = SessionStore(cfg.gateway.store)
    await store.start()
    gw = build_gateway(cfg, store)
    host, port = await gw.start()
    _tune_gc()
    loop = asyncio.get_running_loop()
    client = start_client(args, host, port)
    assert client.stdin is not None and client.stdout is not None
    try:
        line = await loop.run_in_executor(None, client.stdout.readline)
        if line.strip() != "ready":
            raise RuntimeError(f"the client did not get ready: {line!r}")
        switches0, cpu0 = context_switches(), time.thread_time_ns()
        tally.on = True
        client.stdin.write("\n")
        client.stdin.flush()
        line = await loop.run_in_executor(None, client.stdout.readline)
        tally.on = False
        cpu, switches1 = time.thread_time_ns() - cpu0, context_switches()
        if not line.startswith("done"):
            raise RuntimeError(f"the client did not finish: {line!r}")
        await loop.run_in_executor(None, client.wait)
    finally:
        if client.poll() is None:
            client.kill()
        await gw.stop()
        await store.close()
    _, rate, p50 = line.split()
    n = args.orders
    in_callbacks = sum(tally.cpu_ns.values())
    out = [
        f"{n} orders at {args.window} in flight: {rate} orders/s, p50 {p50} ms",
        f"per order: {tally.turns / n:.1f} turns of the loop, "
        f"{sum(tally.calls.values()) / n:.1f} callbacks, loop thread CPU {cpu / n / 1e3:.0f} us "
        f"({in_callbacks / n / 1e3:.0f} in callbacks, {tally.select_ns / n / 1e3:.0f} in the "
        f"selector), context switches {(switches1[0] - switches0[0]) / n:.2f} voluntary + "
        f"{(switches1[1] - switches0[1]) / n:.2f} involuntary",
        f"{'calls':>7} {'CPU us':>8}  callback (per order)",
    ]
    for name, calls in sorted(tally.calls.items(), key=lambda kv: -tally.cpu_ns[kv[0]]):
        if calls / n >= 0.05 or tally.cpu_ns[name] >= in_callbacks / 100:
            out.append(f"{calls / n:7.2f} {tally.cpu_ns[name] / n / 1e3:8.1f}  {name}")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--orders", type=int, default=2000)
    ap.add_argument("--window", type=int, default=1, help="orders in flight")
    ap.add_argument("--warmup", type=int, default=1000)
    args = ap.parse_args()
    native.refuse_stale()
    tally = Tally()
    instrument(tally)
    for line in asyncio.run(measure(args, tally)):
        print(line)


if __name__ == "__main__":
    main()
