"""CcxtConnector.market_data: ccxt.pro's real ``watch_order_book``/``watch_trades`` (okx, bybit)
pointed at our emulators' public WebSockets on loopback; the book rebuilt from the yielded
events must equal the emulator's own, and trades must arrive with the taker's side.

Where ccxt.pro's feed goes (ccxt 4.5, only the scheme and host changed by ``override_urls``):
* okx: ``urls['api']['ws']`` + ``/public`` = ``/ws/v5/public``, channels ``books`` (no limit:
  400 levels) and ``trades``; ccxt checks ``prevSeqId`` against the last ``seqId`` (a gap:
  ``InvalidNonce``, and the next watch unsubscribes and subscribes again) but no longer
  verifies the CRC32 ``checksum`` (ccxt/pro/okx.py ``handle_order_book_message``).
* bybit: ``urls['api']['ws']['public']['spot']`` = ``/v5/public/spot``, topics
  ``orderbook.{limit}.{symbol}`` and ``publicTrade.{symbol}``; ccxt applies snapshot and delta
  and checks neither ``u`` nor ``seq`` (ccxt/pro/bybit.py ``handle_order_book``).

The sans-I/O part (diffs, precision) is tested on ccxt-shaped books without a socket.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

import ccxt.async_support as ccxt_async
from venue_common.mdsupport import BookReader, exchange_book
from venue_common.support import run, until

from connectors.base import BookSnapshot, BookUpdate, OrderRequest, OrderType, Side
from connectors.ccxt import CcxtConnector
from connectors.ccxt.marketdata import (
    CcxtBookFeed,
    book_side,
    changed,
    decimal_of,
    run_book_feed,
    trade_of,
)
from connectors.common.credentials import Credentials
from connectors.common.settings import VenueSettings
from emulators.bybit import BybitEmulator
from emulators.core import EmulatorServer
from emulators.okx import OkxEmulator

OKX = Credentials("0d6f1f1c-7c58-4d34-9a3e-1c6b3b6a2f10", "3B1C44E1F1D4B2A9C5E6F7A8B9C0D1E2",
                  "fixgw-Passphrase1")
BYBIT = Credentials("ccxt-bybit-key-01", "ccxt-bybit-secret-01")
BTC = "BTC/USDT"
PERP = "BTC/USDT:USDT"

OKX_OPTIONS: dict[str, Any] = {
    "events": "poll", "poll_interval_s": 0.2, "price_poll_s": 0,
    "fetchMarkets": {"types": ["spot", "swap"]},
    "has": {"fetchCurrencies": False},  # GET asset/currencies: not in the emulator
    "rateLimit": 5,
}
BYBIT_OPTIONS: dict[str, Any] = {
    "events": "poll", "poll_interval_s": 0.2, "price_poll_s": 0,
    "fetchMarkets": {"types": ["spot", "linear"]}, "enableUnifiedMargin": False,
    "enableUnifiedAccount": True, "has": {"fetchCurrencies": False}, "rateLimit": 5,
    "book_depth": 200,
}


@asynccontextmanager
async def venue(emu: EmulatorServer, exchange_id: str, creds: Credentials,
                options: dict[str, Any]) -> AsyncIterator[CcxtConnector]:
    await emu.start()
    settings = VenueSettings(name=exchange_id, credentials=creds, urls=emu.urls,
                             markets=frozenset({"spot", "perpetual"}), dead_man_s=None,
                             request_timeout_s=1.0, reconnect_base_s=0.05, reconnect_cap_s=0.2)
    conn = CcxtConnector(settings, exchange_id, options)
    try:
        await conn.start()
        yield conn
    finally:
        await conn.close()
        await emu.stop()


def okx() -> tuple[OkxEmulator, Any]:
    emu = OkxEmulator(OKX)
    return emu, venue(emu, "okx", OKX, OKX_OPTIONS)


def bybit() -> tuple[BybitEmulator, Any]:
    emu = BybitEmulator(BYBIT)
    return emu, venue(emu, "bybit", BYBIT, BYBIT_OPTIONS)


def _order(n: int, side: Side, price: str, qty: str = "0.01", symbol: str = BTC
           ) -> OrderRequest:
    return OrderRequest(f"md{n}", symbol, side, OrderType.LIMIT, Decimal(qty), Decimal(price))


def _place(emu: Any, req: OrderRequest) -> None:
    emu.core.run(lambda now: emu.core.exchange.place(req, now))


async def _equal(emu: Any, reader: BookReader, symbol: str = BTC, depth: int = 400) -> None:
    await until(lambda: reader.book.synced
                and reader.levels() == exchange_book(emu.core.exchange, symbol, depth))


# ---- sans-I/O ------------------------------------------------------------------------------


def test_floats_come_back_as_the_decimals_they_were_printed_from() -> None:
    assert decimal_of(97000.01) == Decimal("97000.01")
    assert str(decimal_of(97000.0)) == "97000"
    assert decimal_of(1e-05) == Decimal("0.00001")
    assert decimal_of(0.1 + 0.2) == Decimal("0.30000000000000004")  # a float sum stays one
    assert decimal_of(3) == 3 and decimal_of("0.5") == Decimal("0.5")
    # the caveat: beyond 15-17 significant digits the float no longer holds the venue's digits
    assert decimal_of(float("0.123456789012345678")) != Decimal("0.123456789012345678")


def test_levels_diff_and_contract_size() -> None:
    old = book_side([[100.0, 1.0], [99.5, 2.0]], Decimal(1))
    new = book_side([[100.0, 1.5], [98.0, 3.0], [97.0, 0.0]], Decimal(1))
    assert new == {Decimal(100): Decimal("1.5"), Decimal(98): Decimal(3)}  # size 0: no level
    assert changed(old, new, reverse=True) == (
        (Decimal(100), Decimal("1.5")), (Decimal("99.5"), Decimal(0)), (Decimal(98), Decimal(3)))
    assert changed(new, new, reverse=True) == ()
    assert book_side([[100.0, 3.0]], Decimal("0.01")) == {Decimal(100): Decimal("0.03")}
    t = trade_of(PERP, {"id": "7", "price": 97000.5, "amount": 2.0, "side": "sell",
                        "timestamp": 1700000000123}, Decimal("0.01"))
    assert (t.price, t.size, t.aggressor, t.trade_id, t.ts_ns) == (
        Decimal("97000.5"), Decimal("0.02"), Side.SELL, "7", 1700000000123_000_000)


# ---- okx ------------------------------------------------------------------------------------


def test_okx_capability_and_book_and_trades() -> None:
    async def go() -> None:
        emu, ctx = okx()
        async with ctx as conn:
            assert conn.capabilities.market_data
            reader = BookReader(conn, BTC)
            await _equal(emu, reader)
            assert reader.snapshots() == 1
            for n, price in enumerate(("96000", "96000.5", "95999")):
                _place(emu, _order(n, Side.BUY, price))
                await _equal(emu, reader)
            assert reader.updates() >= 3 and reader.snapshots() == 1
            # an account buy crossing the ask: a public trade whose aggressor is the buyer
            _place(emu, _order(9, Side.BUY, "98000", "0.02"))
            await until(lambda: reader.trades)
            t = reader.trades[0]
            assert t.aggressor is Side.BUY and t.size > 0 and t.trade_id and t.symbol == BTC
            await _equal(emu, reader)
            assert conn.md_feeds[BTC].resyncs == 0
            await reader.stop()
            await until(lambda: BTC not in conn.md_feeds)
    run(go())


def test_okx_gap_makes_ccxt_resubscribe_and_a_new_snapshot() -> None:
    async def go() -> None:
        emu, ctx = okx()
        async with ctx as conn:
            reader = BookReader(conn, BTC)
            await _equal(emu, reader)
            emu.public.faults.drop_next = 1
            _place(emu, _order(1, Side.BUY, "96000"))  # lost: the book misses this level
            _place(emu, _order(2, Side.BUY, "95000"))  # its prevSeqId shows the gap
            await _equal(emu, reader)
            feed = conn.md_feeds[BTC]
            assert feed.resyncs == 1 and reader.snapshots() == 2
            assert emu.public.unsubscribes >= 1  # ccxt's resync: unsubscribe, subscribe
            _place(emu, _order(3, Side.SELL, "99000"))
            await _equal(emu, reader)
            assert feed.resyncs == 1
            await reader.stop()
    run(go())


def test_okx_disconnect_reconnects_with_a_new_snapshot() -> None:
    async def go() -> None:
        emu, ctx = okx()
        async with ctx as conn:
            reader = BookReader(conn, BTC)
            await _equal(emu, reader)
            await emu.drop_streams()
            await until(lambda: reader.snapshots() == 2)
            _place(emu, _order(1, Side.BUY, "96000"))
            await _equal(emu, reader)
            assert conn.md_feeds[BTC].resyncs >= 1
            await reader.stop()
    run(go())


def test_okx_corrupt_size_under_a_right_checksum_is_not_caught_by_ccxt() -> None:
    """ccxt 4.5 does not verify OKX's checksum (the native connector does, and resyncs): a
    wrong size with the true book's checksum stays in ccxt's book until that level changes.
    This records ccxt's behaviour; it is why the native connector exists."""
    async def go() -> None:
        emu, ctx = okx()
        async with ctx as conn:
            reader = BookReader(conn, BTC)
            await _equal(emu, reader)
            emu.public.faults.corrupt_next = 1
            _place(emu, _order(1, Side.BUY, "96000"))
            await until(lambda: Decimal(96000) in reader.book.bids)
            assert reader.book.bids[Decimal(96000)] != Decimal("0.01")  # ccxt took the lie
            assert conn.md_feeds[BTC].resyncs == 0
            _place(emu, _order(2, Side.BUY, "96000"))  # the level changes again: right again
            await _equal(emu, reader)
            await reader.stop()
    run(go())


