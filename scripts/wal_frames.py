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

``--journal-bench`` prices the journal commit that docs/performance.md weighs: the statements
the gateway ran for the measured orders (captured from SQLite's driver) are run again on two
copies of the store taken before them, as the gateway ran them (each order's two
transactions) and as a journal would (each transaction one row of its statements, serialised,
into a table of its own; the tables written from it later, 50 orders a transaction). Only
SQLite's time and the driver's: not the gateway's Python around them.

    .venv/bin/python scripts/wal_frames.py [--orders 1500]
        [--drop ix_order_events_order_id --drop ix_fills_order_id ...] [--commit-bench]
        [--journal-bench]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import pickle
import sqlite3
import statistics
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

Statement = tuple[str, str, object]
"""What the driver was asked: ("execute" | "executemany" | "commit", SQL, parameters)."""


class _Capture:
    """Every statement of the store's connections while :attr:`on` (a connection factory for
    :func:`sqlite3.connect`; the store's engine connects through ``sqlite3.dbapi2``)."""

    def __init__(self) -> None:
        self.on = False
        self.statements: list[Statement] = []
        capture = self

        class Cursor(sqlite3.Cursor):
            def execute(self, sql: str, params: object = (), /) -> sqlite3.Cursor:
                if capture.on:
                    capture.statements.append(("execute", sql, params))
                return super().execute(sql, params)  # type: ignore[arg-type]

            def executemany(self, sql: str, rows: object, /) -> sqlite3.Cursor:
                rows = list(rows)  # type: ignore[call-overload]
                if capture.on:
                    capture.statements.append(("executemany", sql, rows))
                return super().executemany(sql, rows)  # type: ignore[arg-type]

        class Connection(sqlite3.Connection):
            def cursor(self, factory: type[sqlite3.Cursor] = Cursor) -> sqlite3.Cursor:  # type: ignore[override]
                return super().cursor(factory)

            def commit(self) -> None:
                if capture.on:
                    capture.statements.append(("commit", "COMMIT", ()))
                super().commit()

        self.factory = Connection


def frames_per_order(orders: int, drops: list[str],
                     capture: _Capture | None = None, before: Path | None = None,
                     ) -> tuple[float, float]:
    """(WAL frames per order, orders/s) of ``orders`` marketable orders at 1 in flight, with
    the indexes ``drops`` dropped after the store's migrations ran. With ``capture``, the
    statements of the measured orders are kept there, and ``before`` receives a copy of the
    store as it was before them."""
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
        if capture is not None:
            connect = sqlite3.dbapi2.connect
            sqlite3.dbapi2.connect = (  # type: ignore[assignment]
                lambda *a, **k: connect(*a, **{**k, "factory": capture.factory}))
            try:
                await store.start()
            finally:
                sqlite3.dbapi2.connect = connect
        else:
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
    if before is not None:
        with contextlib.closing(sqlite3.connect(db)) as live, \
                contextlib.closing(sqlite3.connect(before)) as copy:
            live.backup(copy)
    if capture is not None:
        capture.on = True
    size = wal.stat().st_size
    result = client.run_window(OrderSpec(), orders, 1, "r")
    if capture is not None:
        capture.on = False
    grown = wal.stat().st_size - size
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


def _transactions(statements: list[Statement]) -> list[list[Statement]]:
    """The statements cut after each commit (each begins with ``BEGIN IMMEDIATE``; the
    writer's ``PRAGMA busy_timeout``, set when commits move between the loop and its thread,
    is left out rather than dropping the transaction it precedes)."""
    out: list[list[Statement]] = []
    current: list[Statement] = []
    for st in statements:
        if st[1].startswith("PRAGMA"):
            continue
        current.append(st)
        if st[0] == "commit":
            out.append(current)
            current = []
    return [t for t in out if t[0][1].startswith("BEGIN")]


def _run(cur: sqlite3.Cursor, statements: list[Statement]) -> None:
    for kind, sql, params in statements:
        if kind == "commit":
            cur.execute("COMMIT")
        elif kind == "executemany":
            cur.executemany(sql, params)  # type: ignore[arg-type]
        else:
            cur.execute(sql, params)  # type: ignore[arg-type]


def journal_bench(statements: list[Statement], before: Path, orders: int,
                  rounds: int = 5, batch: int = 50) -> list[str]:
    """The captured transactions run again on copies of ``before``: as the gateway ran them,
    and as journal rows (one a transaction) plus the journal's apply, ``batch`` orders a
    transaction. Rounds alternate the two; microseconds per order."""
    txs = _transactions(statements)
    per_round = max(1, len(txs) // rounds)
    results: dict[str, list[float]] = {"as now": [], "journal": [], "apply": []}
    copies = []
    for name in ("now", "journal"):
        path = before.with_name(f"{name}.db")
        with contextlib.closing(sqlite3.connect(before)) as src, \
                contextlib.closing(sqlite3.connect(path)) as dst:
            src.backup(dst)
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        copies.append(conn)
    now, journal = copies
    journal.execute("CREATE TABLE journal (id INTEGER PRIMARY KEY, data BLOB NOT NULL)")
    orders_per_tx = orders / len(txs)
    for r in range(rounds):
        chunk = txs[r * per_round:(r + 1) * per_round]
        cur = now.cursor()
        t0 = time.perf_counter()
        for tx in chunk:
            _run(cur, tx)
        results["as now"].append((time.perf_counter() - t0) / (len(chunk) * orders_per_tx))
        blobs = [pickle.dumps(tx[2:-1]) for tx in chunk]  # (serialised before the clock)
        jcur = journal.cursor()
        t0 = time.perf_counter()
        for tx, blob in zip(chunk, blobs, strict=True):
            jcur.execute("BEGIN IMMEDIATE")
            jcur.execute(tx[1][1], tx[1][2])  # the fence's read, as each commit does
            jcur.execute("INSERT INTO journal (data) VALUES (?)", (blob,))
            jcur.execute("COMMIT")
        results["journal"].append((time.perf_counter() - t0) / (len(chunk) * orders_per_tx))
        step = max(1, round(batch / orders_per_tx))
        t0 = time.perf_counter()
        for i in range(0, len(chunk), step):
            jcur.execute("BEGIN IMMEDIATE")
            for tx in chunk[i:i + step]:
                _run(jcur, tx[1:-1])
            jcur.execute("DELETE FROM journal")
            jcur.execute("COMMIT")
        results["apply"].append((time.perf_counter() - t0) / (len(chunk) * orders_per_tx))
    for conn in copies:
        conn.close()
    labels = {"as now": f"as the gateway runs them ({len(txs) / orders:.2f} transactions an order)",
              "journal": "as journal rows (one row a transaction)",
              "apply": f"the journal's apply ({batch} orders a transaction)"}
    return [f"  {labels[k]}: {statistics.median(v) * 1e6:6.1f} us an order (rounds: "
            + ", ".join(f"{x * 1e6:.0f}" for x in v) + ")" for k, v in results.items()]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--orders", type=int, default=1500)
    ap.add_argument("--drop", action="append", default=[], metavar="INDEX",
                    help="drop this index too, cumulatively (an experiment; repeatable)")
    ap.add_argument("--commit-bench", action="store_true",
                    help="also time commits of one row into 1, 5, 10 and 15 tables")
    ap.add_argument("--journal-bench", action="store_true",
                    help="also run the measured orders' statements again as journal rows")
    args = ap.parse_args()
    print(f"orders at 1 in flight: {args.orders}, WAL frames per order:", flush=True)
    for n in range(len(args.drop) + 1):
        drops = args.drop[:n]
        frames, rate = frames_per_order(args.orders, drops)
        label = "the schema as it is" if not drops else "without " + ", ".join(drops)
        print(f"  {frames:6.2f} frames/order ({rate:,.0f} orders/s)  {label}", flush=True)
    if args.journal_bench:
        capture = _Capture()
        before = Path(tempfile.mkdtemp(prefix="fixgw-journal-")) / "before.db"
        frames_per_order(args.orders, [], capture, before)
        print(f"the statements of {args.orders} orders at 1 in flight, run again by SQLite "
              "alone:")
        print("\n".join(journal_bench(capture.statements, before, args.orders)))
    if args.commit_bench:
        print("a commit of one row into each of K tables (WAL, synchronous=NORMAL):")
        print("\n".join(commit_bench()))


if __name__ == "__main__":
    main()
