"""Child process of test_durability: appends order events forever, printing each acknowledged one.

Usage: python _orders_durability_child.py URL WORKERS
Each worker takes event ids from blocks it reserves (``reserve("event_id", 50)``) and, per
event, appends the event, its order's new snapshot and a fill in one call; after the call
returned it prints "<event_id> <order_id> <trade_id>" (flushed). The parent SIGKILLs it.
"""

from __future__ import annotations

import asyncio
import sys
from decimal import Decimal

from connectors.base import OrderType, Side, TimeInForce
from gateway.orders.lifecycle import OrdStatus
from gateway.orders.model import Order, OrderEvent
from gateway.store.records import FillRecord
from gateway.store.store import SessionStore

BLOCK = 50
EVENTS_PER_ORDER = 3


async def worker(store: SessionStore, n: int) -> None:
    next_id, end = 0, 0
    count = 0
    while True:
        if next_id == end:
            next_id = await store.reserve("event_id", BLOCK)
            end = next_id + BLOCK
        event_id, next_id = next_id, next_id + 1
        order_id = f"W{n}-{count // EVENTS_PER_ORDER}"
        trade_id = f"T{event_id}"
        order = Order(
            order_id=order_id,
            session_id=f"FIX.4.4:GW->C{n}",
            cl_ord_id=f"CL-{order_id}",
            account=None,
            venue="paper",
            symbol="BTC/USDT",
            side=Side.BUY,
            type=OrderType.LIMIT,
            quantity=Decimal("3"),
            price=Decimal("100.5"),
            stop_price=None,
            time_in_force=TimeInForce.GTC,
            expire_time_ns=None,
            post_only=False,
            reduce_only=False,
            created_ns=event_id,
            status=OrdStatus.PARTIALLY_FILLED,
            updated_ns=event_id,
            last_event_id=event_id,
        )
        event = OrderEvent(
            event_id,
            order_id,
            order.session_id,
            "fill",
            event_id,
            {"trade_id": trade_id},
            exec_id=f"X{event_id}",
        )
        fill = FillRecord(
            "paper",
            trade_id,
            order_id,
            Decimal("1"),
            Decimal("100.5"),
            None,
            None,
            "taker",
            event_id,
        )
        await store.append_order_events([event], [order], [fill])
        sys.stdout.write(f"{event_id} {order_id} {trade_id}\n")
        sys.stdout.flush()
        count += 1


async def main(url: str, workers: int) -> None:
    store = SessionStore(url)
    await store.start()
    sys.stdout.write("started\n")
    sys.stdout.flush()
    await asyncio.gather(*(worker(store, n) for n in range(workers)))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