def test_okx_slow_consumer_gets_the_net_change() -> None:
    async def go() -> None:
        emu, ctx = okx()
        async with ctx as conn:
            stream = conn.market_data(BTC)
            first = await anext(stream)
            assert isinstance(first, BookSnapshot)
            feed = conn.md_feeds[BTC]
            for n in range(60):  # the consumer reads nothing meanwhile
                _place(emu, _order(n, Side.BUY, str(95000 + n)))
            want = exchange_book(emu.core.exchange, BTC, 400)
            await until(lambda: feed.current is not None and feed.current[0] == want[0])
            nxt = await anext(stream)  # one update: the net change of the 60
            assert isinstance(nxt, BookUpdate) and len(nxt.bids) == 60 and not nxt.asks
            bids = dict(first.bids)
            bids.update(nxt.bids)
            assert bids == want[0] and feed.resyncs == 0
            await stream.aclose()
            assert BTC not in conn.md_feeds
    run(go())


def test_okx_swap_book_in_base_units() -> None:
    async def go() -> None:
        emu, ctx = okx()
        async with ctx as conn:
            reader = BookReader(conn, PERP)
            await _equal(emu, reader, PERP)
            _place(emu, _order(1, Side.BUY, "96000", "0.05", PERP))
            await _equal(emu, reader, PERP)
            assert reader.book.bids[Decimal(96000)] == Decimal("0.05")
            await reader.stop()
    run(go())


