"""What the venue emulators share: a matching engine (the paper exchange), the clock, faults
to inject, and an aiohttp server on loopback with its WebSocket connections.

An emulator is for tests and benchmarks only: it speaks one venue's documented REST and
WebSocket protocol on 127.0.0.1, verifies signatures with the venue's algorithm, enforces rate
limits with the venue's headers and error codes, and matches orders on
:class:`~connectors.paper.exchange.PaperExchange`. Every change of an order there is pushed to
the venue's private stream subscribers through :meth:`EmulatorCore.publish`, where the faults
apply: streams down (the events are lost, as they would be for a client that is not connected),
delayed, duplicated or reordered events.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import random
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from aiohttp import web

from connectors.base import OrderState, Side, VenueEvent
from connectors.paper.config import PaperConfig, default_balances
from connectors.paper.exchange import PaperExchange
from connectors.paper.market import MarketConfig

PLAIN_DECIMAL = re.compile(r"[0-9]+(\.[0-9]+)?")
"""A decimal string as the venues document their prices and quantities: digits, an optional
fraction, no sign, no exponent (``1E-7`` is refused)."""


def plain_decimal(value: object) -> Decimal | None:
    """``value`` (a request parameter, string or JSON number) as a Decimal when it is written as
    a plain decimal (:data:`PLAIN_DECIMAL`); None otherwise (exponent notation, signs, words,
    booleans): the emulator then answers the venue's bad-parameter error."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    text = str(value)
    return Decimal(text) if PLAIN_DECIMAL.fullmatch(text) else None


async def send_queued(ws: web.WebSocketResponse, queue: asyncio.Queue[str]) -> None:
    """Write what is queued for a public feed's socket, in order, until it closes."""
    while not ws.closed:
        text = await queue.get()
        with contextlib.suppress(ConnectionError, RuntimeError):
            await ws.send_str(text)


def level_changes(old: dict[Decimal, Decimal], new: dict[Decimal, Decimal], *, reverse: bool
                  ) -> list[tuple[Decimal, Decimal]]:
    """The levels of a book side that differ from ``old`` to ``new``, best first (``reverse``
    for bids); a level gone has size 0. What the public feeds publish after a change."""
    changed = {p: q for p, q in new.items() if old.get(p) != q}
    changed.update({p: Decimal(0) for p in old if p not in new})
    return sorted(changed.items(), reverse=reverse)


@dataclass
class EmulatorFaults:
    """Mutable: tests change them while the emulator runs."""

    streams_down: bool = False
    """Private-stream connections are refused (and the events meanwhile lost)."""
    duplicate_events: bool = False
    """Every pushed event is pushed twice."""
    reorder_events: bool = False
    """The events of one change are pushed in reverse order."""
    event_delay_s: float = 0.0
    timeout_next: int = 0
    """The next N order-entry requests are executed, but their answer never comes (the client
    times out: an ambiguous outcome)."""
    error_5xx_next: int = 0
    """The next N requests get a 5xx without being executed."""
    rate_limit_next: int = 0
    """The next N requests get the venue's 429 without being executed."""
    retry_after_s: int = 0
    """The Retry-After of those 429s."""


@dataclass
class Published:
    """One order change as the private streams see it."""

    event: VenueEvent
    state: OrderState | None
    """The order's state after the change (None when the venue no longer knows it)."""


