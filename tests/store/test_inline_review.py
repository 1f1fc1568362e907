"""Review of the inline commits (gateway.store.writer, "Inline commits"): cases the change's own
tests do not cover. Each test states what it shows; every one of them fails at 4ab5880 (the
last one before it too: see its docstring)."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, insert

from gateway.store.schema import order_events
from gateway.store.store import SessionStore

from .test_session_store import T0, fix, read_log

SID = "FIX.4.4:GATEWAY->CLIENT1"


def url_of(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'fixgw.db'}"


# --- Invariant 7: reads (Query requests) are committed inline too, on the loop's thread -------


def test_a_query_runs_off_the_event_loops_thread(tmp_path: Path) -> None:
    """The mechanism: a read (any Query: a scan, a read-modify-write) is gathered and run on the
    event loop's thread like a write, whatever it costs. Invariant 7's new text covers commits
    ("a WAL commit writes to the page cache"), not reads of unbounded size."""

    async def main() -> tuple[int, int]:
        async with SessionStore(url_of(tmp_path)) as store:
            await store.load(SID)
            ran_on = await store.writer.query(lambda _conn: threading.get_ident())
            return ran_on, threading.get_ident()

    ran_on, loop_thread = asyncio.run(main())
    assert ran_on != loop_thread, "the query ran on the event loop's thread"


def test_a_long_read_at_logon_does_not_stall_the_loop(tmp_path: Path) -> None:
    """The consequence: ``unreported_events`` (made at every Logon, gateway/orders/recorder.py)
    of a session whose client stayed away while 100,000 of its events were recorded (reading
    and decoding them takes ~0.5 s here); on the writer thread the loop (every other session's
    heartbeats, orders, reports) keeps running meanwhile, inline it stops for all of it. (It
    was a scan of all the session's events, told or not, before migration 0012.) The bound is
    relative (half the read's own duration), so a slow machine does not make it pass or
    fail."""
    url = url_of(tmp_path)

    async def schema() -> None:
        async with SessionStore(url):
            pass

    asyncio.run(schema())
    engine = create_engine(url)
    n = 100_000
    with engine.begin() as conn:
        conn.execute(insert(order_events), [
            {"event_id": i + 1, "order_id": str(i // 4 + 1), "session_id": SID,
             "kind": "accepted", "ts_ns": i, "exec_id": f"E{i}", "data": "{}",
             "cl_ord_id": None, "report_seq": None} for i in range(n)])
    engine.dispose()

    async def main() -> tuple[float, float]:
        async with SessionStore(url) as store:
            await store.load(SID)
            await store.unreported_events(SID)  # warm the page cache
            gaps: list[float] = []
            done = asyncio.Event()

            async def ticker() -> None:
                last = time.perf_counter()
                while not done.is_set():
                    await asyncio.sleep(0.001)
                    now = time.perf_counter()
                    gaps.append(now - last)
                    last = now

            ticking = asyncio.ensure_future(ticker())
            await asyncio.sleep(0.02)
            started = time.perf_counter()
            assert len(await store.unreported_events(SID)) == n
            read = time.perf_counter() - started
            done.set()
            await ticking
            return read, max(gaps)

    read, stalled = asyncio.run(main())
    assert stalled < read / 2, (f"the event loop stood still {stalled * 1000:.0f} ms during a "
                                f"{read * 1000:.0f} ms read")


# --- ordering across threads ------------------------------------------------------------------


def test_a_request_from_another_thread_never_overtakes_one_made_before_it(
    tmp_path: Path,
) -> None:
    """A request the loop made (gathered for the end of its turn) and, after it, a request of
    another thread (its own loop): the writer thread commits the second at once, the first
    commits after it and overwrites it (last writer wins, in the wrong order). Before the
    change both went through one FIFO queue. No production code submits from another thread
    today (latent); the Writer supports waiters of other loops (``resolve``)."""
    url = url_of(tmp_path)

    async def main() -> dict[str, str]:
        async with SessionStore(url) as store:
            await store.load(SID)
            first = store.save_kill_switch("*", True, "engaged first")  # queued at once

            async def later() -> None:
                await store.save_kill_switch("*", False, "released after")

            other = threading.Thread(target=asyncio.run, args=(later(),))
            other.start()
            other.join(10)  # (blocks this loop on purpose: the turn has not ended)
            assert not other.is_alive()
            await first
            return await store.load_kill_switches()

    # released after it was engaged: nothing is engaged
    assert asyncio.run(main()) == {}


# --- the loop that started the writer vs the loop that uses it --------------------------------


def test_a_store_started_in_one_event_loop_serves_a_later_one_on_the_same_thread(
    tmp_path: Path,
) -> None:
    """``submit`` tells the loop's thread by ``threading.get_ident()`` and then schedules the
    inline commit on the loop that started the writer: a store started by one
    ``asyncio.run`` and used by another on the same thread (it worked before: waiters carry
    their loop) gets "Event loop is closed" for its first request -- which is nevertheless
    committed later, at close -- and every later request hangs (appended to a gathering that
    nobody commits). Latent in the gateway (cli.py starts and uses the store in one loop)."""
    url = url_of(tmp_path)
    store = SessionStore(url)
    asyncio.run(store.start())

    async def use() -> None:
        await asyncio.wait_for(store.load(SID), 5)
        await asyncio.wait_for(store.save(SID, next_sender=5), 5)

    try:
        asyncio.run(use())
    finally:
        asyncio.run(store.close())


# --- exactly once: a failure after the commit -------------------------------------------------


@pytest.mark.parametrize("inline", [True, False])
def test_a_metrics_hook_that_raises_does_not_commit_a_batch_twice(
    tmp_path: Path, inline: bool
) -> None:
    """``_transaction`` calls ``on_commit`` (the metrics) after the commit; an exception there
    is taken for a failed transaction, and the committed batch is applied again: inline, it is
    handed whole to the writer thread; on the writer thread, it is retried request by request.
    Either way the message log line is stored twice (``insert_log`` is a plain insert) and a
    caller may be told its committed request failed. Pre-existing (the thread mode at
    92e8c26 does the same); the inline path adds one more way in, on the loop's thread."""
    url = url_of(tmp_path)

    async def main() -> None:
        async with SessionStore(url, inline_commits=inline) as store:
            await store.load(SID)
            calls: list[float] = []

            def hook(seconds: float) -> None:
                calls.append(seconds)
                if len(calls) == 1:
                    raise RuntimeError("a bug in a metrics hook")

            store.writer.on_commit = hook
            store.log(SID, "in", fix(1), T0)
            await store.save(SID, next_sender=2)

    asyncio.run(main())
    assert [r[3] for r in read_log(url)] == [fix(1)]
