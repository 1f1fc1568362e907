"""``fixgw run`` with instruments, for the profile part of scripts/bench_orders.py.

Same start-up as ``gateway.cli._run`` (config -> store -> build_gateway -> start, the garbage
collector tuned, prints the ``listening on`` line; the same event loop, polling before it
sleeps as ``[gateway] busy_poll_us`` says). On each SIGUSR1 it prints one line of JSON:
the store's writer counters so far (commits, requests, largest batch), the event loop's CPU
time so far and the name of each Python thread by its native id (``threads``). On SIGTERM/SIGINT,
before stopping, it prints the counters since the first SIGUSR1 (the start of the measured
window). With ``--cprofile FILE`` the event-loop thread runs under cProfile from the first
SIGUSR1 (the store's writer thread is not profiled) and the stats are dumped to FILE.

    python scripts/benchlib/gw_inproc.py --config gw.toml [--cprofile out.pstats]
                                         [--switch-interval 0.0005]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import json
import logging
import signal
import sys
import threading
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gateway.config import Config


async def _run(cfg: Config, args: argparse.Namespace) -> None:
    from gateway.app import build_gateway
    from gateway.cli import _tune_gc
    from gateway.store.store import SessionStore

    store = SessionStore(cfg.gateway.store)
    await store.start()
    gw = build_gateway(cfg, store)
    host, port = await gw.start()
    _tune_gc()
    print(f"listening on {host}:{port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    mark = asyncio.Event()
    loop.add_signal_handler(signal.SIGUSR1, mark.set)
    prof = cProfile.Profile() if args.cprofile else None
    base = (store.stats, time.thread_time())

    async def marker() -> None:
        # the first SIGUSR1 starts the measured window (stats and cProfile); each prints
        nonlocal base
        first = True
        while True:
            await mark.wait()
            mark.clear()
            s = store.stats
            print(json.dumps({"commits": s.batches, "requests": s.requests,
                              "largest_batch": s.largest_batch,
                              "inline_commits": s.inline,
                              "loop_cpu_s": time.thread_time(),
                              "threads": {t.native_id: t.name for t in threading.enumerate()}}),
                  flush=True)
            if first:
                first = False
                base = (s, time.thread_time())
                if prof is not None:
                    prof.enable()

    task = asyncio.create_task(marker())
    await stop.wait()
    if prof is not None:
        prof.disable()
        prof.dump_stats(args.cprofile)
    task.cancel()
    s0, t0 = base
    s1 = store.stats
    print(json.dumps({"commits": s1.batches - s0.batches, "requests": s1.requests - s0.requests,
                      "inline_commits": s1.inline - s0.inline,
                      "largest_batch": s1.largest_batch,
                      "loop_cpu_s": time.thread_time() - t0}), flush=True)
    await gw.stop()
    await store.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", required=True)
    ap.add_argument("--cprofile", default=None)
    ap.add_argument("--switch-interval", type=float, default=None,
                    help="sys.setswitchinterval (s): how long a thread may keep the GIL when "
                         "another asks for it (default 0.005)")
    args = ap.parse_args()
    if args.switch_interval is not None:
        sys.setswitchinterval(args.switch_interval)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    from gateway.cli import busy_poll_us
    from gateway.config import load_config
    from gateway.server.busypoll import event_loop_factory

    cfg = load_config(args.config)
    with contextlib.suppress(KeyboardInterrupt), \
            asyncio.Runner(loop_factory=event_loop_factory(busy_poll_us(cfg))) as runner:
        runner.run(_run(cfg, args))


if __name__ == "__main__":
    main()