class EmulatorCore:
    """The venue's state: matching, orders, fills, balances, faults, subscribers."""

    def __init__(
        self,
        markets: tuple[MarketConfig, ...],
        *,
        balances: Mapping[str, Decimal] | None = None,
        maker_fee: Decimal = Decimal("0.001"),
        taker_fee: Decimal = Decimal("0.001"),
        seed: int = 0,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        self.exchange = PaperExchange(PaperConfig(
            markets=markets, balances=default_balances() if balances is None else balances,
            maker_fee=maker_fee, taker_fee=taker_fee, seed=seed, clock=clock, name="emulator"))
        self.faults = EmulatorFaults()
        self.clock = clock
        self._subscribers: list[asyncio.Queue[Published]] = []
        self._stopped = asyncio.Event()
        self._rng = random.Random(seed)  # noqa: S311
        self.requests: list[tuple[str, str]] = []
        """(method, path) of every request received, in order."""
        self.change_listeners: list[Callable[[list[VenueEvent]], None]] = []
        """Called after every change of the exchange with the events it caused (possibly none):
        the public market-data publishers diff the book there."""

    def now_ns(self) -> int:
        return self.clock()

    def now_ms(self) -> int:
        return self.clock() // 1_000_000

    # ---- faults ------------------------------------------------------------------------------

    def take(self, fault: str) -> bool:
        """Consume one of a counted fault (``timeout_next``, ``error_5xx_next``,
        ``rate_limit_next``): True when it applies to this request."""
        n = getattr(self.faults, fault)
        if n > 0:
            setattr(self.faults, fault, n - 1)
            return True
        return False

    async def hang(self) -> None:
        """Never answer (until the emulator stops): the client's timeout decides."""
        await self._stopped.wait()

    # ---- changes and their events ------------------------------------------------------------

    def run(self, change: Callable[[int], Any]) -> Any:
        """Apply ``change(now_ns)`` to the exchange, then publish what it caused (also when it
        raises after having changed something)."""
        try:
            return change(self.now_ns())
        finally:
            self.publish_pending()

    def publish_pending(self) -> None:
        events = self.exchange.drain_events()
        for listener in list(self.change_listeners):
            listener(events)
        if not events:
            return
        items = [Published(ev, self.exchange.order_state(ev.client_order_id)) for ev in events]
        if self.faults.reorder_events:
            items.reverse()
        if self.faults.duplicate_events:
            items = [x for it in items for x in (it, it)]
        if self.faults.streams_down:
            return  # nobody is connected to hear them
        delay = self.faults.event_delay_s
        for q in self._subscribers:
            for it in items:
                if delay:
                    asyncio.get_running_loop().call_later(delay, q.put_nowait, it)
                else:
                    q.put_nowait(it)

    def subscribe(self) -> asyncio.Queue[Published]:
        q: asyncio.Queue[Published] = asyncio.Queue()
        self._subscribers.append(q)
        return q

    def unsubscribe(self, q: asyncio.Queue[Published]) -> None:
        with contextlib.suppress(ValueError):
            self._subscribers.remove(q)

    def trade_against(self, symbol: str, side: Side, quantity: Decimal,
                      price: Decimal | None = None) -> tuple[Decimal, Decimal]:
        """An outside taker trades ``quantity`` on ``side`` (see PaperExchange.trade_against)."""
        result: tuple[Decimal, Decimal] = self.run(
            lambda now: self.exchange.trade_against(symbol, side, quantity, price, now)
        )
        return result

    def tick(self) -> None:
        self.run(self.exchange.tick)

    def stop(self) -> None:
        self._stopped.set()


class EmulatorServer(abc.ABC):
    """An aiohttp application on 127.0.0.1 (a free port), with its WebSocket connections kept
    so a test can cut them (:meth:`drop_streams`)."""

    def __init__(self, core: EmulatorCore) -> None:
        self.core = core
        self.port = 0
        self._runner: web.AppRunner | None = None
        self.websockets: set[web.WebSocketResponse] = set()
        self._tasks: set[asyncio.Task[Any]] = set()

    @abc.abstractmethod
    def routes(self, app: web.Application) -> None:
        """Add the venue's REST and WebSocket routes."""

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_base_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    @abc.abstractmethod
    def urls(self) -> dict[str, str]:
        """The connector's URL overrides that point it here (keys as the connector names them:
        ``rest``, ``ws_private``, ...)."""

    async def start(self, port: int = 0) -> None:
        app = web.Application()
        self.routes(app)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        server = site._server
        assert server is not None
        sockets = getattr(server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1]

    async def stop(self) -> None:
        self.core.stop()
        await self.drop_streams()
        for t in list(self._tasks):
            t.cancel()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def spawn(self, coro: Any) -> asyncio.Task[Any]:
        t: asyncio.Task[Any] = asyncio.ensure_future(coro)
        self._tasks.add(t)
        t.add_done_callback(self._tasks.discard)
        return t

    async def drop_streams(self) -> int:
        """Cut every WebSocket connection at once (a network failure); returns how many."""
        conns = list(self.websockets)
        self.websockets.clear()
        for ws in conns:
            with contextlib.suppress(Exception):
                await ws.close(code=1001, message=b"dropped by the emulator")
        return len(conns)

    async def open_ws(self, request: web.Request, heartbeat: float | None = None
                      ) -> web.WebSocketResponse | None:
        """Accept a WebSocket (None and a 503 when streams are down by fault)."""
        if self.core.faults.streams_down:
            return None
        ws = web.WebSocketResponse(heartbeat=heartbeat, autoping=True)
        await ws.prepare(request)
        self.websockets.add(ws)
        return ws

