"""The store as the gateway uses it: one writer (:mod:`gateway.store.writer`) and the
repositories on it -- sessions (:mod:`gateway.store.sessions`), orders
(:mod:`gateway.store.orders`) and this process as a node (:mod:`gateway.store.nodes`).

Usage::

    store = SessionStore("sqlite:///data/fixgw.db")
    await store.start()                      # migrates, starts the writer
    record = await store.load("FIX.4.4:ISLD->TW44")
    store.save_cod_override(sid, "both")     # a Logon's 8013=Y, before its reply is committed
    await store.commit(Commit(sid, sent=((seq, raw),), next_sender=seq + 1))  # then write raw
    first = await store.reserve("event", 1000)           # ids first .. first + 999
    await store.append_order_events([event], [order], [fill])   # then call the venue
    await store.close()

The repositories share nothing but the writer: each can be used alone on one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from gateway.store.checkpoint import CHECKPOINT_INTERVAL_S, Checkpointer
from gateway.store.nodes import NodeRegistry
from gateway.store.orders import OrderRepository
from gateway.store.sessions import SessionRepository
from gateway.store.writer import AvailabilityListener, StoreStats, Writer

logger = logging.getLogger(__name__)


class SessionStore(SessionRepository, OrderRepository, NodeRegistry):
    """The writer of ``url`` with every repository on it. ``clock`` returns the current UTC
    time (creation times); ``checkpoint_interval``: seconds between WAL checkpoints of a
    SQLite file; ``inline_commits``: whether a SQLite file's writer may commit on the event
    loop's thread when it has nothing else to do (:mod:`gateway.store.writer`)."""

    def __init__(
        self,
        url: str,
        *,
        clock: Callable[[], datetime] | None = None,
        checkpoint_interval: float = CHECKPOINT_INTERVAL_S,
        inline_commits: bool = True,
    ) -> None:
        writer = Writer(url, clock=clock, checkpoint_interval=checkpoint_interval,
                        inline=inline_commits)
        SessionRepository.__init__(self, writer)
        OrderRepository.__init__(self, writer)
        NodeRegistry.__init__(self, writer)

    async def start(self) -> None:
        """Run the migrations and start the writer thread (both off the event loop), then fold
        the reports told without their event onto their events (:meth:`fold_reports`; its
        failure is logged: the store works without it)."""
        await self.writer.start()
        try:
            folded = await self.fold_reports()
        except Exception as exc:  # (housekeeping: a Logon reads the reports rows too)
            logger.warning("the reports told without their event were not folded onto their "
                           "events: %s", exc)
        else:
            if folded:
                logger.info("%d reports told without their event folded onto their events",
                            folded)

    async def close(self) -> None:
        """Commit everything queued, then stop the writer thread. Idempotent."""
        await self.writer.close()

    async def __aenter__(self) -> SessionStore:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @property
    def stats(self) -> StoreStats:
        return self.writer.stats

    @property
    def checkpointer(self) -> Checkpointer | None:
        """The WAL checkpoint thread of a SQLite file store (None otherwise)."""
        return self.writer.checkpointer

    @property
    def available(self) -> bool:
        """False while the store is down (an outage: see :mod:`gateway.store.writer`)."""
        return self.writer.available

    @property
    def unavailable_reason(self) -> str | None:
        """Why the store is down; None while it is up."""
        return self.writer.unavailable_reason

    @property
    def outages(self) -> int:
        """How many times the store went down (tests, metrics)."""
        return self.writer.outages

    def add_availability_listener(self, listener: AvailabilityListener) -> None:
        """See :meth:`Writer.add_availability_listener`."""
        self.writer.add_availability_listener(listener)
