"""Inline commits (gateway.store.writer, "Inline commits"): on a SQLite file, a turn's
requests are committed on the event loop's thread when the writer thread has nothing to do;
a locked database or any failure hands them, in order, to the writer thread; the loop never
waits for another connection's lock."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.store.db import SQLITE_BUSY_TIMEOUT_MS
from gateway.store.store import SessionStore

from .test_session_store import T0, fix, read_log

SID = "FIX.4.4:GATEWAY->CLIENT1"


def url_of(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'fixgw.db'}"


def next_sender(path: Path) -> int:
    with sqlite3.connect(path) as db:
        row = db.execute("SELECT next_sender FROM sessions WHERE session_id = ?",
                         (SID,)).fetchone()
    return int(row[0])


@contextlib.asynccontextmanager
async def another_connection(path: Path) -> AsyncIterator[sqlite3.Connection]:
    """A second connection to the store's file (one that takes its write lock)."""
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        yield other
    finally:
        other.close()


def test_an_idle_writer_commits_a_turns_requests_on_the_loops_thread_in_one_transaction(
    tmp_path: Path,
) -> None:
    async def main() -> None:
        async with SessionStore(url_of(tmp_path)) as store:
            await store.load(SID)
            writer = store.writer
            before = (writer.inline_commits, store.stats.batches)
            threads: list[int] = []
            writer.on_commit = lambda _s: threads.append(threading.get_ident())
            # one turn: two log lines and a commit (its request made when it is awaited)
            store.log(SID, "in", fix(1), T0)
            saving = store.save(SID, sent=((1, fix(1)),), next_sender=2)
            store.log(SID, "out", fix(1), T0)
            await saving
            assert writer.inline_commits == before[0] + 1
            assert store.stats.batches == before[1] + 1
            assert threads == [threading.get_ident()]

    asyncio.run(main())
    assert next_sender(tmp_path / "fixgw.db") == 2
    assert [r[1] for r in read_log(url_of(tmp_path))] == ["in", "out"]


def test_a_locked_database_does_not_hold_the_loop_and_the_writer_thread_commits_in_order(
    tmp_path: Path,
) -> None:
    """Another connection holds the write lock: the inline attempt fails at once (busy
    timeout 0) instead of blocking the loop for the busy timeout; the writer thread commits
    the request once the lock is released, and a request made meanwhile comes after it."""
    path = tmp_path / "fixgw.db"

    async def main() -> None:
        async with SessionStore(url_of(tmp_path)) as store, another_connection(path) as other:
            await store.load(SID)
            writer = store.writer
            inline = writer.inline_commits
            other.execute("BEGIN IMMEDIATE")
            first = asyncio.ensure_future(store.save(SID, next_sender=5))
            started = time.monotonic()
            for _ in range(3):  # the save's task, the inline attempt, one more turn
                await asyncio.sleep(0)
            held = time.monotonic() - started
            assert held < SQLITE_BUSY_TIMEOUT_MS / 1000 / 5, held
            assert not first.done()
            second = asyncio.ensure_future(store.save(SID, next_sender=7))
            await asyncio.sleep(0)
            assert not second.done()
            other.execute("COMMIT")
            await asyncio.gather(first, second)
            assert writer.inline_commits == inline  # both by the writer thread
            await store.save(SID, next_sender=9)  # idle again: inline
            assert writer.inline_commits == inline + 1
        assert next_sender(path) == 9

    asyncio.run(main())


def test_requests_queued_to_a_busy_writer_thread_keep_their_order(tmp_path: Path) -> None:
    """While the writer thread has work, a turn's requests go to its queue, behind it."""
    path = tmp_path / "fixgw.db"

    async def main() -> None:
        async with SessionStore(url_of(tmp_path)) as store, another_connection(path) as other:
            await store.load(SID)
            other.execute("BEGIN IMMEDIATE")
            saves = []
            for n in range(2, 12):  # one per turn: the first goes to the writer thread
                saves.append(asyncio.ensure_future(store.save(SID, next_sender=n)))
                await asyncio.sleep(0)
                await asyncio.sleep(0)
            other.execute("COMMIT")
            await asyncio.gather(*saves)
        assert next_sender(path) == 11

    asyncio.run(main())


def test_a_close_in_the_same_turn_still_commits_what_was_gathered(tmp_path: Path) -> None:
    async def main() -> None:
        store = SessionStore(url_of(tmp_path))
        await store.start()
        await store.load(SID)
        store.log(SID, "in", fix(3), T0)  # gathered for the end of this turn
        await store.close()

    asyncio.run(main())
    assert [r[3] for r in read_log(url_of(tmp_path))] == [fix(3)]


@pytest.mark.parametrize("inline", [False, True])
def test_thread_mode_never_commits_on_the_loop(tmp_path: Path, inline: bool) -> None:
    async def main() -> int:
        async with SessionStore(url_of(tmp_path), inline_commits=inline) as store:
            await store.load(SID)
            for n in range(2, 6):
                await store.save(SID, next_sender=n)
            return store.writer.inline_commits

    commits = asyncio.run(main())
    assert (commits > 0) is inline
    assert next_sender(tmp_path / "fixgw.db") == 5


def test_a_database_server_is_never_reached_from_the_loop(pg_url: str) -> None:
    async def main() -> int:
        async with SessionStore(pg_url) as store:
            await store.load(SID)
            await store.save(SID, next_sender=2)
            return store.writer.inline_commits

    assert asyncio.run(main()) == 0


def test_a_log_line_joins_the_next_commit_or_is_committed_alone_soon_after(
    tmp_path: Path,
) -> None:
    async def main() -> None:
        async with SessionStore(url_of(tmp_path)) as store:
            await store.load(SID)
            stats = store.stats
            store.log(SID, "out", fix(1), T0)
            await asyncio.sleep(0)
            await asyncio.sleep(0)
            assert store.stats.batches == stats.batches  # held
            await store.save(SID, next_sender=2)  # a later turn: the line joins its commit
            assert store.stats.batches == stats.batches + 1
            assert [r[3] for r in read_log(url_of(tmp_path))] == [fix(1)]
            store.log(SID, "in", fix(2), T0)  # nothing after it: committed alone
            deadline = time.monotonic() + 10
            while store.stats.batches < stats.batches + 2:
                assert time.monotonic() < deadline, "the held line was never committed"
                await asyncio.sleep(0.01)
            assert [r[3] for r in read_log(url_of(tmp_path))] == [fix(1), fix(2)]

    asyncio.run(main())
