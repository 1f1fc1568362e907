"""A session commit that skips the repository's argument checks, for tests of what the
database itself refuses."""

from __future__ import annotations

from collections.abc import Sequence

from gateway.store.store import SessionStore
from gateway.store.writes import SessionCommit


async def unchecked_save(store: SessionStore, session_id: str, sent: Sequence[tuple[int, bytes]],
                         next_sender: int, reports: Sequence[tuple[str, int]] = ()) -> None:
    """:meth:`SessionStore.save` without its checks (``next_sender=0`` reaches the database,
    whose CHECK constraint rejects it). A coroutine: gathered, it queues its request after
    those of the saves before it (a batch merges sequence numbers, the last one wins)."""
    w = store.writer
    await w.call(SessionCommit(
        w.waiter(), store._known, session_id,
        tuple((session_id, seq, data) for seq, data in sent), next_sender, None,
        tuple((exec_id, session_id, seq) for exec_id, seq in reports), ()))
