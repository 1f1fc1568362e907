"""WAL checkpoints of a SQLite file store run in their own thread, never in the writer's commits
(gateway.store.checkpoint)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from gateway.store.store import SessionStore

SID = "FIX.4.4:GATEWAY->CLIENT1"
PAGE = 4096


def _message(seq: int) -> bytes:
    return b"8=FIX.4.4\x019=99\x0135=8\x0134=%d\x0158=%s\x0110=000\x01" % (seq, b"x" * PAGE)


async def _save_pages(store: SessionStore, n: int) -> None:
    for seq in range(1, n + 1):
        await store.save(SID, sent=[(seq, _message(seq))], next_sender=seq + 1)


def test_the_writer_leaves_checkpoints_to_the_checkpointer(tmp_path: Path) -> None:
    db = tmp_path / "gw.db"

    async def main() -> None:
        # the thread never wakes during the test: only run_once below checkpoints
        async with SessionStore(f"sqlite:///{db}", checkpoint_interval=3600) as store:
            await _save_pages(store, 1500)  # > 1500 pages: SQLite's default would checkpoint
            wal = db.with_name(db.name + "-wal")
            assert wal.stat().st_size > 1500 * PAGE  # not rewound: no checkpoint ran
            checkpointer = store.checkpointer
            assert checkpointer is not None
            copied = await asyncio.to_thread(checkpointer.run_once)
            stats = checkpointer.stats
            assert stats.wal_pages > 1500
            assert copied == stats.checkpointed == stats.wal_pages
            assert stats.failures == 0
            # and the writer carries on after it, the data intact
            await store.save(SID, sent=[(1501, _message(1501))], next_sender=1502)
            sent = await store.get_sent(SID, 1499, 0)
            assert [seq for seq, _ in sent] == [1499, 1500, 1501]

    asyncio.run(main())


def test_the_checkpoint_thread_runs_until_the_store_closes(tmp_path: Path) -> None:
    async def main() -> None:
        async with SessionStore(f"sqlite:///{tmp_path / 'gw.db'}",
                                checkpoint_interval=0.01) as store:
            checkpointer = store.checkpointer
            assert checkpointer is not None
            await _save_pages(store, 10)
            checkpointer.ran.clear()
            assert await asyncio.to_thread(checkpointer.ran.wait, 30)
            assert checkpointer.stats.runs >= 1
            assert checkpointer.stats.failures == 0
        assert checkpointer._thread is None  # joined by close

    asyncio.run(main())


def test_no_checkpointer_without_a_sqlite_file() -> None:
    assert SessionStore("sqlite://").checkpointer is None
    assert SessionStore("sqlite:///:memory:").checkpointer is None
    assert SessionStore("postgresql+psycopg://u@127.0.0.1:1/x").checkpointer is None


def test_a_long_wal_gets_a_restart_checkpoint(tmp_path: Path) -> None:
    """Past ``restart_above_pages`` a passive checkpoint is followed by a RESTART one (under
    unbroken load the writer would otherwise never rewind the WAL)."""
    async def main() -> None:
        async with SessionStore(f"sqlite:///{tmp_path / 'gw.db'}",
                                checkpoint_interval=3600) as store:
            checkpointer = store.checkpointer
            assert checkpointer is not None
            await _save_pages(store, 50)
            checkpointer.restart_above_pages = 10_000
            await asyncio.to_thread(checkpointer.run_once)
            assert checkpointer.stats.restarts == 0
            for seq in range(51, 101):  # the writer rewound: a WAL of these alone
                await store.save(SID, sent=[(seq, _message(seq))], next_sender=seq + 1)
            checkpointer.restart_above_pages = 20
            await asyncio.to_thread(checkpointer.run_once)
            assert checkpointer.stats.restarts == 1 and checkpointer.stats.failures == 0
            await store.save(SID, sent=[(101, _message(101))], next_sender=102)
            assert [seq for seq, _ in await store.get_sent(SID, 99, 0)] == [99, 100, 101]

    asyncio.run(main())
