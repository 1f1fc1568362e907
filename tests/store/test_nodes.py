"""Gateway nodes in the store (Invariant 9): a node name held by a live process is refused, a
dead one is taken over at once; sessions are claimed by one node; a node whose lease ran out is
taken over whole, and its next commit is refused (fencing)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.cluster import Ownership
from gateway.store.errors import StoreUnavailable
from gateway.store.nodes import Claim, NodeBusy, NodeFenced, process_id
from gateway.store.store import SessionStore

S1, S2, S3 = "FIX.4.4:GW->A", "FIX.4.4:GW->B", "FIX.4.4:GW->C"


def _dead_pid() -> int:
    """The id of a process that has ended."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_live_node_name_is_refused_and_a_dead_ones_taken(store_url: str) -> None:
    async def body() -> None:
        async with SessionStore(store_url) as a, SessionStore(store_url) as b:
            # a poses as another live process of this host (this test's parent)
            alive = process_id(os.getppid())
            assert await a.register_node("n1", address="h:1", lease_s=30, process=alive) == 1
            with pytest.raises(NodeBusy, match="node n1 at h:1 is running"):
                await b.register_node("n1", address="h:2", lease_s=30)
            # a node name whose process is gone (this host, its process ended): taken at once
            dead = f"{_dead_pid()}:0"
            assert await b.register_node("n2", address="h:3", lease_s=30, process=dead) == 1
            async with SessionStore(store_url) as c:
                assert await c.register_node("n2", address="h:4", lease_s=30) == 2
                # this very process again (a gateway stopped and started in it): taken too
                async with SessionStore(store_url) as d:
                    assert await d.register_node("n2", address="h:5", lease_s=30) == 3
            assert [n.node for n in await a.live_nodes()] == ["n1", "n2"]

    asyncio.run(body())


def test_sessions_have_one_owner_and_a_gone_node_is_taken_over_and_fenced(
    store_url: str,
) -> None:
    async def body() -> None:
        async with SessionStore(store_url) as a, SessionStore(store_url) as b:
            told: list[tuple[bool, str]] = []
            a.add_availability_listener(lambda up, why: told.append((up, why)))
            # a runs on "another host": only its lease tells whether it lives
            await a.register_node("a", address="10.0.0.1:9876", lease_s=0.6, host="elsewhere")
            await b.register_node("b", address="10.0.0.2:9876", lease_s=30)
            got = await a.claim_sessions([S1, S2])
            assert got.ours == {S1, S2} and not got.others
            await a.save(S1, sent=[(1, b"from a")], next_sender=2)
            got = await b.claim_sessions([S1, S3])
            assert got.ours == {S3} and got.others[S1].node == "a"
            assert got.others[S1].address == "10.0.0.1:9876"
            assert (await b.session_owner(S1)).node == "a"  # type: ignore[union-attr]
            # a stops renewing (paused, cut off): once its lease has run out, b takes it over
            taken = await _taken_over_by(b)
            assert taken == {S1: "a", S2: "a"}
            assert (await b.session_owner(S2)).node == "b"  # type: ignore[union-attr]
            # a comes back: nothing it commits goes through, now or later
            with pytest.raises(NodeFenced):
                await a.save(S1, sent=[(2, b"stale")], next_sender=3)
            with pytest.raises(NodeFenced):
                await a.renew_node()
            assert a.fenced is not None and "taken over" in a.fenced
            await asyncio.sleep(0)
            assert told and told[-1][0] is False and "fenced" in told[-1][1]
            # b serves S1 with what a committed, and commits
            assert await b.get_sent(S1, 1, 0) == [(1, b"from a")]
            await b.save(S1, sent=[(2, b"from b")], next_sender=3)
            assert (await b.load(S1)).next_sender == 3

    asyncio.run(body())


def test_a_clean_stop_hands_the_sessions_over_at_once(store_url: str) -> None:
    async def body() -> None:
        async with SessionStore(store_url) as a, SessionStore(store_url) as b:
            await a.register_node("a", address="x:1", lease_s=30)
            await b.register_node("b", address="x:2", lease_s=30)
            assert (await a.claim_sessions([S1])).ours == {S1}
            assert (await b.claim_sessions([S1])).ours == set()
            await a.leave_node()
            got = await b.claim_sessions([S1])
            assert got.ours == {S1} and got.taken == {S1: "a"}

    asyncio.run(body())


class _Outage(SessionStore):
    """Fails node upkeep while ``down`` (the store unreachable for every node)."""

    down = False

    async def renew_node(self) -> None:
        if self.down:
            raise StoreUnavailable("store unavailable: down for the test")
        await super().renew_node()

    async def take_over_gone(self) -> dict[str, str]:
        if self.down:
            raise StoreUnavailable("store unavailable: down for the test")
        return await super().take_over_gone()


