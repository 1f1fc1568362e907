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
import time
from collections.abc import Callable
from decimal import ROUND_CEILING, Decimal

from connectors.base import (
    Connector,
    OrderAccepted,
    OrderCanceled,
    OrderRequest,
    OrderType,
    Side,
    TimeInForce,
    VenueError,
    VenueEvent,
)
from gateway.config import Config


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


async def check_venue(
    conn: Connector, symbol: str, *, place: bool, say: Callable[[str], None],
    within_s: float = 15.0,
) -> None:
    """Run the check against a connector (raises :class:`CheckFailed`)."""
    t0 = time.monotonic()

    def step(text: str) -> None:
        say(f"[{(time.monotonic() - t0) * 1000:7.0f} ms] {text}")

    try:
        await conn.start()
    except VenueError as exc:
        raise CheckFailed(f"start: {exc}") from None
    events: asyncio.Queue[VenueEvent] = asyncio.Queue()

    async def pump() -> None:
        async for ev in conn.events():
            events.put_nowait(ev)

    pumping = asyncio.create_task(pump())
    try:
        health = await conn.health()
        step(f"started: {'connected' if health.connected else 'NOT connected'} "
             f"{health.detail}".rstrip())
        instruments = {i.symbol: i for i in await conn.instruments()}
        step(f"{len(instruments)} instruments")
        inst = instruments.get(symbol)
        if inst is None:
            raise CheckFailed(f"{symbol} is not among the venue's instruments")
        step(f"{symbol} ({inst.venue_symbol}): tick {inst.tick_size}, lot {inst.lot_size}, "
             f"min qty {inst.min_qty}, min notional {inst.min_notional}")
        last = conn.last_price(symbol)
        step(f"last price {last if last is not None else 'unknown'}")
        balances = [b for b in await conn.balances() if b.total]
        step("balances: " + (", ".join(f"{b.asset} {b.free} free / {b.locked} locked"
                                       for b in balances[:10]) or "none"))
        step(f"{len(await conn.open_orders())} open orders")
        if not place:
            return
        if last is None:
            raise CheckFailed("no last price to place a test order against")
        price = (last / 2 / inst.tick_size).to_integral_value() * inst.tick_size
        qty = _min_buy(inst.lot_size, inst.min_qty, inst.min_notional, price)
        coid = f"fgwcheck{int(time.time())}"
        req = OrderRequest(coid, symbol, Side.BUY, OrderType.LIMIT, qty, price,
                           time_in_force=TimeInForce.GTC, post_only=True)
        try:
            acc = await conn.place(req)
        except VenueError as exc:
            raise CheckFailed(f"place: {exc}") from None
        step(f"placed {coid}: buy {qty} @ {price} post-only -> venue order {acc.venue_order_id}")
        await _next_event(events, OrderAccepted, coid, within_s)
        step("acknowledged on the private stream")
        state = await conn.query_order(symbol, coid)
        if state is None:
            raise CheckFailed(f"query: the venue does not know {coid}")
        step(f"query: {state.status.value}, {state.quantity} @ {state.price}")
        try:
            await conn.cancel(symbol, coid)
        except VenueError as exc:
            raise CheckFailed(f"cancel: {exc} (cancel {coid} by hand)") from None
        await _next_event(events, OrderCanceled, coid, within_s)
        step("canceled (seen on the private stream)")
    finally:
        pumping.cancel()
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
