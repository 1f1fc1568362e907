"""This gateway as one node among those that share a store (Invariant 9: one owner per session).

At start the node takes its name in the store (:meth:`SessionStore.register_node
<gateway.store.sessions.SessionStore.register_node>`: a fencing token every commit checks),
starts renewing its lease at once (every fifth of it, in a task of its own: nothing this node
does may hold the renewal up), and claims the configured sessions that no live node serves.

Another task takes over the sessions of nodes that are gone (lease run out, or their process
dead on this host) -- but only once this node has itself kept its lease for a whole lease
since it last could not reach the store: after an outage every lease looks run out, and the
first node back must not take the others' sessions for that. Sessions taken over are *adopted*
(``adopt``): their sequence numbers, open orders, reports not yet told, cancel-on-disconnect
promises and the kill switch are loaded from the store and the venues reconciled; an adoption
that fails is tried again until it succeeds, and a Logon for a session being adopted waits for
it. A Logon for a session another live node serves is refused (without a Logout: a Logout
from a node that does not own the session's numbers would move the client's expected number
past the owner's next message).

The node calls a venue only while its lease runs by its own clock (:meth:`wait_lease`): a
process paused past its lease and taken over must not place or cancel what its taker now
owns. When another process has taken this node's place, the store refuses every commit and
the gateway stops (``on_fenced``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence

from gateway.store.errors import StoreUnavailable
from gateway.store.nodes import Claim, NodeFenced, NodeStore

log = logging.getLogger("fixgw.cluster")

Adopt = Callable[[dict[str, str]], Awaitable[None]]
"""Take on sessions (id -> the node they came from, "" when none served them)."""


class Ownership:
    """The sessions this node serves, kept by its lease (module docstring)."""

    def __init__(
        self, store: NodeStore, node: str, lease_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.node = node
        self.lease_s = lease_s
        self.clock = clock
        self.owned: set[str] = set()
        """Sessions this node serves (adopted, or being adopted: see :attr:`adopting`)."""
        self.leaving: set[str] = set()
        """Sessions being handed over to another node (Logons for them are refused)."""
        self.adopting: dict[str, str] = {}
        """Sessions taken over whose adoption has not succeeded yet -> where they came from."""
        self.others_alive = False
        """Another live node shares the store (so a venue account may be shared: no bulk
        cancel, which would cancel that node's orders too)."""
        self.fenced: str | None = None
        self._adopt: Adopt | None = None
        self._on_fenced: Callable[[str], None] | None = None
        self._renewer: asyncio.Task[None] | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._claiming = asyncio.Lock()
        self._adopted = asyncio.Event()
        self._lease_until = 0.0
        """Until when this node's lease runs by its own clock (from before the last renewal's
        request: never later than the store's view)."""
        self._steady_since: float | None = None
        """Since when every renewal succeeded (None: the last one failed)."""
        self._lease_ok = asyncio.Event()

    # --- lifecycle ------------------------------------------------------------------------------

    async def start(self, address: str, session_ids: Sequence[str]) -> None:
        """Take the node name, start renewing, and claim ``session_ids`` where no live node
        serves them."""
        asked = self.clock()
        token = await self.store.register_node(self.node, address=address, lease_s=self.lease_s)
        self._renewed(asked)
        self._renewer = asyncio.get_running_loop().create_task(self._renew())
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
        """Take over gone nodes' sessions from now on."""
        self._adopt, self._on_fenced = adopt, on_fenced
        if self.fenced is not None:
            on_fenced(self.fenced)
            return
        self._watcher = asyncio.get_running_loop().create_task(self._watch())

    async def stop(self) -> None:
        """Stop renewing and end the lease (another node may take the sessions at once)."""
        for task in (self._watcher, self._renewer):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        with contextlib.suppress(StoreUnavailable, NodeFenced):
            await self.store.leave_node()

    # --- the lease ------------------------------------------------------------------------------

    def _renewed(self, asked: float) -> None:
        self._lease_until = asked + self.lease_s
        if self._steady_since is None:
            self._steady_since = asked
        self._lease_ok.set()

    async def _renew(self) -> None:
        interval = self.lease_s / 5
        while True:
            await asyncio.sleep(interval)
            asked = self.clock()
            try:
                await self.store.renew_node()
            except NodeFenced as exc:
                self._fence(str(exc))
                return
            except Exception as failed:  # (a name of its own: mypyc types a name once)
                if self._steady_since is not None:
                    log.warning("node %s: the lease could not be renewed (%s)", self.node,
                                failed)
                self._steady_since = None
                if self.clock() >= self._lease_until:
                    self._lease_ok.clear()
                continue
            self._renewed(asked)

    def _fence(self, why: str) -> None:
        self.fenced = why
        self._lease_ok.clear()
        if self._on_fenced is not None:
            self._on_fenced(why)

    def lease_runs(self) -> bool:
        """Whether this node's lease runs by its own clock."""
        return self.fenced is None and self.clock() < self._lease_until

    async def wait_lease(self) -> None:
        """Return while the lease runs; wait while it does not (the store unreachable: another
        node may be taking over); raise NodeFenced once another process took this node's
        place. Called before every venue call."""
        while not self.lease_runs():
            if self.fenced is not None:
                raise NodeFenced(self.node)
            self._lease_ok.clear()
            await self._lease_ok.wait()

    # --- taking over ------------------------------------------------------------------------------

    async def _watch(self) -> None:
        interval = self.lease_s / 5
        while True:
            await asyncio.sleep(interval)
            if self.fenced is not None:
                return
            try:
                async with self._claiming:
                    if self._steady_for() >= self.lease_s:
                        taken = await self.store.take_over_gone()
                        for sid, gone in sorted(taken.items()):
                            log.warning("node %s: took over %s from node %s (its lease ran "
                                        "out or its process ended)", self.node, sid, gone)
                        self.adopting.update(taken)
                        self.owned |= set(taken)
                    # sessions another node handed over to this one
                    given = await self.store.sessions_owned() - self.owned - self.leaving
                    for sid in sorted(given):
                        log.warning("node %s: %s was handed over to it", self.node, sid)
                        self.adopting[sid] = "(handed over)"
                    self.owned |= given
                    await self._adopt_pending()
                await self._count_others()
            except NodeFenced as exc:
                self._fence(str(exc))
                return
            except StoreUnavailable:
                continue
            except Exception:
                log.exception("node %s: taking over failed", self.node)

    def _steady_for(self) -> float:
        since = self._steady_since
        return 0.0 if since is None else self.clock() - since

    async def _adopt_pending(self) -> None:
        """Adopt what was taken over and is not adopted yet (tried again until it succeeds)."""
        if not self.adopting or self._adopt is None:
            return
        pending = dict(self.adopting)
        try:
            await self._adopt(pending)
        except Exception as exc:
            log.error("node %s: adopting %s failed (%s); trying again", self.node,
                      ", ".join(sorted(pending)), exc)
            raise
        for sid in pending:
            self.adopting.pop(sid, None)
        self._adopted.set()

    async def _count_others(self) -> None:
        live = await self.store.live_nodes()
        self.others_alive = any(n.node != self.node for n in live)

    async def hand_over(
        self, session_id: str, to: str | None, let_go: Callable[[], Awaitable[None]]
    ) -> None:
        """Give ``session_id`` to node ``to`` (None: to whichever node a Logon reaches first):
        ``let_go`` ends its connection and drops its state here (raising to refuse), then the
        store names the new owner, which adopts it. Logons for it are refused meanwhile.
        Raises KeyError when this node does not serve it."""
        if session_id not in self.owned or session_id in self.adopting:
            raise KeyError(session_id)
        if to is not None and not any(n.node == to for n in await self.store.live_nodes()):
            raise LookupError(f"node {to} is not running")
        async with self._claiming:
            self.leaving.add(session_id)
            try:
                await let_go()
                try:
                    await self.store.hand_over_session(session_id, to)
                except Exception:
                    # still this node's: taken on again from the store
                    self.adopting[session_id] = "(a hand-over that failed)"
                    await self._adopt_pending()
                    raise
                self.owned.discard(session_id)
                log.warning("node %s: %s handed over to %s", self.node, session_id,
                            f"node {to}" if to else "whichever node a Logon reaches first")
            finally:
                self.leaving.discard(session_id)

    async def logon_check(self, session_id: str) -> str | None:
        """None when this node serves ``session_id`` (claimed now if no live node does; its
        adoption done first); otherwise who does, for the refusal."""
        if session_id in self.leaving:
            return f"{session_id} is being handed over to another node"
        if session_id in self.owned and session_id not in self.adopting:
            return None
        async with self._claiming:
            got: Claim | None = None
            if session_id not in self.owned:
                got = await self.store.claim_sessions([session_id])
                new = {sid: got.taken.get(sid, "") for sid in got.ours if sid not in self.owned}
                self.owned |= set(new)
                # adopted, whoever had it: a session handed to no node has its state stored
                self.adopting.update({s: g or "(unowned)" for s, g in new.items()})
                for sid in new:
                    if new[sid]:
                        log.warning("node %s: took over %s from node %s (gone) at a Logon",
                                    self.node, sid, new[sid])
            await self._adopt_pending()
        if session_id in self.owned:
            return None
        holder = got.others.get(session_id) if got is not None else None
        where = holder.describe() if holder is not None else "another node"
        return f"{session_id} is served by {where}"