# ---- bybit ----------------------------------------------------------------------------------


def test_bybit_book_and_trades() -> None:
    async def go() -> None:
        emu, ctx = bybit()
        async with ctx as conn:
            assert conn.capabilities.market_data
            reader = BookReader(conn, BTC)
            await _equal(emu, reader, depth=200)
            for n, price in enumerate(("96000", "96000.5", "95999")):
                _place(emu, _order(n, Side.BUY, price))
                await _equal(emu, reader, depth=200)
            _place(emu, _order(9, Side.SELL, "90000", "0.02"))  # crosses the bid
            await until(lambda: reader.trades)
            assert reader.trades[0].aggressor is Side.SELL
            await _equal(emu, reader, depth=200)
            assert reader.snapshots() == 1 and reader.updates() >= 3
            await reader.stop()
    run(go())


def test_bybit_new_snapshot_mid_stream_replaces_the_book() -> None:
    async def go() -> None:
        emu, ctx = bybit()
        async with ctx as conn:
            reader = BookReader(conn, BTC)
            await _equal(emu, reader, depth=200)
            emu.public.faults.snapshot_next = 1
            _place(emu, _order(1, Side.BUY, "96000"))
            await _equal(emu, reader, depth=200)
            _place(emu, _order(2, Side.BUY, "95000"))
            await _equal(emu, reader, depth=200)
            await reader.stop()
    run(go())


