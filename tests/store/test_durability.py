"""Write-ahead durability: everything whose save() or append_order_events() returned survives a
SIGKILL of the process, and reserved ids are never handed out again."""

from __future__ import annotations

import asyncio
import os
import selectors
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

from gateway.store.store import SessionStore

CHILD = Path(__file__).with_name("_durability_child.py")
ORDERS_CHILD = Path(__file__).with_name("_orders_durability_child.py")
SESSIONS = 8
ACKS_BEFORE_KILL = 1500


def run_and_kill(child_script: Path, *args: str, acks: int) -> list[str]:
    """Run ``child_script`` until it printed ``acks`` acknowledgements (lines after "started"),
    SIGKILL it mid-stream and return every complete acknowledgement line it printed."""
    child = subprocess.Popen(
        [sys.executable, str(child_script), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert child.stdout is not None
    output = b""
    acked = 0
    deadline = time.monotonic() + 60
    try:
        with selectors.DefaultSelector() as selector:
            selector.register(child.stdout, selectors.EVENT_READ)
            while acked < acks and time.monotonic() < deadline:
                if not selector.select(timeout=1):
                    assert child.poll() is None, child.stderr.read() if child.stderr else ""
                    continue
                chunk = os.read(child.stdout.fileno(), 65536)
                assert chunk, child.stderr.read() if child.stderr else "child exited"
                output += chunk
                acked = output.count(b"\n") - 1  # minus "started"
        assert acked >= acks, "the child did not write fast enough"
    finally:
        child.send_signal(signal.SIGKILL)  # mid-stream: writes are in flight
        rest, _ = child.communicate(timeout=30)
    assert child.returncode == -signal.SIGKILL
    output += rest
    lines = output.decode().split("\n")[:-1]  # a line cut by the kill has no newline: not an ack
    assert lines[0] == "started"
    assert len(lines) - 1 >= acks
    return lines[1:]


def test_acknowledged_saves_survive_sigkill(store_url: str) -> None:
    lines = run_and_kill(CHILD, store_url, str(SESSIONS), acks=ACKS_BEFORE_KILL)

    acknowledged: dict[str, int] = defaultdict(int)
    for line in lines:
        session_id, seq = line.split(" ")
        assert int(seq) == acknowledged[session_id] + 1  # each session saves in order
        acknowledged[session_id] = int(seq)
    assert sum(acknowledged.values()) >= ACKS_BEFORE_KILL

    async def check() -> None:
        store = SessionStore(store_url)
        await store.start()
        try:
            for session_id, last in acknowledged.items():
                record = await store.load(session_id)
                assert record.next_sender >= last + 1, session_id
                stored = [seq for seq, _ in await store.get_sent(session_id, 1, 0, limit=10**6)]
                # every acknowledged seq is there; at most the in-flight one(s) beyond it
                assert stored[:last] == list(range(1, last + 1)), session_id
        finally:
            await store.close()

    asyncio.run(check())


def test_acknowledged_order_appends_survive_sigkill(store_url: str) -> None:
    lines = run_and_kill(ORDERS_CHILD, store_url, str(SESSIONS), acks=ACKS_BEFORE_KILL)
    acked_events: dict[int, str] = {}
    acked_trades: set[str] = set()
    last_of_order: dict[str, int] = {}
    for line in lines:
        event_id, order_id, trade_id = line.split(" ")
        assert int(event_id) not in acked_events  # reserved ids never repeat
        acked_events[int(event_id)] = order_id
        acked_trades.add(trade_id)
        last_of_order[order_id] = max(last_of_order.get(order_id, 0), int(event_id))

    async def check() -> None:
        async with SessionStore(store_url) as store:
            stored = {}
            after = 0
            while page := await store.replay_events(after, 1000):
                stored.update({e.event_id: e for e in page})
                after = page[-1].event_id
            for event_id, order_id in acked_events.items():
                assert stored[event_id].order_id == order_id
                assert stored[event_id].exec_id == f"X{event_id}"
            assert await store.known_trade_ids("paper", sorted(acked_trades)) == acked_trades
            for order_id, last in last_of_order.items():
                order = await store.load_order(order_id)
                assert order is not None and order["last_event_id"] >= last, order_id
            # ids reserved before the kill are never handed out again
            assert await store.reserve("event_id", 1) > max(stored)

    asyncio.run(check())
