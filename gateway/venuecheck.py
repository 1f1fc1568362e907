"""``fixgw venue-check``: try one configured venue before trading on it (a testnet first).

Builds the venue's connector from the config exactly as ``fixgw run`` does, starts it (clock
offset, instruments, private stream), and reports what the gateway would rely on: the
instrument rules of a symbol, its last price, the balances and the open orders. With
``--place`` it also places the smallest post-only buy the rules allow, far below the market
(half the last price), waits for the venue's acknowledgement on the private stream, queries it,
cancels it and waits for the cancellation: the whole order round trip, without trading.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from decimal import ROUND_CEILING, Decimal
from typing import TypeVar

from connectors.base import (
    Connector,
    OrderAccepted,
    OrderCanceled,
    OrderRequest,
    OrderType,
    Side,
    TimeInForce,
    VenueEvent,
)
from connectors.common.stream import StreamError, WsStream
from gateway.config import Config

T = TypeVar("T")


class CheckFailed(Exception):
    """A step of the check failed (the message says which, and the venue's answer)."""


def _min_buy(qty_step: Decimal, min_qty: Decimal, min_notional: Decimal, price: Decimal
             ) -> Decimal:
    qty = max(min_qty, qty_step)
    if min_notional > 0 and qty * price < min_notional:
        qty = (min_notional / price / qty_step).to_integral_value(ROUND_CEILING) * qty_step
    return qty


async def _next_event(events: asyncio.Queue[VenueEvent], kind: type, coid: str,
                      within_s: float) -> VenueEvent:
    deadline = time.monotonic() + within_s
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise CheckFailed(f"no {kind.__name__} for {coid} on the private stream in "
                              f"{within_s:.0f} s")
        ev = await asyncio.wait_for(events.get(), left)
        if isinstance(ev, kind) and ev.client_order_id == coid:
            return ev


def plain(d: Decimal) -> str:
    """A decimal as a person writes it: no exponent, no trailing zeros (0E-8 is 0)."""
    text = format(d, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def _streams(conn: Connector) -> list[WsStream]:
    """The connector's WebSockets (to see a refused login at once, not after the stream's
    patience runs out)."""
    return [v for v in vars(conn).values() if isinstance(v, WsStream)]


def _why(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


async def _start(conn: Connector, within_s: float) -> None:
    """``conn.start()``, stopped at the first refusal of its private stream's login or
    subscription (a wrong key or secret is not worth retrying)."""
    task = asyncio.create_task(conn.start())
    deadline = time.monotonic() + within_s
    try:
        while not task.done():
            for st in _streams(conn):
                if isinstance(st.last_error, StreamError):
                    raise CheckFailed(f"start: private stream refused: {st.last_error}")
            if time.monotonic() > deadline:
                raise CheckFailed(f"start: not done in {within_s:.0f} s")
            await asyncio.wait({task}, timeout=0.1)
        await task
    except CheckFailed:
        raise
    except Exception as exc:
        raise CheckFailed(f"start: {_why(exc)}") from None
    finally:
        if not task.done():
            task.cancel()
            with contextlib.suppress(BaseException):
                await task


async def check_venue(
    conn: Connector, symbol: str, *, place: bool, say: Callable[[str], None],
    within_s: float = 15.0, start_within_s: float = 60.0,
) -> None:
    """Run the check against a connector (raises :class:`CheckFailed` naming the step that
    failed, at the first error; the connector is closed whatever happens)."""
    t0 = time.monotonic()

    def step(text: str) -> None:
        say(f"[{(time.monotonic() - t0) * 1000:7.0f} ms] {text}")

    async def do(name: str, call: Awaitable[T]) -> T:
        try:
            return await call
        except CheckFailed:
            raise
        except Exception as exc:  # a venue's refusal, a timeout, a lost connection
            raise CheckFailed(f"{name}: {_why(exc)}") from None

    events: asyncio.Queue[VenueEvent] = asyncio.Queue()

    async def pump() -> None:
        async for ev in conn.events():
            events.put_nowait(ev)

    pumping: asyncio.Task[None] | None = None
    try:
        await _start(conn, start_within_s)
        pumping = asyncio.create_task(pump())
        health = await do("health", conn.health())
        step(f"started: {'connected' if health.connected else 'NOT connected'} "
             f"{health.detail}".rstrip())
        instruments = {i.symbol: i for i in await do("instruments", conn.instruments())}
        step(f"{len(instruments)} instruments")
        inst = instruments.get(symbol)
        if inst is None:
            raise CheckFailed(f"instruments: {symbol} is not among the venue's instruments")
        step(f"{symbol} ({inst.venue_symbol}): tick {plain(inst.tick_size)}, lot "
             f"{plain(inst.lot_size)}, min qty {plain(inst.min_qty)}, min notional "
             f"{plain(inst.min_notional)}")
        last = conn.last_price(symbol)
        step(f"last price {plain(last) if last is not None else 'unknown'}")
        balances = [b for b in await do("balances", conn.balances()) if b.total]
        step("balances: " + (", ".join(f"{b.asset} {plain(b.free)} free / {plain(b.locked)} "
                                       "locked" for b in balances[:10]) or "none"))
        step(f"{len(await do('open orders', conn.open_orders()))} open orders")
        if not place:
            return
        if last is None:
            raise CheckFailed("place: no last price to place a test order against")
        price = (last / 2 / inst.tick_size).to_integral_value() * inst.tick_size
        qty = _min_buy(inst.lot_size, inst.min_qty, inst.min_notional, price)
        coid = f"fgwcheck{int(time.time())}"
        req = OrderRequest(coid, symbol, Side.BUY, OrderType.LIMIT, qty, price,
                           time_in_force=TimeInForce.GTC, post_only=True)
        acc = await do("place", conn.place(req))
        step(f"placed {coid}: buy {plain(qty)} @ {plain(price)} post-only -> venue order "
             f"{acc.venue_order_id}")
        await do("acknowledgement", _next_event(events, OrderAccepted, coid, within_s))
        step("acknowledged on the private stream")
        state = await do("query", conn.query_order(symbol, coid))
        if state is None:
            raise CheckFailed(f"query: the venue does not know {coid}")
        step(f"query: {state.status.value}, {plain(state.quantity)} @ "
             f"{plain(state.price) if state.price is not None else 'market'}")
        try:
            await conn.cancel(symbol, coid)
        except Exception as exc:
            raise CheckFailed(f"cancel: {_why(exc)} (cancel {coid} by hand)") from None
        await do("cancellation", _next_event(events, OrderCanceled, coid, within_s))
        step("canceled (seen on the private stream)")
    finally:
        if pumping is not None:
            pumping.cancel()
        with contextlib.suppress(Exception):
            await conn.close()


def venue_of(cfg: Config, name: str | None) -> str:
    names = [v.name for v in cfg.venue]
    if name is None:
        if len(names) != 1:
            raise CheckFailed(f"say which venue: --venue {' | '.join(names) or '(none)'}")
        return names[0]
    if name not in names:
        raise CheckFailed(f"no [[venue]] named {name!r} (there are: {', '.join(names)})")
    return name
