"""Outbound sequence numbers written but not stored.

While the store is down, the one message the gateway still writes is a Logout saying why (it
ends the session, or answers a Logon). Its MsgSeqNum counts at the client: QuickFIX moves its
expected number on for any Logout. Were the gateway to restart before the store is back, the
stored number would be behind the client's, and the next Logon reply "too low" -- fatal for
the session. So before such a Logout is written, the number after it goes into a small file
per session (written, fsynced, renamed); the session's load takes the larger of the two; the
file goes once the store has the number. When the file cannot be written (the disk is full
too), the Logout is not written either: the connection just ends.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from gateway.audit.filelog import filename_prefix


class SeqJournal:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _path(self, session_id: str) -> Path:
        return self.directory / f"{filename_prefix(session_id)}.unstored-seq"

    def remember(self, session_id: str, next_sender: int) -> bool:
        """Keep ``next_sender`` for ``session_id`` durably; False when it cannot be."""
        path = self._path(session_id)
        tmp = path.with_suffix(".tmp")
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                os.write(fd, b"%d\n" % next_sender)
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, path)
            dir_fd = os.open(self.directory, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        except (OSError, ValueError):
            with contextlib.suppress(OSError, ValueError):
                tmp.unlink()
            return False
        return True

    def recall(self, session_id: str) -> int | None:
        """The number kept for ``session_id`` (None: none)."""
        try:
            text = self._path(session_id).read_text().strip()
        except OSError:
            return None
        return int(text) if text.isdigit() and len(text) < 19 else None

    def forget(self, session_id: str) -> None:
        with contextlib.suppress(OSError):
            self._path(session_id).unlink()