def test_bybit_lost_delta_is_not_caught_by_ccxt() -> None:
    """ccxt 4.5's bybit checks neither ``u`` nor ``seq`` (the native connector resubscribes on
    a gap): a lost delta's level stays missing from ccxt's book. This records ccxt's
    behaviour."""
    async def go() -> None:
        emu, ctx = bybit()
        async with ctx as conn:
            reader = BookReader(conn, BTC)
            await _equal(emu, reader, depth=200)
            emu.public.faults.drop_next = 1
            _place(emu, _order(1, Side.BUY, "96000"))  # lost
            _place(emu, _order(2, Side.BUY, "95000"))  # its u shows the gap, to those who look
            await until(lambda: Decimal(95000) in reader.book.bids)
            assert Decimal(96000) not in reader.book.bids
            assert Decimal(96000) in exchange_book(emu.core.exchange, BTC, 200)[0]
            assert conn.md_feeds[BTC].resyncs == 0
            await reader.stop()
    run(go())


def test_bybit_disconnect_reconnects() -> None:
    async def go() -> None:
        emu, ctx = bybit()
        async with ctx as conn:
            reader = BookReader(conn, PERP)
            await _equal(emu, reader, PERP, depth=200)
            await emu.drop_streams()
            await until(lambda: reader.snapshots() == 2)
            _place(emu, _order(1, Side.BUY, "96000", symbol=PERP))
            await _equal(emu, reader, PERP, depth=200)
            await reader.stop()
    run(go())


# ---- ccxt's errors, on a scripted exchange -------------------------------------------------


class _Scripted:
    """watch_order_book answers what the test puts in ``queue``: a book (dict) or an exception
    to raise."""

    has = {"watchOrderBook": True}

    def __init__(self) -> None:
        self.queue: asyncio.Queue[Any] = asyncio.Queue()
        self.orderbooks: dict[str, Any] = {}

    async def watch_order_book(self, symbol: str, limit: int | None) -> Any:
        item = await self.queue.get()
        if isinstance(item, BaseException):
            raise item
        self.orderbooks[symbol] = item
        return item


def test_network_error_resyncs_and_exchange_error_ends_the_feed() -> None:
    async def go() -> None:
        ex = _Scripted()
        feed = CcxtBookFeed(ex, BTC, name="t", limit=None, contract_size=Decimal(1),
                            trades=False, reconnect_base_s=0.01, reconnect_cap_s=0.01)
        feeds: dict[str, CcxtBookFeed] = {}
        stream = run_book_feed(feed, feeds)
        book = {"bids": [[100.0, 1.0]], "asks": [[101.0, 2.0]], "timestamp": 1}
        ex.queue.put_nowait(book)
        snap = await anext(stream)
        assert isinstance(snap, BookSnapshot) and feeds == {BTC: feed}
        assert snap.bids == ((Decimal(100), Decimal(1)),) and snap.ts_ns == 1_000_000
        book["bids"] = [[100.0, 1.5]]  # ccxt changes its book in place
        ex.queue.put_nowait(book)
        upd = await anext(stream)
        assert isinstance(upd, BookUpdate) and upd.bids == ((Decimal(100), Decimal("1.5")),)
        assert upd.asks == ()
        # a lost connection: watched again, and the book that follows is a snapshot
        ex.queue.put_nowait(ccxt_async.NetworkError("connection lost"))
        ex.queue.put_nowait({"bids": [[99.0, 1.0]], "asks": [], "timestamp": 3})
        snap = await anext(stream)
        assert isinstance(snap, BookSnapshot) and feed.resyncs == 1
        assert snap.bids == ((Decimal(99), Decimal(1)),) and snap.asks == ()
        # the venue refuses: the feed ends, with the reason
        ex.queue.put_nowait(ccxt_async.BadSymbol('okx {"code":"60018"}'))
        assert [ev async for ev in stream] == []
        assert feed.ended is not None and "BadSymbol" in feed.ended and feeds == {}
    run(go())
