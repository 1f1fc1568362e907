"""Balances per venue account and asset, kept as the venues push them (issue 10, "Balances and
positions"): what CollateralReport (BA) and the admin API's ``GET /balances`` answer with.

A venue whose connector streams its balances (``capabilities.balance_stream``: Binance
``outboundAccountPosition``, OKX ``account``, Bybit ``wallet``, the simulated venue) is read
over REST (:meth:`Connector.balances`) once at start and again after every reconnection of its
private stream (what changed meanwhile was not pushed); between those, each
:class:`~connectors.base.BalanceUpdate` replaces its asset's figures. A venue that does not
stream, one never read yet, and one whose stream is down (its health says so) are asked over
REST when the question comes.

A REST answer and the stream cross: a balance read over REST may be older than an update
that arrived while the request was on its way. Each figure therefore carries the sequence
number of its arrival, and a REST answer replaces only the assets no update touched since
the request left; an update is newer than any answer to a request sent before it arrived, or
is the same state (the stream pushes every change, so a later one would follow).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from connectors.base import Balance, BalanceUpdate, Connector, VenueError
from gateway.native import dataclass_init_when_interpreted

log = logging.getLogger(__name__)

Source = Literal["rest", "stream"]


@dataclass(frozen=True, slots=True)
class Held:
    """One asset of one venue account, and where and when its figures came from."""

    free: Decimal
    locked: Decimal
    source: Source
    ts_ns: int
    """The venue's time of a stream update; our clock when a REST answer came."""
    seq: int
    """The book's sequence number at arrival (REST answers and stream updates interleave)."""

    # (written, to be compiled: gateway.native.dataclass_init_when_interpreted)
    def __init__(self, free: Decimal, locked: Decimal, source: Source, ts_ns: int,
                 seq: int) -> None:
        self.free = free  # type: ignore[misc]
        self.locked = locked  # type: ignore[misc]
        self.source = source  # type: ignore[misc]
        self.ts_ns = ts_ns  # type: ignore[misc]
        self.seq = seq  # type: ignore[misc]

    @property
    def total(self) -> Decimal:
        return self.free + self.locked


dataclass_init_when_interpreted(Held)


class BalanceBook:
    """(venue, asset) -> :class:`Held`, for the venues of ``connectors`` (the order path's
    mapping: a connector replaced there is the one read)."""

    def __init__(self, connectors: Mapping[str, Connector],
                 clock: Callable[[], int] = time.time_ns) -> None:
        self.connectors = connectors
        self.clock = clock
        self._held: dict[str, dict[str, Held]] = {}
        self._seeded: set[str] = set()
        self._seq = 0
        self._tasks: list[asyncio.Task[None]] = []
        self.updates = 0
        """Stream updates applied (diagnostics, tests)."""
        self.listeners: list[Callable[[str, str, Held], None]] = []
        """Told of each stream update applied: (venue, asset, its figures now)."""

    # ---- what is kept ------------------------------------------------------------------------

    def streams(self, venue: str) -> bool:
        conn = self.connectors.get(venue)
        return conn is not None and conn.capabilities.balance_stream

    def seeded(self, venue: str) -> bool:
        return venue in self._seeded

    def held(self, venue: str) -> dict[str, Held]:
        """What is kept of ``venue`` (asset -> figures); empty when never read."""
        return dict(self._held.get(venue, {}))

    def apply(self, venue: str, update: BalanceUpdate) -> bool:
        """A stream update; False when it is older (venue time) than the stream update the
        asset already has (a late duplicate)."""
        assets = self._held.setdefault(venue, {})
        cur = assets.get(update.asset)
        if cur is not None and cur.source == "stream" and update.ts_ns < cur.ts_ns:
            return False
        self._seq += 1
        held = assets[update.asset] = Held(update.free, update.locked, "stream", update.ts_ns,
                                           self._seq)
        self.updates += 1
        for listener in self.listeners:
            listener(venue, update.asset, held)
        return True

    def mark(self) -> int:
        """The sequence number a REST request leaving now is compared with (:meth:`replace`)."""
        return self._seq

    def replace(self, venue: str, balances: Sequence[Balance], mark: int) -> None:
        """A REST answer to a request that left at ``mark``: every asset no stream update
        touched since then takes the answer's figures (or is dropped, when the answer no
        longer lists it)."""
        assets = self._held.setdefault(venue, {})
        listed = {b.asset: b for b in balances}
        for asset in [a for a, h in assets.items() if a not in listed and h.seq <= mark]:
            del assets[asset]
        now = self.clock()
        for b in balances:
            cur = assets.get(b.asset)
            if cur is None or cur.seq <= mark:
                self._seq += 1
                assets[b.asset] = Held(b.free, b.locked, "rest", now, self._seq)
        self._seeded.add(venue)

    async def seed(self, venue: str) -> list[Balance]:
        """Read ``venue``'s balances over REST into the book; returns what it keeps now.
        Raises VenueError when the venue cannot answer."""
        mark = self.mark()
        balances = await self.connectors[venue].balances()
        self.replace(venue, balances, mark)
        return self._listed(venue)

    async def reseed(self, venue: str) -> None:
        """:meth:`seed`, a failure logged (the start, and after a reconnect: the next question
        asks the venue again)."""
        if not self.streams(venue):
            return
        try:
            await self.seed(venue)
        except VenueError as exc:
            self._seeded.discard(venue)
            log.warning("%s: balances could not be read (%s): asked again when needed",
                        venue, exc)

    def _listed(self, venue: str) -> list[Balance]:
        return [Balance(a, h.free, h.locked)
                for a, h in sorted(self._held.get(venue, {}).items())]

    # ---- answers ----------------------------------------------------------------------------

    async def balances(self, venue: str) -> list[Balance]:
        """``venue``'s balances as the gateway answers them: kept ones where the venue streams
        them, has been read and its stream is up; else asked over REST (raises VenueError
        when the venue cannot answer; a streaming venue's answer is kept). When the stream is
        down and REST fails too, what is kept, if anything."""
        conn = self.connectors[venue]
        if not self.streams(venue):
            return list(await conn.balances())
        if venue in self._seeded and (await conn.health()).connected:
            return self._listed(venue)
        try:
            return await self.seed(venue)
        except VenueError:
            if venue in self._seeded:
                return self._listed(venue)
            raise

    # ---- the streams ------------------------------------------------------------------------

    async def start(self) -> None:
        """Read every streaming venue over REST, then follow its stream."""
        for venue in self.connectors:
            if self.streams(venue):
                self._tasks.append(asyncio.get_running_loop().create_task(
                    self._follow(venue), name=f"{venue}-balances"))
        for venue in self.connectors:
            await self.reseed(venue)

    async def _follow(self, venue: str) -> None:
        conn = self.connectors[venue]
        try:
            async for update in conn.balance_events():
                self.apply(venue, update)
        except VenueError as exc:
            log.warning("%s: the balance stream ended: %s", venue, exc)

    async def close(self) -> None:
        tasks, self._tasks = self._tasks, []
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
