"""StreamingConnector: duplicates dropped, and what a stream missed caught up by REST."""

import asyncio
from collections.abc import Sequence
from decimal import Decimal

from connectors.base import (
    Balance,
    Health,
    Instrument,
    OrderAccepted,
    OrderCanceled,
    OrderFilled,
    OrderRequest,
    OrderState,
    OrderType,
    Side,
    VenueInfo,
    VenueStatus,
)
from connectors.common.venue import StreamingConnector, state_event
from connectors.paper.exchange import PaperExchange

from .support import drain


class RestOnly(StreamingConnector):
    """The paper exchange seen only through 'REST' (its stream is the test's to feed)."""

    def __init__(self) -> None:
        super().__init__()
        self.info = VenueInfo("t")
        self.x = PaperExchange()

    async def instruments(self) -> Sequence[Instrument]:
        return self.x.instruments()

    async def place(self, request: OrderRequest) -> OrderAccepted:
        self.track(request.client_order_id, request.symbol)
        return self.x.place(request, self.x.config.clock())

    async def cancel(self, symbol: str, client_order_id: str) -> None:
        self.x.cancel(symbol, client_order_id, self.x.config.clock())

    async def cancel_all(self, symbol: str | None = None) -> int:
        return self.x.cancel_all(symbol, self.x.config.clock())

    async def query_order(self, symbol: str, client_order_id: str, *,
                          venue_order_id: str | None = None) -> OrderState | None:
        return self.x.query_order(symbol, client_order_id)

    async def open_orders(self, symbol: str | None = None) -> Sequence[OrderState]:
        return self.x.open_orders(symbol)

    async def fills_since(self, since_ns: int) -> Sequence[OrderFilled]:
        return self.x.fills_since(since_ns)

    async def balances(self) -> Sequence[Balance]:
        return self.x.balances()

    async def health(self) -> Health:
        return Health(True)


def test_duplicates_dropped_and_missed_events_caught_up() -> None:
    async def main() -> None:
        c = RestOnly()
        hooks: list[str] = []

        async def hook() -> None:
            hooks.append("gateway reconciles")

        c.on_reconnect.append(hook)
        bid = c.x.book("BTC/USDT").best_bid()
        assert bid is not None
        for cid, px in (("a1", bid + Decimal("0.01")), ("a2", bid - 200)):  # a1 best bid
            await c.place(OrderRequest(cid, "BTC/USDT", Side.BUY, OrderType.LIMIT,
                                       Decimal("0.01"), px))
        streamed = c.x.drain_events()
        for ev in streamed + streamed:  # the stream delivered everything twice
            c.emit(ev)
        assert len(drain(c)) == len(streamed) == 2 and c.duplicates_dropped == 2
        # while the stream is down: a1 fills, a2 is cancelled (by someone else); nothing streamed
        c.x.trade_against("BTC/USDT", Side.SELL, Decimal("0.01"), bid + Decimal("0.01"),
                          c.x.config.clock())
        c.x.cancel("BTC/USDT", "a2", c.x.config.clock())
        missed = [e for e in c.x.drain_events() if not isinstance(e, OrderAccepted)]
        await c.after_reconnect()
        caught = drain(c)
        fills = [e for e in caught if isinstance(e, OrderFilled)]
        cancels = [e for e in caught if isinstance(e, OrderCanceled)]
        assert [f.client_order_id for f in fills] == ["a1"]
        assert [x.client_order_id for x in cancels] == ["a2"]
        assert hooks == ["gateway reconciles"]
        assert c.tracked == {}  # a1 filled, a2 canceled: nothing more to watch
        # the late stream delivery of what was missed: all duplicates now
        for ev in missed:
            assert not c.emit(ev) or not isinstance(ev, OrderFilled | OrderCanceled)
        await c.after_reconnect()
        assert [e for e in drain(c) if isinstance(e, OrderFilled)] == []

    asyncio.run(main())


def test_state_event_for_every_status() -> None:
    st = OrderState("c", "v", "BTC/USDT", Side.BUY, VenueStatus.CANCELED, Decimal(1),
                    Decimal("0.5"), None)
    ev = state_event(st, 5)
    assert isinstance(ev, OrderCanceled) and ev.filled_quantity == Decimal("0.5")


def test_bounded_structures_forget_the_oldest() -> None:
    from connectors.common.venue import BoundedDict, SeenSet

    d: BoundedDict[int, str] = BoundedDict(3)
    for i in range(5):
        d[i] = str(i)
    assert list(d) == [2, 3, 4] and d.get(0) is None and d[4] == "4"
    d[2] = "again"  # written again: the most recent now
    d[5] = "5"
    assert list(d) == [4, 2, 5]
    s = SeenSet(2)
    assert s.add("a") and s.add("b") and not s.add("a") and s.add("c")
    assert "a" not in s and len(s) == 2
    s.discard("b")
    assert "b" not in s and len(s) == 1
