#!/usr/bin/env python3
"""Instructions an order costs the gateway, counted by valgrind's callgrind: a figure the
machine's noise does not move.

Times on this shared 2-core machine move by 10-30% between runs, more than most single cuts
save; the instructions a process executes do not. This runs the gateway (``gw_inproc.py``, the
benchmarks' configuration: SQLite, the simulated venue) under ``valgrind --tool=callgrind``
with counting off, sends ``--warmup`` orders, counts the next ``--orders`` (the client runs
natively, in this process) and prints the thousands of instructions an order, for each checkout
given (its own sources and build; the virtual environment is this one). User-space only: the
kernel's work (the socket, the write-ahead log's ``pwrite`` calls) is not counted, and under
valgrind the gateway runs some 30 times slower, so at 100 in flight its batches are larger
than natively. The dump of each run is kept: ``callgrind_annotate --inclusive=yes FILE`` shows
where the instructions go.

    .venv/bin/python scripts/instructions.py [--window 1] [--orders 300] [--warmup 300] [--caches]
        [CHECKOUT ...]          (default: this checkout)
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

from benchlib import native  # noqa: E402
from benchlib.client import LeanClient, OrderSpec  # noqa: E402
from benchlib.gwconfig import write_config  # noqa: E402

CACHES = ("--I1=32768,8,64", "--D1=32768,8,64", "--LL=1048576,8,64")
"""This machine's caches as callgrind simulates them (``lscpu``: each figure there is the sum
of two instances, one a core): 32 KiB of instructions and 32 KiB of data at the first level,
and the core's own 1 MiB second level as the last (the third level, shared by every core and
guest of the host, is left out)."""


def count(checkout: Path, window: int, orders: int, warmup: int,
          caches: bool = False) -> tuple[dict[str, float], Path]:
    """(each event callgrind counted, in thousands an order -- ``Ir``, the instructions, and
    with ``caches`` the simulated misses -- and the callgrind dump of the counted orders)."""
    tmp = Path(tempfile.mkdtemp(prefix="fixgw-instructions-"))
    # no busy polling (its instructions would count the waits, not the order path), where the
    # checkout has it
    polls = (checkout / "gateway" / "server" / "busypoll.py").exists()
    cfg = write_config(tmp / "gw.toml", store=f"sqlite:///{tmp / 'gw.db'}", log_dir=tmp / "log",
                       busy_poll_us=0 if polls else None)
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    proc = subprocess.Popen(
        ["valgrind", "--tool=callgrind", "--instr-atstart=no",
         *(("--cache-sim=yes", *CACHES) if caches else ()),
         f"--callgrind-out-file={tmp}/callgrind.%p", sys.executable,
         str(checkout / "scripts" / "benchlib" / "gw_inproc.py"), "--config", str(cfg)],
        stdout=subprocess.PIPE, stderr=(tmp / "stderr").open("wb"), cwd=tmp, env=env)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().decode()
        found = re.search(r"listening on (\S+):(\d+)", line)
        if found is None:
            raise RuntimeError(f"the gateway did not start: {(tmp / 'stderr').read_text()}")
        client = LeanClient(found.group(1), int(found.group(2)))
        client.logon()
        client.run_window(OrderSpec(), warmup, window, "w")
        pid = str(proc.pid)
        subprocess.run(["callgrind_control", "--instr=on", pid], check=True, capture_output=True)
        client.run_window(OrderSpec(), orders, window, "r")
        subprocess.run(["callgrind_control", "--dump", pid], check=True, capture_output=True)
        subprocess.run(["callgrind_control", "--instr=off", pid], check=True, capture_output=True)
        client.logout()
    finally:
        proc.terminate()
        proc.wait(120)
    dump = next(tmp.glob("callgrind.*.1"))  # (the first dump: the counted orders)
    lines = dump.read_text(errors="replace").splitlines()
    events = next(line for line in lines if line.startswith("events:")).split()[1:]
    totals = next(line for line in lines if line.startswith("totals:")).split()[1:]
    return {name: int(n) / orders / 1e3 for name, n in zip(events, totals, strict=True)}, dump


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkouts", nargs="*", type=Path, default=[ROOT])
    ap.add_argument("--window", type=int, default=1, help="orders in flight")
    ap.add_argument("--orders", type=int, default=300)
    ap.add_argument("--warmup", type=int, default=300)
    ap.add_argument("--caches", action="store_true",
                    help="simulate this machine's first and second level caches and print the "
                         "misses an order too (I1mr/D1mr/D1mw: first level; ILmr/DLmr/DLmw: "
                         "second)")
    args = ap.parse_args()
    for checkout in args.checkouts:
        native.refuse_stale(source=checkout.resolve())
    missing = [tool for tool in ("valgrind", "callgrind_control") if shutil.which(tool) is None]
    if missing:
        sys.exit(f"instructions.py needs valgrind ({', '.join(missing)} not found)")
    print(f"{args.orders} orders at {args.window} in flight, after {args.warmup}, under callgrind:")
    for checkout in args.checkouts:
        per_order, dump = count(checkout.resolve(), args.window, args.orders, args.warmup,
                                args.caches)
        print(f"  {per_order['Ir']:8.1f} thousand instructions an order  {checkout}  ({dump})",
              flush=True)
        if args.caches:
            print("    thousands an order: " + ", ".join(
                f"{name} {n:.1f}" for name, n in per_order.items() if name != "Ir"), flush=True)


if __name__ == "__main__":
    main()
