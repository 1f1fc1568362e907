"""Throughput of the paper venue: marketable orders placed and filled per second.

    .venv/bin/python -m connectors.paper.bench                 # 50,000 orders, best of 5 runs
    .venv/bin/python -m connectors.paper.bench -n 100000 --runs 3 --type market

Each run builds a fresh :class:`PaperConnector` with the default markets and pushes ``-n``
orders through ``await connector.place(...)`` on BTC/USDT, alternating buy and sell (so the
balances hold), each crossing the synthetic market maker's best level (marketable IOC limit
orders by default, or market orders). The events are then read off the stream and counted:
every order must produce its OrderAccepted and at least one fill, or the run fails. The figure
is orders per second over place + event delivery (``time.perf_counter``).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import time
from decimal import Decimal

from connectors.base import OrderAccepted, OrderFilled, OrderRequest, OrderType, Side, TimeInForce
from connectors.paper.config import PaperConfig
from connectors.paper.venue import PaperConnector

SYMBOL = "BTC/USDT"


async def _run(n: int, order_type: OrderType) -> tuple[float, int]:
    venue = PaperConnector(PaperConfig(seed=1))
    book = venue.exchange.book(SYMBOL)
    qty = Decimal("0.001")
    ask, bid = book.best_ask(), book.best_bid()
    assert ask is not None and bid is not None
    requests = []
    for i in range(n):
        side = Side.BUY if i % 2 == 0 else Side.SELL
        if order_type is OrderType.MARKET:
            requests.append(OrderRequest(f"b{i}", SYMBOL, side, OrderType.MARKET, qty))
        else:
            price = ask + 10 if side is Side.BUY else bid - 10
            requests.append(
                OrderRequest(
                    f"b{i}",
                    SYMBOL,
                    side,
                    OrderType.LIMIT,
                    qty,
                    price,
                    time_in_force=TimeInForce.IOC,
                )
            )
    gc.collect()
    start = time.perf_counter()
    for request in requests:
        await venue.place(request)
    events = venue.drain_nowait()
    elapsed = time.perf_counter() - start
    accepted = sum(1 for e in events if isinstance(e, OrderAccepted))
    filled = {e.client_order_id for e in events if isinstance(e, OrderFilled)}
    if accepted != n or len(filled) != n:
        raise SystemExit(f"{accepted} accepted, {len(filled)} filled of {n}: the venue is broken")
    fills = sum(1 for e in events if isinstance(e, OrderFilled))
    await venue.close()
    return elapsed, fills


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-n", type=int, default=50_000, help="orders per run")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--type", choices=["limit", "market"], default="limit")
    args = parser.parse_args()
    order_type = OrderType.MARKET if args.type == "market" else OrderType.LIMIT
    asyncio.run(_run(min(args.n, 2000), order_type))  # warm-up
    results = [asyncio.run(_run(args.n, order_type)) for _ in range(args.runs)]
    best, fills = min(results)
    kind = "market" if order_type is OrderType.MARKET else "marketable IOC limit"
    print(f"paper venue, {args.n} {kind} orders on {SYMBOL}, best of {args.runs}:")
    print(
        f"  {args.n / best:,.0f} orders placed+filled/s ({fills / best:,.0f} fills/s, "
        f"{best * 1e6 / args.n:.1f} us/order)"
    )


if __name__ == "__main__":
    main()
