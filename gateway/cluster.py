"""This gateway as one node among those that share a store (Invariant 9: one owner per session).

At start the node takes its name in the store (:meth:`SessionStore.register_node
<gateway.store.sessions.SessionStore.register_node>`: a fencing token every commit checks) and
claims the configured sessions that no live node serves. Then, every fifth of a lease, it
renews its lease and takes over the sessions of nodes that are gone (lease run out, or their
process dead on this host); those are *adopted*: their sequence numbers, open orders, reports
not yet told, cancel-on-disconnect promises and the kill switch are loaded from the store and
the venues reconciled (``adopt``). A Logon for a session another live node serves is refused
(without a Logout: a Logout from a node that does not own the session's numbers would move the
client's expected number past the owner's next message). When another process takes this
node's place (the node was paused past its lease), the store refuses every commit and the
gateway stops (``fenced``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol, runtime_checkable

from gateway.store.errors import StoreUnavailable
from gateway.store.nodes import Claim, Me, NodeFenced, NodeRecord

log = logging.getLogger("fixgw.cluster")

Adopt = Callable[[dict[str, str]], Awaitable[None]]
"""Take on sessions (id -> the node they came from, "" when none served them)."""


@runtime_checkable
class NodeStore(Protocol):
    async def register_node(self, node: str, *, address: str, lease_s: float) -> int: ...

    async def set_node_address(self, address: str) -> None: ...

    async def renew_node(self) -> None: ...

    async def claim_sessions(self, session_ids: Sequence[str]) -> Claim: ...

    async def take_over_gone(self) -> dict[str, str]: ...

    async def live_nodes(self) -> list[NodeRecord]: ...

    async def leave_node(self) -> None: ...

    @property
    def node(self) -> Me | None: ...


class Ownership:
    """The sessions this node serves, kept by its lease (module docstring)."""

    def __init__(self, store: NodeStore, node: str, lease_s: float) -> None:
        self.store = store
        self.node = node
        self.lease_s = lease_s
        self.owned: set[str] = set()
        self.others_alive = False
        """Another live node shares the store (so a venue account may be shared: no bulk
        cancel, which would cancel that node's orders too)."""
        self._adopt: Adopt | None = None
        self._on_fenced: Callable[[str], None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._claiming = asyncio.Lock()

    async def start(self, address: str, session_ids: Sequence[str]) -> None:
        """Take the node name and claim ``session_ids`` where no live node serves them."""
        token = await self.store.register_node(self.node, address=address, lease_s=self.lease_s)
        got = await self.store.claim_sessions(session_ids)
        self.owned = set(got.ours)
        await self._count_others()
        served = {f"{sid} ({holder.describe()})" for sid, holder in got.others.items()}
        log.info("node %s (fencing token %d): serving %d of %d sessions%s", self.node, token,
                 len(self.owned), len(session_ids),
                 f"; served elsewhere: {', '.join(sorted(served))}" if served else "")
        for sid, gone in sorted(got.taken.items()):
            log.warning("node %s: took over %s from node %s (gone)", self.node, sid, gone)

    def watch(self, adopt: Adopt, on_fenced: Callable[[str], None]) -> None:
        """Renew the lease and take over gone nodes' sessions from now on."""
        self._adopt, self._on_fenced = adopt, on_fenced
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Stop renewing and end the lease (another node may take the sessions at once)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(StoreUnavailable, NodeFenced):
            await self.store.leave_node()

    async def _run(self) -> None:
        interval = self.lease_s / 5
        while True:
            await asyncio.sleep(interval)
            try:
                await self.store.renew_node()
                async with self._claiming:
                    taken = await self.store.take_over_gone()
                    if taken:
                        await self._take(taken)
                await self._count_others()
            except NodeFenced as exc:
                if self._on_fenced is not None:
                    self._on_fenced(str(exc))
                return
            except StoreUnavailable:
                continue  # nobody can take over while the store is down for all
            except Exception:
                log.exception("node %s: lease upkeep failed", self.node)

    async def _take(self, taken: dict[str, str]) -> None:
        for sid, gone in sorted(taken.items()):
            log.warning("node %s: took over %s from node %s (its lease ran out or its process "
                        "ended)", self.node, sid, gone or "(none)")
        self.owned |= set(taken)
        if self._adopt is not None:
            await self._adopt(taken)

    async def _count_others(self) -> None:
        live = await self.store.live_nodes()
        self.others_alive = any(n.node != self.node for n in live)

    async def logon_check(self, session_id: str) -> str | None:
        """None when this node serves ``session_id`` (claimed now if no live node does);
        otherwise who does, for the refusal."""
        if session_id in self.owned:
            return None
        async with self._claiming:
            got = await self.store.claim_sessions([session_id])
            new = {sid: got.taken.get(sid, "") for sid in got.ours if sid not in self.owned}
            if new:
                await self._take(new)
        if session_id in self.owned:
            return None
        holder = got.others.get(session_id)
        where = holder.describe() if holder is not None else "another node"
        return f"{session_id} is served by {where}"
