"""An in-memory session store with the interface of :class:`gateway.store.sessions.SessionStore`.

For unit tests and the in-memory initiator/acceptor pair; nothing survives the process.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from .records import Commit, SessionRecord


class MemoryStore:
    def __init__(self) -> None:
        self._seq: dict[str, tuple[int, int, datetime]] = {}
        self._sent: dict[str, dict[int, bytes]] = {}
        self.logged: list[tuple[str, str, bytes, datetime]] = []
        self.reports: dict[str, tuple[str, int]] = {}

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def load(self, session_id: str) -> SessionRecord:
        if session_id not in self._seq:
            self._seq[session_id] = (1, 1, datetime.now(UTC))
        s, t, c = self._seq[session_id]
        return SessionRecord(next_sender=s, next_target=t, creation_time=c)

    async def commit(self, unit: Commit) -> None:
        s, t, c = self._seq.get(unit.session_id, (1, 1, datetime.now(UTC)))
        self._seq[unit.session_id] = (
            s if unit.next_sender is None else unit.next_sender,
            t if unit.next_target is None else unit.next_target,
            c,
        )
        for exec_id, seq in unit.reports:
            self.reports[exec_id] = (unit.session_id, seq)
        box = self._sent.setdefault(unit.session_id, {})
        for seq, data in unit.sent:
            box[seq] = data

    async def save(
        self,
        session_id: str,
        *,
        sent: Sequence[tuple[int, bytes]] = (),
        next_sender: int | None = None,
        next_target: int | None = None,
        reports: Sequence[tuple[str, int]] = (),
    ) -> None:
        await self.commit(Commit(session_id, tuple(sent), next_sender, next_target,
                                 tuple(reports)))

    def log(self, session_id: str, direction: str, data: bytes, when: datetime) -> None:
        self.logged.append((session_id, direction, data, when))

    async def get_sent(
        self, session_id: str, begin: int, end: int, limit: int = 1000
    ) -> list[tuple[int, bytes]]:
        box = self._sent.get(session_id, {})
        hi = end if end else max(box, default=0)
        seqs = sorted(s for s in box if begin <= s <= hi)[:limit]
        return [(s, box[s]) for s in seqs]

    async def reset(self, session_id: str) -> None:
        self._seq[session_id] = (1, 1, datetime.now(UTC))
        self._sent.pop(session_id, None)
