"""``RemotePaperConnector``: the connector contract over TCP to ``fixgw venue-sim``.

One connection carries requests (answered by id) and the venue's pushed events (the protocol is
documented in :mod:`connectors.paper.server`). When the connection drops:

* requests in flight fail: ``place``/``cancel``/``amend``/``cancel_all`` with
  :class:`VenueAmbiguous` (the venue may have done them), the others with
  :class:`VenueUnavailable`; requests made while disconnected fail with VenueUnavailable;
* events the venue publishes meanwhile are lost (as with a venue's WebSocket);
* the connector reconnects with exponential backoff and jitter, and after each reconnect calls
  every coroutine function in :attr:`RemotePaperConnector.on_reconnect` (the gateway reconciles
  there: ``OrderManager.reconcile(venue)``).

It is also the control client of the simulator (``tick``, ``set_faults``, ``trade_against``);
a control-only client passes ``keep_events=False`` so pushed events are not queued for nobody.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from decimal import Decimal
from typing import Any, Final

from connectors.base import (
    AmendRequest,
    Balance,
    Capabilities,
    ClientOrderIdRules,
    Connector,
    Health,
    Instrument,
    OrderAccepted,
    OrderFilled,
    OrderRequest,
    OrderState,
    OrderType,
    Position,
    Side,
    TimeInForce,
    VenueAmbiguous,
    VenueError,
    VenueEvent,
    VenueInfo,
    VenueUnavailable,
)
from connectors.common.backoff import Backoff
from connectors.paper.config import Faults
from connectors.paper.exchange import CLIENT_ORDER_ID_RULES
from connectors.paper.server import (
    MAX_LINE,
    dumps,
    error_from_wire,
    event_from_wire,
    from_wire,
    to_wire,
)

log = logging.getLogger("fixgw.paper_remote")

MUTATING: Final = frozenset({"place", "cancel", "amend", "cancel_all", "tick", "set_faults",
                             "trade_against", "drop_clients", "release"})
"""Ops that change something at the venue: a lost answer makes them ambiguous."""

ReconnectHook = Callable[[], Awaitable[object]]


def _unanswered(mutating: bool, text: str) -> VenueError:
    """A request whose answer never came: it may have happened when it changes something."""
    return VenueAmbiguous(text) if mutating else VenueUnavailable(text)


class RemotePaperConnector(Connector):
    """The paper venue of another process (``fixgw venue-sim``), reached over TCP."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        name: str = "paper",
        amend: bool = True,
        request_timeout: float = 10.0,
        start_timeout: float = 10.0,
        connect_timeout: float = 2.0,
        backoff_initial: float = 0.05,
        backoff_max: float = 2.0,
        seed: int | None = None,
        keep_events: bool = True,
    ) -> None:
        self.host, self.port = host, port
        self.info = VenueInfo(
            name,
            Capabilities(order_types=frozenset(OrderType), time_in_force=frozenset(TimeInForce),
                         amend=amend),
            CLIENT_ORDER_ID_RULES,
        )
        self._amend = amend
        self._keep_events = keep_events
        self.request_timeout = request_timeout
        self.start_timeout = start_timeout
        self.connect_timeout = connect_timeout
        self._backoff = Backoff(
            backoff_initial, backoff_max, random.Random(seed)  # noqa: S311 - jitter
        )
        self.on_reconnect: list[ReconnectHook] = []
        """Awaited (each in its own task) after every reconnect, not after the first connect."""
        self.connections = 0
        """How many times a connection was established."""
        self._events: asyncio.Queue[VenueEvent | None] = asyncio.Queue()
        self._pending: dict[int, tuple[asyncio.Future[Any], bool]] = {}
        self._next_id = 0
        self._writer: asyncio.StreamWriter | None = None
        self._ready = False
        self._up: asyncio.Event | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._hooks: set[asyncio.Task[Any]] = set()
        self._closed = False
        self._last: dict[str, Decimal] = {}
        self._instruments: list[Instrument] | None = None
        self._last_error = "not connected yet"

    # ---- life ----------------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect (retrying until ``start_timeout``); VenueUnavailable when that fails."""
        if self._supervisor is None or self._supervisor.done():
            self._up = asyncio.Event()
            self._supervisor = asyncio.get_running_loop().create_task(
                self._supervise(), name=f"{self.name}-remote"
            )
        assert self._up is not None
        try:
            await asyncio.wait_for(self._up.wait(), self.start_timeout)
        except TimeoutError:
            raise VenueUnavailable(
                f"{self.name}: no venue at {self.host}:{self.port} ({self._last_error})"
            ) from None

    async def close(self) -> None:
        self._closed = True
        sup, self._supervisor = self._supervisor, None
        if sup is not None:
            sup.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sup
        for t in list(self._hooks):
            t.cancel()
        self._drop_connection("closed")
        self._events.put_nowait(None)

    @property
    def connected(self) -> bool:
        return self._ready

    async def _supervise(self) -> None:
        backoff = self._backoff
        backoff.reset()
        while not self._closed:
            try:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(self.host, self.port, limit=MAX_LINE),
                    self.connect_timeout,
                )
            except (OSError, TimeoutError) as exc:
                self._last_error = str(exc) or type(exc).__name__
                delay = backoff.next()
                log.debug("%s: connect failed (%s); retrying in %.2fs", self.name, exc, delay)
                await asyncio.sleep(delay)
                continue
            self._writer = writer
            before = self.connections
            read = asyncio.get_running_loop().create_task(self._read(reader))
            try:
                why = await self._serve_connection(read)
            finally:
                read.cancel()
                self._drop_connection("closed")
            self._last_error = why
            if self.connections > before:
                backoff.reset()
            await asyncio.sleep(backoff.next())

    async def _serve_connection(self, read: asyncio.Task[str]) -> str:
        """Greet the venue, announce the connection, wait until it ends; returns why it did."""
        try:
            await self._hello()
        except (VenueError, ValueError, KeyError, TypeError, ArithmeticError) as exc:
            log.warning("%s: hello failed: %s", self.name, exc)
            return f"hello failed: {exc}"
        self.connections += 1
        self._ready = True
        log.info("%s: connected to %s:%d", self.name, self.host, self.port)
        if self.connections > 1:
            for hook in self.on_reconnect:
                self._run_hook(hook)
        assert self._up is not None
        self._up.set()
        why = await read
        log.warning("%s: connection to %s:%d lost (%s); reconnecting", self.name, self.host,
                    self.port, why)
        return why

    def _run_hook(self, hook: ReconnectHook) -> None:
        async def run() -> None:
            try:
                await hook()
            except Exception:
                log.exception("%s: reconnect hook failed", self.name)

        task = asyncio.get_running_loop().create_task(run())
        self._hooks.add(task)
        task.add_done_callback(self._hooks.discard)

    async def _hello(self) -> None:
        info = await self._request("info", {}, ready=False)
        caps = from_wire(Capabilities, info["capabilities"])
        if not self._amend:
            caps = dataclasses.replace(caps, amend=False)
        rules = from_wire(ClientOrderIdRules, info["client_order_id_rules"])
        self.info = VenueInfo(self.info.name, caps, rules)
        self._update_last(info.get("last"))

    def _drop_connection(self, why: str) -> None:
        self._ready = False
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()
        pending, self._pending = self._pending, {}
        for fut, mutating in pending.values():
            if not fut.done():
                fut.set_exception(_unanswered(mutating, f"{self.name}: connection lost ({why})"))

    async def _read(self, reader: asyncio.StreamReader) -> str:
        """Read until the connection ends; then fail what is in flight and return why."""
        while True:
            try:
                line = await reader.readline()
            except (OSError, asyncio.LimitOverrunError, ValueError) as exc:
                why = str(exc) or type(exc).__name__
                break
            if not line:
                why = "closed by the venue"
                break
            try:
                msg = json.loads(line)
                if "event" in msg:
                    self._on_push(msg)
                else:
                    self._on_reply(msg)
            except (ValueError, TypeError, KeyError, ArithmeticError) as exc:
                log.error("%s: bad line from the venue (%s): %r", self.name, exc, line[:200])
        self._drop_connection(why)
        return why

    def _on_reply(self, msg: dict[str, Any]) -> None:
        entry = self._pending.pop(msg["id"], None)
        if entry is None or entry[0].done():
            return
        fut = entry[0]
        if "error" in msg:
            fut.set_exception(error_from_wire(msg["error"]))
        else:
            fut.set_result(msg.get("ok"))

    def _on_push(self, msg: dict[str, Any]) -> None:
        if msg["event"] == "market":
            self._update_last(msg.get("last"))
            return
        event = event_from_wire(msg) if self._keep_events else None
        if event is not None:
            self._events.put_nowait(event)

    def _update_last(self, last: object) -> None:
        if isinstance(last, dict):
            for symbol, px in last.items():
                if isinstance(px, str):
                    self._last[symbol] = Decimal(px)

    # ---- requests ------------------------------------------------------------------------------

    async def _request(self, op: str, args: dict[str, Any], *, ready: bool = True) -> Any:
        mutating = op in MUTATING
        writer = self._writer
        if writer is None or (ready and not self._ready):
            raise VenueUnavailable(f"{self.name}: not connected ({self._last_error})")
        self._next_id += 1
        rid = self._next_id
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[rid] = (fut, mutating)
        try:
            writer.write(dumps({"id": rid, "op": op, "args": args}))
            await writer.drain()
        except (OSError, RuntimeError) as exc:
            self._pending.pop(rid, None)
            raise _unanswered(mutating, f"{self.name}: {op} not confirmed: {exc}") from None
        try:
            return await asyncio.wait_for(fut, self.request_timeout)
        except TimeoutError:
            raise _unanswered(
                mutating, f"{self.name}: {op} timed out after {self.request_timeout}s"
            ) from None
        finally:
            self._pending.pop(rid, None)

    async def call(self, op: str, args: dict[str, Any] | None = None) -> Any:
        """Any op of the protocol, raw (wire-form result)."""
        return await self._request(op, args or {})

    # ---- the contract --------------------------------------------------------------------------

    async def instruments(self) -> Sequence[Instrument]:
        if self._instruments is None:
            raw = await self._request("instruments", {})
            self._instruments = [from_wire(Instrument, i) for i in raw]
        return list(self._instruments)

    async def place(self, request: OrderRequest) -> OrderAccepted:
        return from_wire(OrderAccepted, await self._request("place", to_wire(request)))

    async def cancel(self, symbol: str, client_order_id: str) -> None:
        await self._request("cancel", {"symbol": symbol, "client_order_id": client_order_id})

    async def amend(self, request: AmendRequest) -> None:
        await self._request("amend", to_wire(request))

    async def cancel_all(self, symbol: str | None = None) -> int:
        return int(await self._request("cancel_all", {"symbol": symbol}))

    async def query_order(self, symbol: str, client_order_id: str, *,
                          venue_order_id: str | None = None) -> OrderState | None:
        """By client order id: the paper venue keeps every id an order had (the wire
        protocol has no venue order id to pass)."""
        raw = await self._request("query_order",
                                  {"symbol": symbol, "client_order_id": client_order_id})
        return None if raw is None else from_wire(OrderState, raw)

    async def open_orders(self, symbol: str | None = None) -> Sequence[OrderState]:
        raw = await self._request("open_orders", {"symbol": symbol})
        return [from_wire(OrderState, s) for s in raw]

    async def fills_since(self, since_ns: int) -> Sequence[OrderFilled]:
        raw = await self._request("fills_since", {"since_ns": since_ns})
        return [from_wire(OrderFilled, f) for f in raw]

    async def balances(self) -> Sequence[Balance]:
        return [from_wire(Balance, b) for b in await self._request("balances", {})]

    async def positions(self) -> Sequence[Position]:
        return [from_wire(Position, p) for p in await self._request("positions", {})]

    async def events(self) -> AsyncIterator[VenueEvent]:
        """Events as the venue pushes them while connected; ends after ``close``."""
        while True:
            item = await self._events.get()
            if item is None:
                return
            yield item

    async def health(self) -> Health:
        if not self._ready:
            return Health(False, f"disconnected: {self._last_error}")
        t0 = time.perf_counter()
        try:
            remote = from_wire(Health, await self._request("health", {}))
        except VenueError as exc:
            return Health(False, str(exc))
        rtt = (time.perf_counter() - t0) * 1000.0
        return Health(remote.connected, remote.detail, rtt)

    def last_price(self, symbol: str) -> Decimal | None:
        return self._last.get(symbol)

    # ---- simulator control ---------------------------------------------------------------------

    async def tick(self, now_ns: int | None = None) -> int:
        return int(await self._request("tick", {} if now_ns is None else {"now_ns": now_ns}))

    async def set_faults(self, faults: Faults) -> None:
        await self._request("set_faults", to_wire(faults))

    async def trade_against(
        self, symbol: str, side: Side, quantity: Decimal, price: Decimal | None = None
    ) -> tuple[Decimal, Decimal]:
        """(quantity traded, of which the account's) — see the protocol's ``trade_against``."""
        args: dict[str, Any] = {"symbol": symbol, "side": side.value, "quantity": str(quantity)}
        if price is not None:
            args["price"] = str(price)
        raw = await self._request("trade_against", args)
        return Decimal(raw["traded"]), Decimal(raw["ours"])

    async def drop_clients(self, hold: bool = False) -> int:
        """Cut the venue's other clients off (and keep them off while ``hold``)."""
        return int(await self._request("drop_clients", {"hold": hold}))

    async def release(self) -> None:
        await self._request("release", {})
