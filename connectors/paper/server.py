"""The venue simulator: a :class:`PaperConnector` in its own process, served over TCP.

``fixgw venue-sim --port PORT [--seed N] [--tick-interval S]`` runs it; the gateway reaches it
with :class:`connectors.paper.remote.RemotePaperConnector` (``[[venue]] kind = "paper-remote"``).
Because the venue lives in another process it outlives the gateway: the gateway can be killed
and restarted while the venue keeps trading, and must then reconcile (Invariant 4).

Protocol
--------
TCP (``--host``, by default 127.0.0.1), UTF-8 JSON, one object per line (``\\n``). Any number
of clients may connect; each is served independently, and venue events go to all of them.

Requests are served concurrently, each as soon as its line is read (so in arrival order, unless
``latency_s`` is injected).

Request (client -> server)::

    {"id": 7, "op": "place", "args": {...}}          # "args" may be omitted when empty

Response (server -> client, exactly one per request, matched by ``id``)::

    {"id": 7, "ok": <result>}
    {"id": 7, "error": {"kind": "rejected" | "ambiguous" | "unavailable",
                        "reason": <RejectReason value>, "text": "..."}}

``rejected`` is :class:`VenueRejected` (nothing happened; also sent for malformed requests and
unknown ops, reason ``other``/``unsupported``), ``ambiguous`` is :class:`VenueAmbiguous` (an
injected timeout: it may have happened), ``unavailable`` is :class:`VenueUnavailable`.

Event (server -> every client, no ``id``), in the order the venue produced them::

    {"event": "accepted", "client_order_id", "venue_order_id", "ts_ns"}
    {"event": "rejected", "client_order_id", "reason", "text", "ts_ns"}
    {"event": "filled", "client_order_id", "venue_order_id", "trade_id", "quantity", "price",
                        "fee", "fee_currency", "liquidity", "ts_ns"}
    {"event": "canceled", "client_order_id", "venue_order_id", "ts_ns", "reason",
     "filled_quantity"}
    {"event": "expired", "client_order_id", "venue_order_id", "ts_ns", "filled_quantity"}
    {"event": "amended", "client_order_id", "venue_order_id", "quantity", "price", "ts_ns",
                         "new_client_order_id"}
    {"event": "market", "ts_ns", "last": {symbol: price}}   # after every market tick

Events are not stored for absent clients: one that was disconnected learns what it missed with
``open_orders``, ``query_order`` and ``fills_since`` (as from a real venue's REST API).

Values: ``Decimal`` as a string (``"180.01"``), absent as ``null``, times as int UTC ns, enums
as their value (``"buy"``, ``"limit"``, ``"gtc"``, ``"partially_filled"``, ``"maker"`` ...);
records are objects named by the fields of the dataclasses in :mod:`connectors.base`.

Ops of the connector contract (``args`` -> ``ok``):

=============  ==========================================  =================================
op             args                                        result
=============  ==========================================  =================================
info           {}                                          {"name", "capabilities",
                                                            "client_order_id_rules", "last"}
instruments    {}                                          [Instrument]
place          OrderRequest                                OrderAccepted
cancel         {"symbol", "client_order_id"}               null
amend          AmendRequest                                null
cancel_all     {"symbol": str | null}                      int (how many)
query_order    {"symbol", "client_order_id"}               OrderState | null
open_orders    {"symbol": str | null}                      [OrderState]
fills_since    {"since_ns": int}                           [OrderFilled] (as "filled" events,
                                                            without "event")
balances       {}                                          [Balance]
positions      {}                                          [Position]
health         {}                                          Health
=============  ==========================================  =================================

Control ops, for tests and demos:

* ``tick`` ``{"now_ns"?: int}`` -> the tick's time: advance the markets now (random walk,
  market-maker requotes, expiries, stops) and publish what happened.
* ``set_faults`` ``{Faults fields}`` -> null: replace the injected faults (all off when ``{}``).
* ``trade_against`` ``{"symbol", "side", "quantity", "price"?}`` -> ``{"traded", "ours"}``: a
  taker order of the simulator's own counterparty (the market maker, which has no account,
  events or balance) crosses the book on ``side`` for ``quantity``, best price first, no further
  than ``price`` (default: the market-protection band from the best price). Resting orders of
  the account (the paper venue holds one: the gateway's) are filled at their price (liquidity
  maker) in price-time priority with the market maker's quotes, which are restored afterwards.
  ``traded`` is the total quantity it took, ``ours`` how much of it was the account's.
* ``drop_clients`` ``{"hold"?: bool}`` -> how many: cut every other client's connection at once
  (a network failure: what was in flight is lost); with ``hold`` new connections are closed as
  soon as they are accepted, until ``release`` ``{}`` -> null. The venue trades on meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import json
import logging
import sys
import types
import typing
from collections.abc import Awaitable, Callable, Mapping
from decimal import Decimal
from enum import Enum
from typing import Any, Final, TypeVar

from connectors.base import (
    AmendRequest,
    OrderAccepted,
    OrderAmended,
    OrderCanceled,
    OrderExpired,
    OrderFilled,
    OrderRejected,
    OrderRequest,
    RejectReason,
    Side,
    VenueAmbiguous,
    VenueError,
    VenueEvent,
    VenueRejected,
    VenueUnavailable,
)
from connectors.native import written_annotations
from connectors.paper.config import Faults
from connectors.paper.venue import PaperConnector

log = logging.getLogger("fixgw.venue_sim")

T = TypeVar("T")

MAX_LINE: Final = 1 << 26
"""Longest line either side accepts (a ``fills_since`` answer can be long)."""
MAX_CLIENT_BUFFER: Final = 64 << 20
"""A client that lets this much of its output pile up is disconnected."""

EVENT_KINDS: Final[dict[str, type[Any]]] = {
    "accepted": OrderAccepted,
    "rejected": OrderRejected,
    "filled": OrderFilled,
    "canceled": OrderCanceled,
    "expired": OrderExpired,
    "amended": OrderAmended,
}
_KIND_OF: Final[dict[type[Any], str]] = {cls: kind for kind, cls in EVENT_KINDS.items()}


# ---- the wire codec (shared with connectors.paper.remote) ---------------------------------------


def to_wire(value: Any) -> Any:
    """A record, enum, Decimal, collection or scalar as JSON-ready data."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Enum):
        return value.value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_wire(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): to_wire(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = [to_wire(v) for v in value]
        return sorted(items) if isinstance(value, set | frozenset) else items
    raise TypeError(f"cannot put {type(value).__name__} on the wire")


@functools.cache
def _schema(cls: type[Any]) -> tuple[dict[str, Any], frozenset[str]]:
    """The field types and names of the record ``cls`` (resolved once per class)."""
    names = frozenset(f.name for f in dataclasses.fields(cls))
    return _declared_hints(cls), names


def _declared_hints(cls: type[Any]) -> dict[str, Any]:
    """The field types of ``cls`` as its source declares them (a class compiled by mypyc, the
    contract's values of :mod:`connectors.events`, keeps only ``type`` for ``str | None``)."""
    module = sys.modules[cls.__module__]
    if str(module.__file__).endswith(".py"):
        return typing.get_type_hints(cls)
    holder = type(cls.__name__, (), {"__annotations__": written_annotations(cls),
                                     "__module__": cls.__module__})
    return typing.get_type_hints(holder, globalns=vars(module))


def _value(tp: Any, data: Any) -> Any:
    origin = typing.get_origin(tp)
    if origin is typing.Literal:
        if data not in typing.get_args(tp):
            raise ValueError(f"expected one of {typing.get_args(tp)}, got {data!r}")
        return data
    if origin is typing.Union or origin is types.UnionType:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if data is None:
            return None
        return _value(args[0], data)
    if origin in (frozenset, set, list, tuple):
        (item,) = typing.get_args(tp)[:1]
        values = [_value(item, v) for v in data]
        return origin(values)
    if tp is Decimal:
        if not isinstance(data, str | int) or isinstance(data, bool):
            raise ValueError(f"a decimal is sent as a string, not {data!r}")
        try:
            return Decimal(data)
        except ArithmeticError:
            raise ValueError(f"not a decimal: {data!r}") from None
    if isinstance(tp, type) and issubclass(tp, Enum):
        return tp(data)
    if tp is float and isinstance(data, int | float) and not isinstance(data, bool):
        return float(data)
    if tp in (int, str, bool) and type(data) is tp:
        return data
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return from_wire(tp, data)
    raise ValueError(f"expected {getattr(tp, '__name__', tp)}, got {data!r}")


def from_wire(cls: type[T], data: Any) -> T:
    """The record ``cls`` from its wire form (unknown keys are refused, missing ones default)."""
    if not isinstance(data, dict):
        raise ValueError(f"{cls.__name__}: expected an object, got {data!r}")
    hints, names = _schema(cls)  # type: ignore[arg-type]
    unknown = data.keys() - names
    if unknown:
        raise ValueError(f"{cls.__name__}: unknown field(s) {', '.join(sorted(unknown))}")
    kwargs = {name: _value(hints[name], v) for name, v in data.items()}
    return cls(**kwargs)


def event_to_wire(event: VenueEvent) -> dict[str, Any]:
    out: dict[str, Any] = {"event": _KIND_OF[type(event)]}
    out.update(to_wire(event))
    return out


def event_from_wire(data: dict[str, Any]) -> VenueEvent | None:
    """The venue event in a pushed line; None for other pushes (``market``)."""
    cls = EVENT_KINDS.get(data.get("event", ""))
    if cls is None:
        return None
    fields = {k: v for k, v in data.items() if k != "event"}
    event: VenueEvent = from_wire(cls, fields)
    return event


def error_to_wire(exc: VenueError) -> dict[str, Any]:
    if isinstance(exc, VenueRejected):
        return {"kind": "rejected", "reason": exc.reason.value, "text": exc.text}
    kind = "ambiguous" if isinstance(exc, VenueAmbiguous) else "unavailable"
    reason = RejectReason.VENUE_UNAVAILABLE if kind == "unavailable" else RejectReason.OTHER
    return {"kind": kind, "reason": reason.value, "text": str(exc)}


def error_from_wire(data: Any) -> VenueError:
    if not isinstance(data, dict):
        return VenueAmbiguous(f"malformed error {data!r}")
    text = str(data.get("text", ""))
    kind = data.get("kind")
    if kind == "rejected":
        try:
            reason = RejectReason(data.get("reason"))
        except ValueError:
            reason = RejectReason.OTHER
        return VenueRejected(reason, text)
    if kind == "unavailable":
        return VenueUnavailable(text)
    return VenueAmbiguous(text)


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode() + b"\n"


# ---- the simulated venue ------------------------------------------------------------------------


class VenueSimulator(PaperConnector):
    """A :class:`PaperConnector` whose exchange can be traded against from outside."""

    def trade_against(
        self, symbol: str, side: Side, quantity: Decimal, price: Decimal | None = None
    ) -> tuple[Decimal, Decimal]:
        try:
            return self.exchange.trade_against(symbol, side, quantity, price, self._clock())
        finally:
            self._publish()


# ---- the server ---------------------------------------------------------------------------------


class _BadRequest(Exception):
    pass


Handler = Callable[[dict[str, Any]], Awaitable[Any]]


class VenueSimServer:
    """Serves one :class:`VenueSimulator` to any number of TCP clients (see the module doc)."""

    def __init__(self, venue: VenueSimulator) -> None:
        self.venue = venue
        self._server: asyncio.Server | None = None
        self._clients: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._pumps: list[asyncio.Task[None]] = []
        self._hold = False
        v = venue
        self._ops: dict[str, Handler] = {
            "info": self._info,
            "instruments": lambda a: v.instruments(),
            "place": lambda a: v.place(from_wire(OrderRequest, a)),
            "cancel": lambda a: v.cancel(_str(a, "symbol"), _str(a, "client_order_id")),
            "amend": lambda a: v.amend(from_wire(AmendRequest, a)),
            "cancel_all": lambda a: v.cancel_all(_opt_str(a, "symbol")),
            "query_order": lambda a: v.query_order(_str(a, "symbol"),
                                                   _str(a, "client_order_id")),
            "open_orders": lambda a: v.open_orders(_opt_str(a, "symbol")),
            "fills_since": lambda a: v.fills_since(_int(a, "since_ns")),
            "balances": lambda a: v.balances(),
            "positions": lambda a: v.positions(),
            "health": lambda a: v.health(),
            "tick": self._tick,
            "set_faults": self._set_faults,
            "trade_against": self._trade_against,
        }

    # ---- life ----------------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> tuple[str, int]:
        self._pumps = [
            asyncio.create_task(self._pump_events(), name="venue-sim-events"),
            asyncio.create_task(self._pump_market(), name="venue-sim-market"),
        ]
        self._server = await asyncio.start_server(self._on_client, host, port, limit=MAX_LINE)
        sock = self._server.sockets[0].getsockname()
        return str(sock[0]), int(sock[1])

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for w in list(self._clients):
            w.close()
        for t in [*self._pumps, *self._tasks]:
            t.cancel()
        await asyncio.gather(*self._pumps, *self._tasks, return_exceptions=True)
        self._pumps = []
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2.0)
            self._server = None

    @property
    def clients(self) -> int:
        return len(self._clients)

    # ---- pushing -------------------------------------------------------------------------------

    def _broadcast(self, line: bytes) -> None:
        for w in list(self._clients):
            self._write(w, line)

    def _write(self, w: asyncio.StreamWriter, line: bytes) -> None:
        if w.is_closing():
            self._clients.discard(w)
            return
        w.write(line)
        if w.transport.get_write_buffer_size() > MAX_CLIENT_BUFFER:
            log.warning("client %s does not read: disconnected", w.get_extra_info("peername"))
            self._clients.discard(w)
            w.transport.abort()

    async def _pump_events(self) -> None:
        async for event in self.venue.events():
            self._broadcast(dumps(event_to_wire(event)))

    async def _pump_market(self) -> None:
        while True:
            now = await self.venue.next_tick()
            self._broadcast(dumps({"event": "market", "ts_ns": now, "last": self._last()}))

    def _last(self) -> dict[str, str]:
        ex = self.venue.exchange
        return {i.symbol: str(ex.last_price(i.symbol)) for i in ex.instruments()}

    # ---- serving -------------------------------------------------------------------------------

    async def _on_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        if self._hold:
            log.info("client %s refused (held)", peer)
            writer.transport.abort()
            return
        log.info("client %s connected", peer)
        self._clients.add(writer)
        try:
            while True:
                try:
                    line = await reader.readline()
                except (ConnectionError, asyncio.LimitOverrunError, ValueError) as exc:
                    log.info("client %s: %s", peer, exc)
                    break
                if not line:
                    break
                if not line.strip():
                    continue
                task = asyncio.create_task(self._serve(writer, line))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        finally:
            self._clients.discard(writer)
            writer.close()
            log.info("client %s disconnected", peer)

    async def _serve(self, writer: asyncio.StreamWriter, line: bytes) -> None:
        rid: Any = None
        reply: dict[str, Any]
        try:
            try:
                request = json.loads(line)
            except ValueError as exc:
                raise _BadRequest(f"not JSON: {exc}") from None
            if not isinstance(request, dict):
                raise _BadRequest("a request is a JSON object")
            rid = request.get("id")
            op = request.get("op")
            args = request.get("args") or {}
            if not isinstance(args, dict):
                raise _BadRequest("args must be an object")
            handler = self._ops.get(op) if isinstance(op, str) else None
            if op == "drop_clients":
                reply = {"id": rid, "ok": self._drop_clients(writer, args)}
            elif op == "release":
                self._hold = False
                reply = {"id": rid, "ok": None}
            elif handler is None:
                error = VenueRejected(RejectReason.UNSUPPORTED, f"unknown op {op!r}")
                reply = {"id": rid, "error": error_to_wire(error)}
            else:
                reply = {"id": rid, "ok": to_wire(await handler(args))}
        except VenueError as exc:
            reply = {"id": rid, "error": error_to_wire(exc)}
        except (_BadRequest, ValueError, TypeError, KeyError, ArithmeticError) as exc:
            error = VenueRejected(RejectReason.OTHER, f"bad request: {exc}")
            reply = {"id": rid, "error": error_to_wire(error)}
        self._write(writer, dumps(reply))

    # ---- ops -----------------------------------------------------------------------------------

    def _drop_clients(self, caller: asyncio.StreamWriter, args: dict[str, Any]) -> int:
        hold = args.get("hold", False)
        if not isinstance(hold, bool):
            raise _BadRequest("hold must be true or false")
        self._hold = hold
        others = [w for w in self._clients if w is not caller]
        for w in others:
            self._clients.discard(w)
            w.transport.abort()
        log.info("dropped %d client(s)%s", len(others), " and holding" if hold else "")
        return len(others)

    async def _info(self, args: dict[str, Any]) -> dict[str, Any]:
        info = self.venue.info
        return {
            "name": info.name,
            "capabilities": to_wire(info.capabilities),
            "client_order_id_rules": to_wire(info.client_order_id_rules),
            "last": self._last(),
        }

    async def _tick(self, args: dict[str, Any]) -> int:
        now = args.get("now_ns")
        if now is None:
            now = self.venue.config.clock()
        elif not isinstance(now, int) or isinstance(now, bool):
            raise _BadRequest("now_ns must be an integer")
        self.venue.tick(now)
        return now

    async def _set_faults(self, args: dict[str, Any]) -> None:
        self.venue.set_faults(from_wire(Faults, args))

    async def _trade_against(self, args: dict[str, Any]) -> dict[str, Any]:
        unknown = set(args) - {"symbol", "side", "quantity", "price"}
        if unknown:
            raise _BadRequest(f"unknown field(s) {', '.join(sorted(unknown))}")
        side = Side(_str(args, "side"))
        qty = _value(Decimal, args.get("quantity"))
        price = _value(Decimal | None, args.get("price"))
        traded, ours = self.venue.trade_against(_str(args, "symbol"), side, qty, price)
        return {"traded": traded, "ours": ours}


def _str(args: dict[str, Any], key: str) -> str:
    v = args.get(key)
    if not isinstance(v, str):
        raise _BadRequest(f"{key} must be a string")
    return v


def _opt_str(args: dict[str, Any], key: str) -> str | None:
    return None if args.get(key) is None else _str(args, key)


def _int(args: dict[str, Any], key: str) -> int:
    v = args.get(key)
    if not isinstance(v, int) or isinstance(v, bool):
        raise _BadRequest(f"{key} must be an integer")
    return v

