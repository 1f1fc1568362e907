"""Bybit public market data: the ``orderbook`` sync rules (sans-I/O, on hand-made messages and
the documented example) and the connector's feed against the emulator's public WebSockets on
loopback, where after each injected fault the book rebuilt from the yielded events equals the
emulator's own book."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

from venue_common.mdsupport import BookReader, exchange_book

from connectors.base import BookSnapshot, BookUpdate, OrderRequest, OrderType, Side
from connectors.bybit.book import BookSync
from connectors.common.marketfeed import Applied, OutOfSync, Traded
from emulators.bybit import BybitEmulator

from .helpers import Pair, pair, run, wait_until

FIXTURES = Path(__file__).parent / "fixtures"
BTC = "BTC/USDT"
PERP = "BTC/USDT:USDT"


# ---- the sync rules, sans-I/O --------------------------------------------------------------


def _msg(kind: str, bids: list[list[str]], asks: list[list[str]], u: int,
         symbol: str = "BTCUSDT") -> bytes:
    return json.dumps({"topic": f"orderbook.50.{symbol}", "type": kind, "ts": 1672304484978,
                       "data": {"s": symbol, "b": bids, "a": asks, "u": u, "seq": 7961638724},
                       "cts": 1672304484976}).encode()


def test_fixtures_parse() -> None:
    sync = BookSync(BTC, "BTCUSDT")
    out = sync.receive((FIXTURES / "ws_orderbook_snapshot.json").read_bytes())
    assert isinstance(out, Applied) and out.snapshot and sync.u == 18521288
    assert sync.levels()[0][0] == (Decimal("16493.50"), Decimal("0.006"))
    trades = sync.receive((FIXTURES / "ws_public_trade.json").read_bytes())
    assert isinstance(trades, Traded)
    (t,) = trades.trades
    assert (t.price, t.size, t.aggressor) == (Decimal("16578.50"), Decimal("0.001"), Side.BUY)
    assert t.trade_id == "20f43950-d8dd-5b31-9112-a178eb6023af"
    assert sync.receive(b'{"success":true,"ret_msg":"pong","conn_id":"0970e817","op":"ping"}'
                        ) is None


def test_delta_u_continuity_gap_and_duplicate() -> None:
    sync = BookSync(BTC, "BTCUSDT")
    sync.receive(_msg("snapshot", [["100", "1"]], [["101", "1"]], 10))
    out = sync.receive(_msg("delta", [["100", "2"]], [["101", "0"], ["105", "0"]], 11))
    assert isinstance(out, Applied) and not out.snapshot  # 105 absent: deleting is fine
    assert sync.levels() == (((Decimal(100), Decimal(2)),), ())
    assert sync.receive(_msg("delta", [["100", "9"]], [], 11)) is None  # a repeat
    assert sync.duplicates == 1 and sync.levels()[0] == ((Decimal(100), Decimal(2)),)
    out = sync.receive(_msg("delta", [["99", "1"]], [], 13))  # 12 was lost
    assert isinstance(out, OutOfSync) and sync.resyncs == 1 and sync.gaps == 1
    assert not sync.synced and sync.receive(_msg("delta", [["98", "1"]], [], 14)) is None
    assert sync.resyncs == 1  # no gap loop while waiting for the snapshot
    out = sync.receive(_msg("snapshot", [["97", "1"]], [], 40))
    assert isinstance(out, Applied) and out.snapshot and sync.synced
    assert isinstance(sync.receive(_msg("delta", [["97", "2"]], [], 41)), Applied)


def test_new_snapshot_replaces_and_u_1_restarts() -> None:
    sync = BookSync(BTC, "BTCUSDT")
    sync.receive(_msg("snapshot", [["100", "1"], ["99", "1"]], [["101", "1"]], 10))
    out = sync.receive(_msg("snapshot", [["98", "1"]], [["102", "1"]], 11))
    assert isinstance(out, Applied) and out.snapshot
    assert sync.levels() == (((Decimal(98), Decimal(1)),), ((Decimal(102), Decimal(1)),))
    out = sync.receive(_msg("snapshot", [["97", "1"]], [], 1))  # service restart
    assert isinstance(out, Applied) and sync.u == 1 and sync.levels()[0] == (
        (Decimal(97), Decimal(1)),)
    assert isinstance(sync.receive(_msg("delta", [["97", "3"]], [], 2)), Applied)
    assert sync.resyncs == 0 and sync.snapshots == 3


# ---- against the emulator ------------------------------------------------------------------


def _order(n: int, side: Side, price: str, qty: str = "0.01", symbol: str = BTC
           ) -> OrderRequest:
    return OrderRequest(f"md{n}", symbol, side, OrderType.LIMIT, Decimal(qty), Decimal(price))


def _place(emu: BybitEmulator, req: OrderRequest) -> None:
    emu.core.run(lambda now: emu.core.exchange.place(req, now))


def _cancel(emu: BybitEmulator, symbol: str, cid: str) -> None:
    emu.core.run(lambda now: emu.core.exchange.cancel(symbol, cid, now))


async def _equal(p: Pair, reader: BookReader, symbol: str = BTC) -> None:
    await wait_until(lambda: reader.book.synced and reader.levels() == exchange_book(
        p.core.exchange, symbol, 50), what="the books to agree")


def _feed(p: Pair, symbol: str = BTC) -> Any:
    return p.connector.md_feeds[symbol]


def test_book_and_trades_from_the_emulator() -> None:
    async def go() -> None:
        async with pair() as p:
            reader = BookReader(p.connector, BTC)
            await _equal(p, reader)
            for n, price in enumerate(("96000", "96000.5", "95999")):
                _place(p.emulator, _order(n, Side.BUY, price))
                await _equal(p, reader)
            _place(p.emulator, _order(9, Side.SELL, "90000", "0.02"))  # crosses the bid
            await wait_until(lambda: reader.trades, what="a trade")
            assert reader.trades[0].aggressor is Side.SELL
            await _equal(p, reader)
            assert _feed(p).resyncs == 0 and reader.snapshots() == 1
            await reader.stop()
    run(go())


def test_gap_resubscribes_and_the_book_is_right_again() -> None:
    async def go() -> None:
        async with pair() as p:
            reader = BookReader(p.connector, BTC)
            await _equal(p, reader)
            p.emulator.public.faults.drop_next = 1
            _place(p.emulator, _order(1, Side.BUY, "96000"))  # lost
            _place(p.emulator, _order(2, Side.BUY, "95000"))  # its u shows the gap
            await _equal(p, reader)
            feed = _feed(p)
            assert feed.resyncs == 1 and feed.sync.gaps == 1
            assert p.emulator.public.unsubscribes == 1 and reader.snapshots() == 2
            await reader.stop()
    run(go())


def test_duplicates_are_dropped() -> None:
    async def go() -> None:
        async with pair() as p:
            reader = BookReader(p.connector, BTC)
            await _equal(p, reader)
            p.emulator.public.faults.duplicate_next = 2
            _place(p.emulator, _order(1, Side.BUY, "96000"))
            _place(p.emulator, _order(2, Side.BUY, "96001"))
            _place(p.emulator, _order(3, Side.SELL, "99000"))
            await _equal(p, reader)
            feed = _feed(p)
            await wait_until(lambda: feed.sync.duplicates == 2, what="2 duplicates")
            assert feed.resyncs == 0 and reader.snapshots() == 1
            await reader.stop()
    run(go())


def test_new_snapshot_mid_stream_replaces_the_book() -> None:
    async def go() -> None:
        async with pair() as p:
            _place(p.emulator, _order(1, Side.BUY, "96000"))
            reader = BookReader(p.connector, BTC)
            await _equal(p, reader)
            assert Decimal(96000) in reader.book.bids
            # the level's removal comes only as a new snapshot: merging it would keep 96000
            p.emulator.public.faults.snapshot_next = 1
            _cancel(p.emulator, BTC, "md1")
            await _equal(p, reader)
            # and after a service restart (u = 1), the deltas count on from 1
            p.emulator.public.faults.snapshot_next = 1
            p.emulator.public.faults.restart = True
            _place(p.emulator, _order(2, Side.BUY, "95000"))
            _place(p.emulator, _order(3, Side.BUY, "95001"))
            await _equal(p, reader)
            feed = _feed(p)
            assert feed.sync.u == 2 and feed.resyncs == 0 and feed.sync.snapshots == 3
            await reader.stop()
    run(go())


def test_disconnect_reconnects_with_a_new_snapshot_linear() -> None:
    async def go() -> None:
        async with pair() as p:
            reader = BookReader(p.connector, PERP)
            await _equal(p, reader, PERP)
            feed = _feed(p, PERP)
            await p.emulator.drop_streams()
            await wait_until(lambda: feed.stream.connects == 2 and reader.snapshots() == 2,
                             what="a reconnect and a new snapshot")
            _place(p.emulator, _order(1, Side.BUY, "96000", symbol=PERP))
            await _equal(p, reader, PERP)
            assert feed.resyncs == 0
            assert ("GET", "/v5/public/linear") in p.core.requests
            await reader.stop()
    run(go())


def test_slow_consumer_gets_the_net_change_without_a_gap_loop() -> None:
    async def go() -> None:
        async with pair() as p:
            stream = p.connector.market_data(BTC)
            first = await anext(stream)
            assert isinstance(first, BookSnapshot)
            feed = _feed(p)
            # the consumer reads nothing while 30 changes happen; 5 of them are undone
            for n in range(30):
                _place(p.emulator, _order(n, Side.BUY, str(96900 - n)))
            for n in range(5):
                _cancel(p.emulator, BTC, f"md{n}")
            await wait_until(lambda: feed.sync.u == p.emulator.public.last_u(BTC),
                             what="the socket read to the end")
            assert p.emulator.public.deltas_sent == 35 and feed.resyncs == 0
            nxt = await anext(stream)  # one update: the net change of each level
            assert isinstance(nxt, BookUpdate)
            bids = dict(first.bids)
            bids.update(nxt.bids)
            bids = {px: q for px, q in bids.items() if q}
            assert bids == exchange_book(p.core.exchange, BTC, 50)[0]
            await stream.aclose()
            assert BTC not in p.connector.md_feeds
    run(go())
