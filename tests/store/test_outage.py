"""Store outages at the writer: PostgreSQL killed and restarted (a private cluster), SQLite on a
full disk (a small tmpfs). The failing request and every one after it fail with
StoreUnavailable, at once while the store is down; what was committed is a prefix of what was
asked; message log entries are kept and written once the store is back; the listeners hear of
each change once; the same store object works again afterwards."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import subprocess
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from gateway.store.db import make_engine
from gateway.store.errors import StoreUnavailable
from gateway.store.schema import message_log
from gateway.store.store import SessionStore

from .pgcluster import private_cluster

SID = "FIX.4.4:GATEWAY->CLIENT1"
NOW = datetime(2026, 12, 5, tzinfo=UTC)


class Availability:
    """What the store's listener was told, and a way to wait for the next change."""

    def __init__(self, store: SessionStore) -> None:
        self.changes: list[tuple[bool, str]] = []
        self._changed = asyncio.Event()
        store.add_availability_listener(self._on_change)

    def _on_change(self, available: bool, why: str) -> None:
        self.changes.append((available, why))
        self._changed.set()

    async def wait_for(self, available: bool) -> None:
        """Until the last change told is ``available`` (bounded by 30 s)."""
        async with asyncio.timeout(30):
            while not self.changes or self.changes[-1][0] is not available:
                self._changed.clear()
                await self._changed.wait()


def _logged(url: str) -> list[bytes]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return [bytes(r[0]) for r in conn.execute(
                select(message_log.c.data).order_by(message_log.c.id))]
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_postgres_killed_then_restarted() -> None:
    with private_cluster() as pg:
        async def body() -> None:
            async with SessionStore(pg.url) as store:
                seen = Availability(store)
                await store.save(SID, sent=[(1, b"one")], next_sender=2)
                store.log(SID, "out", b"before", NOW)
                await asyncio.to_thread(pg.kill)
                with pytest.raises(StoreUnavailable):
                    await store.save(SID, sent=[(2, b"two")], next_sender=3)
                await seen.wait_for(False)
                assert not store.available and store.unavailable_reason
                # down: refused at once, reads too; the message log is kept meanwhile
                store.log(SID, "out", b"while down", NOW)
                for call in (store.save(SID, next_target=5), store.load(SID),
                             store.get_sent(SID, 1, 0)):
                    with pytest.raises(StoreUnavailable):
                        await asyncio.wait_for(call, 1.0)
                await asyncio.to_thread(pg.start)
                await seen.wait_for(True)
                assert store.available and store.outages == 1
                # nothing of the failed requests was committed; the store works again
                assert await store.get_sent(SID, 1, 0) == [(1, b"one")]
                assert (await store.load(SID)).next_sender == 2
                await store.save(SID, sent=[(2, b"two")], next_sender=3)
                assert (await store.load(SID)).next_sender == 3
                assert [up for up, _ in seen.changes] == [False, True]
            assert _logged(pg.url) == [b"before", b"while down"]

        asyncio.run(asyncio.wait_for(body(), 120))


@contextlib.contextmanager
def small_disk(megabytes: int) -> Iterator[Path]:
    """A tmpfs of ``megabytes`` (a disk that fills up), unmounted afterwards."""
    mount = Path(tempfile.mkdtemp(prefix="fixgw-full-"))
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={megabytes}m", "tmpfs",
                           str(mount)], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        mount.rmdir()
        pytest.skip(f"cannot mount a tmpfs to fill up (needs root): {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)
        mount.rmdir()


def _fill(path: Path, leave: int) -> Path:
    """A ballast file taking all but ``leave`` bytes of ``path``'s file system (all of it when
    ``leave`` is 0)."""
    ballast = path / "ballast"
    stat = os.statvfs(path)
    free = stat.f_bavail * stat.f_frsize
    with ballast.open("ab") as f:
        try:
            f.write(b"\0" * max(free - leave, 0))
            f.flush()
        except OSError as exc:
            if exc.errno != errno.ENOSPC:
                raise
    return ballast


def test_sqlite_on_a_full_disk_fails_a_prefix_and_recovers_when_space_is_freed() -> None:
    with small_disk(8) as disk:
        url = f"sqlite:///{disk / 'fixgw.db'}"

        async def body() -> None:
            async with SessionStore(url) as store:
                seen = Availability(store)
                await store.load(SID)
                ballast = _fill(disk, 256 << 10)
                # 400 saves of 8 KB in waves of 20 (each wave one group commit or a few): the
                # disk fills part way through
                results: list[BaseException | None] = []
                for wave in range(20):
                    results += await asyncio.gather(
                        *(store.save(SID, sent=[(i, bytes([i % 256]) * 8192)], next_sender=i + 1)
                          for i in range(wave * 20 + 1, wave * 20 + 21)),
                        return_exceptions=True,
                    )
                ok = [r is None for r in results]
                failed_at = ok.index(False)
                assert failed_at > 0 and not any(ok[failed_at:]), "a prefix commits, in order"
                assert all(isinstance(r, StoreUnavailable) for r in results[failed_at:])
                await seen.wait_for(False)
                store.log(SID, "in", b"kept while full", NOW)
                with pytest.raises(StoreUnavailable):
                    await store.save(SID, next_target=9)
                ballast.unlink()  # space again: the writer's probe finds out
                await seen.wait_for(True)
                stored = await store.get_sent(SID, 1, 0)
                assert [seq for seq, _ in stored] == list(range(1, failed_at + 1))
                assert (await store.load(SID)).next_sender == failed_at + 1
                await store.save(SID, sent=[(failed_at + 1, b"after")], next_sender=failed_at + 2)
                assert (await store.load(SID)).next_sender == failed_at + 2
            assert _logged(url)[-1:] == [b"kept while full"]

        asyncio.run(asyncio.wait_for(body(), 120))
