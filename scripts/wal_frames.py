#!/usr/bin/env python3
"""WAL frames per order on SQLite: what each b-tree of an order's commits costs.

In WAL mode a commit appends one frame (a 24-byte header and a page: two ``pwrite64`` calls)
for every page it changed, and every b-tree it touched (a table, each index the rows change)
is at least one page. This runs the gateway (the benchmarks' configuration, SQLite, in this
process on a thread of its own) with its checkpointer off, sends marketable orders one at a
time, and divides the growth of the ``-wal`` file by the orders: frames per order. Each
``--drop`` runs again with one more index dropped (an experiment on a scratch database, to
see what an index costs; the gateway's queries may need it), and ``--commit-bench`` times a
commit of one row into each of 1, 5, 10 and 15 tables, to price a frame on this machine.

    .venv/bin/python scripts/wal_frames.py [--orders 1500]
        [--drop ix_orders_session_id --drop ix_order_events_order_id ...] [--commit-bench]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sqlite3
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from benchlib.client import LeanClient, OrderSpec  # noqa: E402
from benchlib.gwconfig import write_config  # noqa: E402

FRAME_HEADER = 24
NO_CHECKPOINT_S = 1e9


def frames_per_order(orders: int, drops: list[str]) -> tuple[float, float]:
    """(WAL frames per order, orders/s) of ``orders`` marketable orders at 1 in flight, with
    the indexes ``drops`` dropped after the store's migrations ran."""
    tmp = Path(tempfile.mkdtemp(prefix="fixgw-frames-"))
    db = tmp / "gw.db"
    cfg = write_config(tmp / "gw.toml", store=f"sqlite:///{db}", log_dir=tmp / "log")
    ready = threading.Event()
    address: list[tuple[str, int]] = []
    stop = asyncio.Event()

    async def serve() -> None:
        from gateway.app import build_gateway
        from gateway.config import load_config
        from gateway.store.store import SessionStore

        c = load_config(cfg)
        # no checkpoint while measuring: the WAL only grows (the checkpointer waits this long)
        store = SessionStore(c.gateway.store, checkpoint_interval=NO_CHECKPOINT_S)
        await store.start()
        with contextlib.closing(sqlite3.connect(db)) as scratch:
            for name in drops:
                scratch.execute(f"DROP INDEX {name}")
            scratch.commit()
        gw = build_gateway(c, store)
        address.append(await gw.start())
        ready.set()
        await stop.wait()
        await gw.stop()
        await store.close()

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
    thread.start()
    if not ready.wait(60):
        raise RuntimeError("the gateway did not start")
    client = LeanClient(*address[0])
    client.logon()
    client.run_window(OrderSpec(), 300, 1, "w")
    wal = Path(f"{db}-wal")
    with contextlib.closing(sqlite3.connect(db)) as reader:
        page = int(reader.execute("PRAGMA page_size").fetchone()[0])
    before = wal.stat().st_size
    result = client.run_window(OrderSpec(), orders, 1, "r")
    grown = wal.stat().st_size - before
    client.logout()
    loop.call_soon_threadsafe(stop.set)
    thread.join(30)
    return grown / (page + FRAME_HEADER) / orders, result.rate


def commit_bench(commits: int = 3000) -> list[str]:
    """Microseconds to begin, insert one row into each of K tables and commit, for K in 1,
    5, 10, 15 (WAL, synchronous=NORMAL): the commit's cost grows with the frames it writes."""
    out = []
    for k in (1, 5, 10, 15):
        tmp = Path(tempfile.mkdtemp(prefix="fixgw-commit-"))
        c = sqlite3.connect(tmp / "x.db", isolation_level=None)
        c.execute("PRAGMA journal_mode=WAL")
        c.execute("PRAGMA synchronous=NORMAL")
        for i in range(k):
            c.execute(f"CREATE TABLE t{i} (id INTEGER PRIMARY KEY, v TEXT)")
        pad = "x" * 300
        spent = [0.0, 0.0, 0.0]
        for _ in range(commits):
            t0 = time.perf_counter()
            c.execute("BEGIN IMMEDIATE")
            t1 = time.perf_counter()
            for i in range(k):
                c.execute(f"INSERT INTO t{i} (v) VALUES (?)", (pad,))  # noqa: S608 - i is ours
            t2 = time.perf_counter()
            c.execute("COMMIT")
            t3 = time.perf_counter()
            spent[0] += t1 - t0
            spent[1] += t2 - t1
            spent[2] += t3 - t2
        c.close()
        begin, inserts, commit = (s / commits * 1e6 for s in spent)
        out.append(f"  {k:>2} tables: begin {begin:5.1f} us, {k} inserts {inserts:6.1f} us, "
                   f"commit {commit:6.1f} us ({commit / k:4.1f} us a table)")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--orders", type=int, default=1500)
    ap.add_argument("--drop", action="append", default=[], metavar="INDEX",
                    help="drop this index too, cumulatively (an experiment; repeatable)")
    ap.add_argument("--commit-bench", action="store_true",
                    help="also time commits of one row into 1, 5, 10 and 15 tables")
    args = ap.parse_args()
    print(f"orders at 1 in flight: {args.orders}, WAL frames per order:", flush=True)
    for n in range(len(args.drop) + 1):
        drops = args.drop[:n]
        frames, rate = frames_per_order(args.orders, drops)
        label = "the schema as it is" if not drops else "without " + ", ".join(drops)
        print(f"  {frames:6.2f} frames/order ({rate:,.0f} orders/s)  {label}", flush=True)
    if args.commit_bench:
        print("a commit of one row into each of K tables (WAL, synchronous=NORMAL):")
        print("\n".join(commit_bench()))


if __name__ == "__main__":
    main()
