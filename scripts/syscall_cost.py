#!/usr/bin/env python3
"""What a system call costs on this machine: the ones an order at 1 in flight makes.

On a virtual machine a system call can cost several times what it costs on bare metal (how
the guest's kernel is entered, the mitigations it runs at each entry and exit), and where it
is dear a server that makes fewer of them an order gains on one that makes more: fixgw makes
about 40 an order at 1 in flight, the peer of ``scripts/bench_orders.py`` about 100
(``bench_orders.py --only profile`` counts them with strace). This times, from Python, each
call the order path makes most -- ``getpid`` (asyncio's check of the running loop), an
``fcntl`` lock and its release on one byte (SQLite's locks on its WAL index), ``epoll_wait``
that returns at once (each turn of the event loop), a 2 KiB ``pwrite`` (the write-ahead log)
-- less the same Python around ``threading.get_ident`` instead (a C function that makes no
system call): nanoseconds a call, the best of five runs.

    .venv/bin/python scripts/syscall_cost.py [--calls 200000]
"""

from __future__ import annotations

import argparse
import fcntl
import os
import select
import tempfile
import threading
import time
from collections.abc import Callable


def per_call_ns(call: Callable[[], object], calls: int, runs: int = 5) -> float:
    """The best of ``runs`` timings of ``calls`` calls, in ns a call."""
    best = float("inf")
    for _ in range(runs):
        t0 = time.perf_counter_ns()
        for _ in range(calls):
            call()
        best = min(best, (time.perf_counter_ns() - t0) / calls)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", type=int, default=200_000)
    args = ap.parse_args()
    n = args.calls
    with tempfile.TemporaryDirectory(prefix="fixgw-syscalls-") as tmp:
        fd = os.open(os.path.join(tmp, "scratch"), os.O_RDWR | os.O_CREAT, 0o600)
        ep = select.epoll()
        page = b"\0" * 2048
        held = [False]
        get_ident, getpid, poll, pwrite, lockf = (threading.get_ident, os.getpid, ep.poll,
                                                  os.pwrite, fcntl.lockf)
        un, ex = fcntl.LOCK_UN, fcntl.LOCK_EX | fcntl.LOCK_NB

        def lock_or_unlock() -> None:
            # one byte at offset 120, as SQLite locks its WAL index: a lock, then its release
            lockf(fd, un if held[0] else ex, 1, 120)
            held[0] = not held[0]

        def same_without_the_call() -> None:
            get_ident()
            held[0] = not held[0]

        try:
            # each call and its baseline go through a function of the same shape
            calls = [
                ("getpid", lambda: getpid(), lambda: get_ident()),
                ("fcntl F_SETLK (a lock or its release)", lock_or_unlock, same_without_the_call),
                ("epoll_wait, nothing ready, no wait", lambda: poll(0), lambda: get_ident()),
                ("pwrite of 2 KiB", lambda: pwrite(fd, page, 0), lambda: get_ident()),
            ]
            rows = [(name, per_call_ns(call, n) - per_call_ns(base, n))
                    for name, call, base in calls]
        finally:
            ep.close()
            os.close(fd)
    print("a system call, less the same Python around a C function that makes none:")
    for name, ns in rows:
        print(f"  {name:40s} {ns:7.0f} ns")


if __name__ == "__main__":
    main()
