"""Write-ahead durability: everything whose save() returned survives a SIGKILL of the process."""

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

from gateway.store.sessions import SessionStore

CHILD = Path(__file__).with_name("_durability_child.py")
SESSIONS = 8
ACKS_BEFORE_KILL = 1500


def test_acknowledged_saves_survive_sigkill(store_url: str) -> None:
    child = subprocess.Popen(
        [sys.executable, str(CHILD), store_url, str(SESSIONS)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert child.stdout is not None
    output = b""
    acks = 0
    deadline = time.monotonic() + 60
    try:
        with selectors.DefaultSelector() as selector:
            selector.register(child.stdout, selectors.EVENT_READ)
            while acks < ACKS_BEFORE_KILL and time.monotonic() < deadline:
                if not selector.select(timeout=1):
                    assert child.poll() is None, child.stderr.read() if child.stderr else ""
                    continue
                chunk = os.read(child.stdout.fileno(), 65536)
                assert chunk, child.stderr.read() if child.stderr else "child exited"
                output += chunk
                acks = output.count(b"\n") - 1  # minus "started"
        assert acks >= ACKS_BEFORE_KILL, "the child did not save fast enough"
    finally:
        child.send_signal(signal.SIGKILL)  # mid-stream: saves are in flight
        rest, _ = child.communicate(timeout=30)
    assert child.returncode == -signal.SIGKILL
    output += rest

    acknowledged: dict[str, int] = defaultdict(int)
    lines = output.split(b"\n")[:-1]  # a line cut by the kill has no newline: not an ack
    assert lines[0] == b"started"
    for line in lines[1:]:
        session_id, seq = line.decode().split(" ")
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