def test_an_outage_longer_than_the_lease_takes_no_live_node_over(tmp_path: Path) -> None:
    """When the store is back after an outage longer than a lease, every lease looks run out;
    a node takes others over only once it has kept its own lease for a whole lease again, by
    which time the live ones have renewed theirs."""
    url = f"sqlite:///{tmp_path / 'fixgw.db'}"
    lease = 0.5

    async def body() -> None:
        async with _Outage(url) as a_store, _Outage(url) as b_store:
            a = Ownership(a_store, "a", lease)
            b = Ownership(b_store, "b", lease)
            fenced: list[str] = []
            adopted: list[dict[str, str]] = []

            async def adopt(taken: dict[str, str]) -> None:
                adopted.append(taken)

            await a.start("a:1", [S1])
            await b.start("b:1", [S1])
            for o in (a, b):
                o.watch(adopt, fenced.append)
            assert a.owned == {S1} and b.owned == set()
            a_store.down = b_store.down = True
            await asyncio.sleep(3 * lease)  # the outage outlasts every lease
            assert not a.lease_runs() and not b.lease_runs()
            a_store.down = b_store.down = False
            await asyncio.sleep(4 * lease)
            assert fenced == [] and adopted == []
            assert a.owned == {S1} and a.lease_runs() and b.lease_runs()
            await a.stop()
            await b.stop()

    asyncio.run(body())


class _FlakyNodes:
    """A node store whose renewals fail (the store unreachable) ``failures`` times, then
    succeed; the rest of what :class:`Ownership` asks is answered at once."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.renewals = 0
        self.renewed = asyncio.Event()

    async def register_node(self, node: str, *, address: str, lease_s: float) -> int:
        return 1

    async def renew_node(self) -> None:
        self.renewals += 1
        if self.failures:
            self.failures -= 1
            raise StoreUnavailable("the store is unreachable")
        self.renewed.set()

    async def claim_sessions(self, session_ids: object) -> Claim:
        return Claim()

    async def live_nodes(self) -> list[object]:
        return []

    async def leave_node(self) -> None:
        return None


def test_a_renewal_that_fails_with_the_store_unreachable_is_tried_again() -> None:
    """Not fenced, only unreachable: the renewer goes on (compiled, a name shared by the two
    except clauses once made the second raise TypeError out of the renewer task)."""
    async def body() -> None:
        nodes = _FlakyNodes(failures=2)
        own = Ownership(nodes, "n1", lease_s=0.05)  # type: ignore[arg-type]
        await own.start("h:1", [])
        try:
            await asyncio.wait_for(nodes.renewed.wait(), 5)
            assert nodes.renewals == 3
            assert own.fenced is None
            assert own._renewer is not None and not own._renewer.done()
        finally:
            await own.stop()

    asyncio.run(body())


async def _taken_over_by(store: SessionStore) -> dict[str, str]:
    """What ``store`` takes over once a node's lease has run out (wall-clock time; 4 s at most)."""
    taken: dict[str, str] = {}
    for _ in range(200):
        taken = await store.take_over_gone()
        if taken:
            break
        await asyncio.sleep(0.02)
    return taken


def _thread_cpu_s(native_id: int) -> float:
    """The CPU time a thread of this process has used so far (user + system), in seconds."""
    with open(f"/proc/self/task/{native_id}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_a_fenced_nodes_writer_waits_for_work_instead_of_spinning(store_url: str) -> None:
    """Once fenced, a store has nothing to probe (it never comes back): its writer thread waits
    for the next request, as when the store is up. It once polled its queue without a timeout
    in a loop, taking a core and the interpreter's lock from the event loop until closed."""

    async def body() -> None:
        async with SessionStore(store_url) as a, SessionStore(store_url) as b:
            await a.register_node("a", address="10.0.0.1:9876", lease_s=0.3, host="elsewhere")
            await b.register_node("b", address="10.0.0.2:9876", lease_s=30)
            assert (await a.claim_sessions([S1])).ours == {S1}
            taken = await _taken_over_by(b)
            assert taken == {S1: "a"}
            with pytest.raises(NodeFenced):
                await a.save(S1, sent=[(1, b"stale")], next_sender=2)
            thread = a.writer._writer_thread
            assert thread is not None and thread.native_id is not None and thread.is_alive()
            before = _thread_cpu_s(thread.native_id)
            # past the writer's first probe delay (when a down store is probed again): the
            # loop waits here, so a spinning writer would have the core to itself
            await asyncio.sleep(0.5)
            used = _thread_cpu_s(thread.native_id) - before
            assert used < 0.1, f"the fenced writer used {used:.2f} s of CPU in 0.5 s idle"
            with pytest.raises(NodeFenced):  # and it still answers
                await a.save(S1, sent=[(1, b"stale")], next_sender=2)

    asyncio.run(body())
