"""Review of migration 0012 (report_seq on order_events): failing tests for the defects found.

Each test states the exactly-once promise it checks; they fail at b07c621."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from gateway.store.rows import build_append
from gateway.store.store import SessionStore

from .test_orders_store import SID, event, with_store


def test_a_report_committed_with_an_event_row_already_stored_is_not_lost(store_url: str) -> None:
    """An event stored alone first (a client logged out: its report waits for the Logon), then
    a commit that sends its report and carries the event's row again (``insert_event`` skips
    it: ON CONFLICT DO NOTHING). ``_report_seqs`` put the MsgSeqNum into the row that was
    skipped and wrote no ``reports`` row: the report sent is recorded nowhere, and the event is
    unreported again -- sent a second time at the next Logon (a duplicate ExecutionReport)."""
    async def body(store: SessionStore) -> list[int]:
        e1 = event(1, "O1", exec_id="E1", data={"er": [[150, "0"]]})
        await store.append_order_events([e1], [])
        assert [e.event_id for e in await store.unreported_events(SID)] == [1]
        await store.save(SID, sent=[(1, b"8=..E1")], next_sender=2, reports=[("E1", 1)],
                         appends=[build_append([e1], [])])
        return [e.event_id for e in await store.unreported_events(SID)]

    assert with_store(store_url, body) == [], "a report sent and committed is unreported"


def test_a_replay_in_one_batch_with_the_drain_of_its_stored_event_is_not_lost(
    store_url: str,
) -> None:
    """The same through two requests merged into one batch, as the recorder makes them: the
    drain of events kept in memory (``Recorder._drain``: an event whose store request failed
    after its commit -- the answer lost -- is stored already) and a Logon's replay of that
    event's report (``Recorder.replay``: a commit with ``reports`` and no order rows). The
    writer merges consecutive writes into one PendingOrderWrites."""
    async def body(store: SessionStore) -> list[int]:
        e1 = event(1, "O1", exec_id="E1", data={"er": [[150, "0"]]})
        await store.append_order_events([e1], [])  # committed (its answer, say, lost)
        started, gate = threading.Event(), threading.Event()

        def hold(_conn: Any) -> bool:
            started.set()
            return gate.wait(10)

        # hold the writer thread so that the next two requests are taken as one batch
        held = asyncio.ensure_future(store.writer.query(hold))
        assert await asyncio.to_thread(started.wait, 10)
        drain = store.append_now(build_append([e1], []))
        replay = asyncio.ensure_future(
            store.save(SID, sent=[(1, b"8=..E1")], next_sender=2, reports=[("E1", 1)]))
        for _ in range(1000):  # until both requests wait behind the held one
            if store.writer._queue.qsize() >= 2:
                break
            await asyncio.sleep(0)
        assert store.writer._queue.qsize() >= 2
        gate.set()
        await held
        await drain
        await replay
        return [e.event_id for e in await store.unreported_events(SID)]

    assert with_store(store_url, body) == [], "a report sent and committed is unreported"


def _in_index(conn: Any) -> int:
    return int(conn.exec_driver_sql(
        "SELECT count(*) FROM order_events WHERE exec_id IS NOT NULL AND report_seq IS NULL"
    ).scalar_one())


def test_a_report_told_at_logon_leaves_the_partial_index(store_url: str) -> None:
    """An event whose report was told at a Logon (a ``reports`` row) keeps report_seq NULL
    until the store starts again: then its report is folded onto it
    (``SessionStore.fold_reports``), and the partial index of the untold no longer holds it
    (every later Logon would read it again, and probe ``reports`` for it)."""
    async def body(store: SessionStore) -> Any:
        await store.append_order_events(
            [event(i, "O1", exec_id=f"E{i}") for i in range(1, 51)], [])
        await store.save(SID, sent=[(i, b"8=..") for i in range(1, 51)], next_sender=51,
                         reports=[(f"E{i}", i) for i in range(1, 51)])
        assert await store.unreported_events(SID) == []
        return await store.writer.query(_in_index)

    assert with_store(store_url, body) == 50

    async def after_restart(store: SessionStore) -> Any:
        assert await store.unreported_events(SID) == []

        def reports(conn: Any) -> list[Any]:
            return [tuple(r) for r in conn.exec_driver_sql(
                "SELECT exec_id, report_seq FROM order_events ORDER BY event_id").all()]
        return await store.writer.query(_in_index), await store.writer.query(reports)

    in_index, rows = with_store(store_url, after_restart)
    assert in_index == 0, "events told stay in the index of the untold"
    assert rows == [(f"E{i}", i) for i in range(1, 51)]
