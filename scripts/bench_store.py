#!/usr/bin/env python3
"""Benchmark the session store's write-ahead save() and append_order_events() (group commit).

Prints saves/s for one session saving sequentially (every save is its own commit) and for 50
sessions saving concurrently (saves share commits), plus commits, mean batch and latency. Then
the same for order appends: each simulated order takes three appends (created, accepted, filled:
event + order snapshot, the last with a fill, as the gateway does), by one caller and by 50
concurrent callers; the time includes serialising the snapshots. Runs on SQLite in a temporary
directory and, if reachable, on PostgreSQL (in a scratch database created on the server of
--pg-url and dropped afterwards).

    .venv/bin/python scripts/bench_store.py
    .venv/bin/python scripts/bench_store.py --saves 20000 --sessions 50 --no-pg
    .venv/bin/python scripts/bench_store.py --saves 0 --appends 60000 --callers 50
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import psycopg
from benchlib import native
from psycopg import sql
from psycopg.conninfo import make_conninfo
from sqlalchemy.engine import make_url

from connectors.base import OrderType, Side, TimeInForce
from gateway.orders.lifecycle import OrdStatus
from gateway.orders.model import Order, OrderEvent
from gateway.store.records import FillRecord
from gateway.store.store import SessionStore

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def message(seq: int) -> bytes:
    """A ~200-byte NewOrderSingle-sized ExecutionReport."""
    body = (
        b"35=8\x0134=%d\x0149=GW\x0152=20240501-12:30:45.123456\x0156=CLIENT\x01"
        b"6=0\x0111=ORD-%08d\x0114=0\x0117=EXEC-%08d\x0131=0\x0132=0\x0137=OID-%08d\x01"
        b"38=1.5\x0139=0\x0154=1\x0155=BTC/USDT\x01150=0\x01151=1.5\x01" % (seq, seq, seq, seq)
    )
    return b"8=FIX.4.4\x019=%d\x01%s10=000\x01" % (len(body), body)


async def one_session(store: SessionStore, session_id: str, saves: int, log: bool) -> list[float]:
    latencies = []
    record = await store.load(session_id)
    seq = record.next_sender
    for _ in range(saves):
        raw = message(seq)
        started = time.perf_counter()
        await store.save(session_id, sent=[(seq, raw)], next_sender=seq + 1)
        latencies.append(time.perf_counter() - started)
        if log:
            store.log(session_id, "out", raw, datetime.now(UTC))
        seq += 1
    return latencies


async def scenario(url: str, sessions: int, saves: int, log: bool) -> str:
    store = SessionStore(url)
    await store.start()
    try:
        per_session = max(1, saves // sessions)
        ids = [f"FIX.4.4:GW->C{sessions}-{n}" for n in range(sessions)]
        for session_id in ids:
            await store.load(session_id)
        before = store.stats
        started = time.perf_counter()
        results = await asyncio.gather(*(one_session(store, s, per_session, log) for s in ids))
        elapsed = time.perf_counter() - started
        after = store.stats
    finally:
        await store.close()
    total = per_session * sessions
    latencies = sorted(x for r in results for x in r)
    commits = after.batches - before.batches
    p99 = latencies[int(len(latencies) * 0.99) - 1]
    return (
        f"{sessions:>3} session(s){' +log' if log else '     '}: {total / elapsed:>9,.0f} saves/s"
        f"  ({total} saves, {commits} commits, {total / max(commits, 1):.1f} saves/commit,"
        f" latency p50 {statistics.median(latencies) * 1e3:.2f} ms p99 {p99 * 1e3:.2f} ms)"
    )


def summary(what: str, total: int, elapsed: float, commits: int, latencies: list[float]) -> str:
    latencies = sorted(latencies)
    p99 = latencies[int(len(latencies) * 0.99) - 1]
    return (
        f"{total / elapsed:>9,.0f} {what}/s  ({total} {what}, {commits} commits,"
        f" {total / max(commits, 1):.1f} {what}/commit,"
        f" latency p50 {statistics.median(latencies) * 1e3:.2f} ms p99 {p99 * 1e3:.2f} ms)"
    )


async def order_caller(store: SessionStore, n: int, first_id: int, appends: int) -> list[float]:
    """One caller: orders of three appends each (created, accepted, filled); event ids from
    ``first_id`` on."""
    latencies = []
    ids = iter(range(first_id, first_id + appends))
    session_id = f"FIX.4.4:GW->C{n}"
    order: Order | None = None
    for i in range(appends):
        step = i % 3
        event_id = next(ids)
        fills: list[FillRecord] = []
        if step == 0:
            order = Order(
                order_id=f"O{n}-{i}",
                session_id=session_id,
                cl_ord_id=f"CL-{n}-{i}",
                account="acct",
                venue="paper",
                symbol="BTC/USDT",
                side=Side.BUY,
                type=OrderType.LIMIT,
                quantity=Decimal("0.5"),
                price=Decimal("65000.1"),
                stop_price=None,
                time_in_force=TimeInForce.GTC,
                expire_time_ns=None,
                post_only=False,
                reduce_only=False,
                created_ns=time.time_ns(),
            )
            event = OrderEvent(
                event_id,
                order.order_id,
                session_id,
                "created",
                time.time_ns(),
                {"cl_ord_id": order.cl_ord_id},
            )
        elif step == 1:
            assert order is not None
            order.status = OrdStatus.NEW
            order.venue_order_id = f"V{event_id}"
            event = OrderEvent(
                event_id,
                order.order_id,
                session_id,
                "accepted",
                time.time_ns(),
                {"venue_order_id": order.venue_order_id},
                exec_id=f"X{event_id}",
            )
        else:
            assert order is not None
            order.status, order.cum_qty, order.avg_px = (
                OrdStatus.FILLED,
                order.quantity,
                Decimal("65000.1"),
            )
            trade_id = f"T{event_id}"
            order.trade_ids.add(trade_id)
            event = OrderEvent(
                event_id,
                order.order_id,
                session_id,
                "fill",
                time.time_ns(),
                {"trade_id": trade_id, "quantity": "0.5", "price": "65000.1"},
                exec_id=f"X{event_id}",
            )
            fills.append(
                FillRecord(
                    "paper",
                    trade_id,
                    order.order_id,
                    Decimal("0.5"),
                    Decimal("65000.1"),
                    Decimal("0.0325"),
                    "USDT",
                    "taker",
                    time.time_ns(),
                )
            )
        assert order is not None
        order.last_event_id, order.updated_ns = event_id, event.ts_ns
        started = time.perf_counter()
        await store.append_order_events([event], [order], fills)
        latencies.append(time.perf_counter() - started)
    return latencies


async def append_scenario(url: str, callers: int, appends: int) -> str:
    store = SessionStore(url)
    await store.start()
    try:
        per_caller = max(3, appends // callers // 3 * 3)
        first_ids = [await store.reserve("event_id", per_caller) for _ in range(callers)]
        before = store.stats
        started = time.perf_counter()
        results = await asyncio.gather(
            *(order_caller(store, n, first_ids[n], per_caller) for n in range(callers))
        )
        elapsed = time.perf_counter() - started
        commits = store.stats.batches - before.batches
    finally:
        await store.close()
    latencies = [x for r in results for x in r]
    return f"{callers:>3} caller(s)      : " + summary(
        "appends", per_caller * callers, elapsed, commits, latencies
    )


async def run(url: str, args: argparse.Namespace) -> None:
    if args.saves:
        print(await scenario(url, 1, args.sequential_saves, log=False))
        print(await scenario(url, args.sessions, args.saves, log=False))
        print(await scenario(url, args.sessions, args.saves, log=True))
    if args.appends:
        print(await append_scenario(url, 1, args.sequential_appends))
        print(await append_scenario(url, args.callers, args.appends))


@contextmanager
def scratch_pg_database(url: str) -> Iterator[str | None]:
    """A throwaway database on the server of ``url`` (None if the server is unreachable)."""
    parsed = make_url(url)
    params: dict[str, str | int | None] = {
        "host": parsed.host or "127.0.0.1",
        "port": parsed.port or 5432,
        "user": parsed.username,
        "password": parsed.password,
        "dbname": parsed.database,
        "connect_timeout": 3,
    }
    try:
        conninfo = make_conninfo("", **{k: v for k, v in params.items() if v is not None})
        admin = psycopg.connect(conninfo)
    except psycopg.Error as exc:
        print(f"PostgreSQL: not reachable at {parsed.host}:{parsed.port} ({exc})".strip())
        yield None
        return
    admin.autocommit = True
    name = f"fixgw_bench_{secrets.token_hex(4)}"
    with admin:
        admin.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(name)))
        try:
            yield parsed.set(database=name).render_as_string(hide_password=False)
        finally:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sequential-saves", type=int, default=3000)
    parser.add_argument(
        "--saves", type=int, default=20000, help="total for the concurrent run (0: none)"
    )
    parser.add_argument("--sessions", type=int, default=50)
    parser.add_argument("--sequential-appends", type=int, default=3000)
    parser.add_argument(
        "--appends", type=int, default=30000, help="total for the concurrent run (0: none)"
    )
    parser.add_argument("--callers", type=int, default=50)
    parser.add_argument("--pg-url", default=DEFAULT_PG)
    parser.add_argument("--no-pg", action="store_true")
    args = parser.parse_args()
    native.refuse_stale()

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        print("SQLite (WAL, synchronous=NORMAL), temp dir:")
        asyncio.run(run(url, args))
    if not args.no_pg:
        with scratch_pg_database(args.pg_url) as pg_url:
            if pg_url is not None:
                print(f"PostgreSQL ({make_url(args.pg_url).host}):")
                asyncio.run(run(pg_url, args))


if __name__ == "__main__":
    main()
