"""Child process of test_durability: saves forever and prints every acknowledged save.

Usage: python _durability_child.py URL SESSIONS
Prints "<session> <seq>" (flushed) after each save() returned; the parent SIGKILLs it.
"""

from __future__ import annotations

import asyncio
import sys

from gateway.store.store import SessionStore


async def writer(store: SessionStore, session_id: str) -> None:
    seq = 1
    while True:
        raw = b"8=FIX.4.4\x019=5\x0135=D\x0134=%d\x0110=000\x01" % seq
        await store.save(session_id, sent=[(seq, raw)], next_sender=seq + 1)
        sys.stdout.write(f"{session_id} {seq}\n")
        sys.stdout.flush()
        seq += 1


async def main(url: str, sessions: int) -> None:
    store = SessionStore(url)
    await store.start()
    sys.stdout.write("started\n")
    sys.stdout.flush()
    await asyncio.gather(*(writer(store, f"FIX.4.4:GW->C{i}") for i in range(sessions)))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
