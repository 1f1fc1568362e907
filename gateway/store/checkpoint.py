"""WAL checkpoints of the SQLite store, off the writer's commit path.

In WAL mode every commit appends pages to the ``-wal`` file; a *checkpoint* copies them back
into the database file and, with ``synchronous=NORMAL``, syncs both files to disk
(https://www.sqlite.org/wal.html#checkpointing). By default SQLite runs it inside the commit
that pushes the WAL past 1000 pages, so one order in a few dozen waited for two ``fsync``
calls: milliseconds, the whole p99 of the order path at 1 in flight.

SQLite's documentation suggests the alternative used here: the writer's connection keeps only a
far-off automatic checkpoint as a safety net (:data:`WRITER_AUTOCHECKPOINT_PAGES`, reached only
if this thread stops working), and a :class:`Checkpointer` thread with its own connection runs
``PRAGMA wal_checkpoint(PASSIVE)`` every :data:`CHECKPOINT_INTERVAL_S`. A passive checkpoint
never waits for, nor blocks, the writer: it copies what it can, the writer rewinds the WAL to
its start once everything has been copied, and ``journal_size_limit`` caps the file it leaves.
Under unbroken load the writer may never find everything copied; a WAL still longer than
:data:`RESTART_ABOVE_PAGES` after a passive checkpoint gets a RESTART one, which holds the next
commit back until it is done.
Durability is unchanged: a commit is in the WAL before the commit returns, as before.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine

logger = logging.getLogger(__name__)

CHECKPOINT_INTERVAL_S = 0.2
"""How often the checkpointer copies the WAL into the database file."""
WRITER_AUTOCHECKPOINT_PAGES = 100_000
"""The writer's own automatic checkpoint (about 200 MB of WAL at 2 KiB pages, 400 at 4 KiB):
the safety net only."""
WAL_SIZE_LIMIT_BYTES = 64 << 20
"""``journal_size_limit``: the WAL file is truncated to this when it is rewound."""
RESTART_ABOVE_PAGES = 16_384
"""A WAL still this long (32 MB at 2 KiB pages, 64 at 4 KiB) after a passive checkpoint gets a
RESTART checkpoint."""


def configure_writer(dbapi_connection: Any) -> None:
    """Settings of the connection that commits (the store's writer thread)."""
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA wal_autocheckpoint = {WRITER_AUTOCHECKPOINT_PAGES}")
        cursor.execute(f"PRAGMA journal_size_limit = {WAL_SIZE_LIMIT_BYTES}")
    finally:
        cursor.close()


@dataclass(frozen=True, slots=True)
class CheckpointStats:
    runs: int
    """Checkpoints attempted."""
    failures: int
    restarts: int
    """RESTART checkpoints run because the WAL had grown past :data:`RESTART_ABOVE_PAGES`."""
    wal_pages: int
    """Pages in the WAL at the last checkpoint."""
    checkpointed: int
    """Of those, pages in the database file after it."""


class Checkpointer:
    """A daemon thread running passive WAL checkpoints on a connection of its own.

    ``engine`` is the store's SQLite engine (its connect hook puts connections in WAL mode).
    :meth:`run_once` is the unit of work (tests call it directly); :meth:`start` runs it every
    ``interval`` seconds until :meth:`stop`.
    """

    def __init__(self, engine: Engine, interval: float = CHECKPOINT_INTERVAL_S) -> None:
        self._engine = engine
        self._interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._dbapi: Any = None
        self._runs = 0
        self._failures = 0
        self._restarts = 0
        self._last = (0, 0)
        self.restart_above_pages = RESTART_ABOVE_PAGES
        self.ran = threading.Event()
        """Set after every checkpoint (tests wait on it instead of sleeping)."""

    @property
    def stats(self) -> CheckpointStats:
        return CheckpointStats(self._runs, self._failures, self._restarts, *self._last)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="fixgw-checkpoint", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread (after the checkpoint it may be running) and close its connection."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self._close()

    def run_once(self) -> int:
        """One passive checkpoint; returns the number of WAL pages now in the database file."""
        self._runs += 1
        try:
            if self._dbapi is None:
                self._dbapi = self._engine.raw_connection()
            cursor = self._dbapi.cursor()
            try:
                cursor.execute("PRAGMA wal_checkpoint(PASSIVE)")
                row = cursor.fetchone()
                if row is not None and int(row[1]) > self.restart_above_pages:
                    # Under unbroken load a commit lands during almost every passive
                    # checkpoint, and the writer never rewinds the WAL: a RESTART checkpoint
                    # makes the next commit wait for it (one pause of a few ms), then rewind.
                    cursor.execute("PRAGMA wal_checkpoint(RESTART)")
                    row = cursor.fetchone()
                    self._restarts += 1
            finally:
                cursor.close()
        except Exception:
            self._failures += 1
            if self._failures == 1 or self._failures % 100 == 0:
                logger.warning("WAL checkpoint failed (%d so far); the writer's automatic "
                               "checkpoint remains", self._failures, exc_info=True)
            self._close()
            return 0
        # (busy, pages in the WAL, pages checkpointed); -1s when the database is not in WAL mode
        if row is not None:
            self._last = (max(int(row[1]), 0), max(int(row[2]), 0))
        self.ran.set()
        return self._last[1]

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.run_once()

    def _close(self) -> None:
        dbapi, self._dbapi = self._dbapi, None
        if dbapi is not None:
            try:
                dbapi.close()
            except Exception:
                logger.warning("closing the checkpoint connection failed", exc_info=True)
