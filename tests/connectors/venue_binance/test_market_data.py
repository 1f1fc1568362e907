"""Binance public market data: :class:`DepthSync` against the sequences of "How to manage a local
order book correctly" (WebSocket Streams for Binance), the recorded payloads through their
schemas, and the connector against the emulator on loopback after each fault (gap, duplicate,
disconnect, slow snapshot with diffs meanwhile, slow consumer, refresh): the book rebuilt from
what ``market_data`` yields equals the emulator's, and the resynchronisations are counted."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest

from connectors.base import (
    BookSnapshot,
    BookUpdate,
    MarketEvent,
    OrderRequest,
    OrderType,
    PublicTrade,
    Side,
)
from connectors.binance import BinanceConnector
from connectors.binance import schemas as S
from connectors.binance.book import DepthSync, SyncState
from connectors.binance.market import MarketFeed
from emulators.binance import BinanceEmulator
from gateway.marketdata.book import Book
from gateway.marketdata.feeds import MarketData

from .helpers import running, wait_for

FIXTURES = Path(__file__).parent / "fixtures"
D = Decimal
SYM = "BTC/USDT"
VSYM = "BTCUSDT"


# ---- recorded payloads -----------------------------------------------------------------------


def test_recorded_payloads_parse() -> None:
    """The docs' examples: "Diff. Depth Stream", "Trade Streams", "Order book" (REST), and a
    combined stream's frame."""
    ev = S.MARKET_STREAM_EVENT.decode((FIXTURES / "ws_depth_update.json").read_bytes())
    assert isinstance(ev, S.DepthUpdate)
    assert (ev.s, ev.U, ev.u, ev.b, ev.a) == ("BNBBTC", 157, 160, [("0.0024", "10")],
                                              [("0.0026", "100")])
    frame = S.COMBINED_STREAM_EVENT.decode(
        (FIXTURES / "ws_combined_depth_update.json").read_bytes())
    assert frame.stream == "bnbbtc@depth@100ms" and frame.data == ev
    trade = S.MARKET_STREAM_EVENT.decode((FIXTURES / "ws_trade.json").read_bytes())
    assert isinstance(trade, S.PublicTradeEvent)
    # "m": "Is the buyer the market maker?" -- yes, so the seller was the aggressor
    assert trade.to_trade("BNB/BTC") == PublicTrade("BNB/BTC", D("0.001"), D("100"), Side.SELL,
                                                    "BNBBTC:12345", 1672515782136 * 1_000_000)
    snap = S.DEPTH_SNAPSHOT.decode((FIXTURES / "rest_depth.json").read_bytes())
    assert (snap.lastUpdateId, snap.bids, snap.asks) == (
        1027024, [("4.00000000", "431.00000000")], [("4.00000200", "12.00000000")])


# ---- DepthSync, no I/O -----------------------------------------------------------------------


def frame(first: int, last: int, bids: list[tuple[str, str]] | None = None,
          asks: list[tuple[str, str]] | None = None) -> bytes:
    return orjson.dumps({"stream": "bnbbtc@depth@100ms", "data": {
        "e": "depthUpdate", "E": 1672515782136, "s": "BNBBTC", "U": first, "u": last,
        "b": bids or [], "a": asks or []}})


def snapshot(last: int, bids: list[tuple[str, str]],
             asks: list[tuple[str, str]] | None = None) -> bytes:
    return orjson.dumps({"lastUpdateId": last, "bids": bids, "asks": asks or []})


def synced(last: int = 100, bids: list[tuple[str, str]] | None = None) -> DepthSync:
    sync = DepthSync("BNB/BTC")
    assert sync.wants_snapshot
    assert sync.snapshot(snapshot(last, bids or [("10", "1")], [("11", "1")]), 0)
    sync.take()
    return sync


def test_docs_example_buffered_event_straddles_the_snapshot() -> None:
    """The docs' event U=157, u=160 buffered; a snapshot at 158: the event is the first applied
    ("The first buffered event should now have lastUpdateId within its [U;u] range")."""
    sync = DepthSync("BNB/BTC")
    assert not sync.feed((FIXTURES / "ws_combined_depth_update.json").read_bytes())
    assert sync.buffered == 1 and sync.state is SyncState.WAITING and sync.take() == []
    assert sync.snapshot(snapshot(158, [("0.0024", "5"), ("0.0023", "7")], [("0.0026", "3")]),
                         7)
    assert (sync.update_id, sync.bids, sync.asks) == (
        160, {D("0.0024"): D("10"), D("0.0023"): D("7")}, {D("0.0026"): D("100")})
    [snap] = sync.take()
    assert snap == BookSnapshot("BNB/BTC", ((D("0.0024"), D("10")), (D("0.0023"), D("7"))),
                                ((D("0.0026"), D("100")),), 1672515782136 * 1_000_000)
    # then "Normally, U of the next event is equal to u + 1 of the previous event"
    assert not sync.feed(frame(161, 161, [("0.0023", "0")]))
    assert sync.take() == [BookUpdate("BNB/BTC", ((D("0.0023"), D("0")),), (),
                                      1672515782136 * 1_000_000)]


def test_buffered_events_the_snapshot_already_has_are_discarded() -> None:
    """"discard any event where u is <= lastUpdateId of the snapshot": applying the buffered
    event 101-105 over the snapshot at 107 would set bid 10 back to what it was before 106."""
    sync = DepthSync("BNB/BTC")
    sync.feed(frame(101, 105, [("10", "1")]))
    assert sync.snapshot(snapshot(107, [("10", "3")]), 0)
    assert sync.bids == {D("10"): D("3")} and sync.update_id == 107
    sync.feed(frame(106, 107, [("10", "3")]))  # arrives after the snapshot: ignored too
    assert sync.stats.duplicates == 1
    sync.feed(frame(108, 108, [("9", "2")]))
    assert sync.bids == {D("10"): D("3"), D("9"): D("2")} and sync.stats.resyncs == 0


def test_snapshot_older_than_the_buffer_is_fetched_again() -> None:
    """"If the lastUpdateId from the snapshot is strictly less than the U from step 2, go back
    to step 3": the buffer is kept for the next snapshot."""
    sync = DepthSync("BNB/BTC")
    sync.feed(frame(200, 201, [("10", "1")]))
    sync.feed(frame(202, 202, [("10", "2")]))
    assert not sync.snapshot(snapshot(150, [("10", "9"), ("8", "1")]), 0)
    assert sync.stats.stale_snapshots == 1 and sync.wants_snapshot and sync.buffered == 2
    assert sync.take() == [] and sync.bids == {}
    assert sync.snapshot(snapshot(201, [("10", "1"), ("8", "1")]), 0)
    assert sync.bids == {D("10"): D("2"), D("8"): D("1")} and sync.update_id == 202


def test_first_event_after_the_snapshot_must_cover_it() -> None:
    """No event buffered: the first one after the snapshot must have U <= lastUpdateId + 1; one
    that starts later means missed events: a new snapshot."""
    sync = DepthSync("BNB/BTC")
    assert sync.snapshot(snapshot(100, [("10", "1")]), 0)
    assert sync.feed(frame(103, 104, [("9", "1")]))
    assert sync.wants_snapshot and sync.stats.gaps == 1 and D("9") not in sync.bids


def test_gap_resynchronises_and_the_gap_event_waits_for_the_snapshot() -> None:
    """"If the event first update ID (U) is greater than the update ID of your local order
    book + 1, you have missed some events ... restart the process": the event is not applied
    (the book would then lack 103-104's changes), the owner is told to fetch a snapshot, which
    then replaces the book and is yielded again."""
    sync = synced(100)
    assert not sync.feed(frame(101, 102, [("10", "2")]))
    assert sync.feed(frame(105, 106, [("12", "1")], [("11", "0")]))  # 103-104 missed
    assert sync.stats.gaps == 1 and sync.stats.resyncs == 1 and sync.wants_snapshot
    assert sync.bids == {D("10"): D("2")} and sync.asks == {D("11"): D("1")}
    assert not sync.feed(frame(107, 107, [("13", "1")]))  # buffered meanwhile
    assert sync.snapshot(snapshot(105, [("10", "2"), ("12", "4")], [("11", "1"), ("14", "1")]),
                         0)
    assert sync.bids == {D("10"): D("2"), D("12"): D("1"), D("13"): D("1")}
    assert sync.asks == {D("14"): D("1")} and sync.update_id == 107
    [snap] = sync.take()  # the changes before the gap are in it
    assert isinstance(snap, BookSnapshot) and dict(snap.bids) == sync.bids


def test_duplicates_and_late_events_are_ignored_not_gaps() -> None:
    """"If the event last update ID (u) is less than the update ID of your local order book,
    ignore the event": a late copy of 101-102 would set bid 10 back to 1."""
    sync = synced(100)
    sync.feed(frame(101, 102, [("10", "1")]))
    sync.feed(frame(101, 102, [("10", "1")]))
    sync.feed(frame(103, 103, [("10", "2")]))
    assert not sync.feed(frame(101, 102, [("10", "1")]))
    assert sync.bids[D("10")] == D("2")
    assert sync.stats.duplicates == 2 and sync.stats.gaps == 0 and sync.stats.resyncs == 0


def test_deleting_an_absent_level_is_not_an_error() -> None:
    sync = synced(100)
    assert not sync.feed(frame(101, 101, [("7", "0.000")], [("99", "0")]))
    assert sync.bids == {D("10"): D("1")} and sync.asks == {D("11"): D("1")}
    assert sync.update_id == 101 and sync.take() == []  # nothing the reader has changed
    sync.feed(frame(102, 102, [("10", "0")]))
    assert sync.take() == [BookUpdate("BNB/BTC", ((D("10"), D("0")),), (),
                                      1672515782136 * 1_000_000)]


def test_buffered_events_with_a_gap_need_another_snapshot() -> None:
    sync = DepthSync("BNB/BTC")
    sync.feed(frame(101, 102, [("10", "1")]))
    sync.feed(frame(105, 105, [("10", "5")]))  # 103-104 never came
    assert not sync.snapshot(snapshot(100, [("10", "0.5")]), 0)
    assert sync.wants_snapshot and sync.stats.gaps == 1 and sync.take() == []
    assert sync.snapshot(snapshot(106, [("10", "6")]), 0)
    assert sync.bids == {D("10"): D("6")}


def test_a_slow_reader_gets_the_net_change_of_each_level() -> None:
    """Frames are applied as they come; the reader's next take has one update with each level's
    latest size, whatever the number of frames (memory bounded by the book's levels)."""
    sync = synced(100)
    for i in range(1000):
        sync.feed(frame(101 + i, 101 + i, [("10", str(i + 1)), (str(20 + i % 3), "1")]))
    assert sync.unread == 4 and sync.stats.resyncs == 0
    [up] = sync.take()
    assert isinstance(up, BookUpdate)
    assert dict(up.bids) == {D("10"): D("1000"), D("20"): D("1"), D("21"): D("1"),
                             D("22"): D("1")}
    assert sync.take() == []


def test_refresh_replaces_the_book() -> None:
    """A periodic new snapshot: levels it does not have are gone (they may have been stale)."""
    sync = synced(100, [("10", "1"), ("9", "1")])
    assert sync.refresh() and sync.wants_snapshot and sync.stats.refreshes == 1
    assert not sync.refresh()  # already waiting
    sync.feed(frame(101, 101, [("8", "1")]))
    assert sync.snapshot(snapshot(100, [("10", "1")]), 5)
    assert sync.bids == {D("10"): D("1"), D("8"): D("1")} and sync.stats.resyncs == 1
    [snap] = sync.take()
    assert isinstance(snap, BookSnapshot) and dict(snap.bids) == sync.bids


def test_a_snapshot_not_asked_for_is_our_bug() -> None:
    sync = synced(100)
    with pytest.raises(RuntimeError):
        sync.snapshot(snapshot(101, []), 0)


def test_trades_and_raw_streams() -> None:
    sync = DepthSync("BNB/BTC", combined=False, max_trades=2)
    raw = (FIXTURES / "ws_trade.json").read_bytes()
    for _ in range(3):
        sync.feed(raw)
    out = sync.take()
    assert [type(e) for e in out] == [PublicTrade, PublicTrade]
    assert sync.stats.dropped_trades == 1
    sync.feed((FIXTURES / "ws_depth_update.json").read_bytes())
    assert sync.buffered == 1


# ---- the connector against the emulator ------------------------------------------------------


class Reader:
    """``conn.market_data(symbol)`` read in the background into a gateway :class:`Book`; it
    stops after each event while ``gate`` is clear (a slow consumer)."""

    def __init__(self, conn: BinanceConnector, symbol: str = SYM) -> None:
        self.book = Book("binance", symbol)
        self.events: list[MarketEvent] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.task = asyncio.get_running_loop().create_task(self._run(conn, symbol))

    async def _run(self, conn: BinanceConnector, symbol: str) -> None:
        async for ev in conn.market_data(symbol):
            self.events.append(ev)
            if not isinstance(ev, PublicTrade):
                self.book.apply(ev)
            await self.gate.wait()

    async def stop(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


def feed_of(conn: BinanceConnector, symbol: str = SYM) -> MarketFeed:
    return next(f for f in conn.market_feeds if f.symbol == symbol)


def buy(coid: str, price: str, qty: str = "0.01") -> OrderRequest:
    return OrderRequest(coid, SYM, Side.BUY, OrderType.LIMIT, D(qty), D(price))


def same_book(reader: Reader, emu: BinanceEmulator) -> bool:
    bids, asks = emu.market.levels(VSYM)
    return reader.book.bids == bids and reader.book.asks == asks


async def settle(conn: BinanceConnector, reader: Reader, marker: str) -> None:
    """A last change (a bid at ``marker``), then wait until the reader has it: every event sent
    before it has been dealt with, so the reader's book can be compared with the emulator's at
    once (no waiting for a match that a wrong book could pass on its way)."""
    await conn.place(buy(f"mk{marker.replace('.', '')}", marker))
    await wait_for(lambda: D(marker) in reader.book.bids
                   and feed_of(conn).sync.state is SyncState.SYNCED)


@contextlib.asynccontextmanager
async def watching(**kw: Any) -> AsyncIterator[tuple[BinanceEmulator, BinanceConnector, Reader]]:
    async with running(**kw) as (emu, conn, _):
        emu.market.ping_s = 1.0  # well within the connector's idle timeout
        reader = Reader(conn)
        try:
            yield emu, conn, reader
        finally:
            await reader.stop()


def test_capability_and_first_snapshot() -> None:
    async def main() -> None:
        async with watching() as (emu, conn, reader):
            assert conn.capabilities.market_data
            await wait_for(lambda: reader.book.synced)
            assert isinstance(reader.events[0], BookSnapshot) and same_book(reader, emu)
            assert emu.market.depth_requests == 1 and ("GET", "/stream") in emu.core.requests
            emu.core.tick()  # the market moves: many levels
            emu.core.tick()
            await settle(conn, reader, "90000")
            assert same_book(reader, emu)
            stats = feed_of(conn).sync.stats
            assert (stats.snapshots, stats.resyncs, stats.gaps) == (1, 0, 0)
    asyncio.run(main())


def test_gap_resynchronises() -> None:
    """A depth event is lost (its ids skipped): the next one shows the gap, a new snapshot is
    fetched and yielded. Without the U check the 95000 bid would be missing for good."""
    async def main() -> None:
        async with watching() as (emu, conn, reader):
            await wait_for(lambda: reader.book.synced)
            emu.market.faults.gap_next = 1
            await conn.place(buy("gap1", "95000"))
            await settle(conn, reader, "90000")
            assert reader.book.bids[D("95000")] == D("0.01") and same_book(reader, emu)
            stats = feed_of(conn).sync.stats
            assert (stats.gaps, stats.resyncs, stats.snapshots) == (1, 1, 2)
            assert reader.book.snapshots == 2 and emu.market.depth_requests == 2
    asyncio.run(main())


def test_duplicates_are_ignored() -> None:
    """An event twice in a row, then a late copy of an earlier one: both ignored (counted), no
    resync. Applying the late copy would set the 95000 bid back to 0.01."""
    async def main() -> None:
        async with watching() as (emu, conn, reader):
            await wait_for(lambda: reader.book.synced)
            emu.market.faults.duplicate_next = 1
            await conn.place(buy("dup1", "95000"))
            emu.market.faults.replay_previous_next = 1
            await conn.place(buy("dup2", "95000", "0.02"))
            await settle(conn, reader, "90000")
            assert reader.book.bids[D("95000")] == D("0.03") and same_book(reader, emu)
            stats = feed_of(conn).sync.stats
            assert (stats.duplicates, stats.gaps, stats.resyncs) == (2, 0, 0)
            assert reader.book.snapshots == 1
    asyncio.run(main())


def test_disconnect_resynchronises() -> None:
    """The stream is cut and what happens meanwhile is lost: the new connection starts with a
    new snapshot."""
    async def main() -> None:
        async with watching() as (emu, conn, reader):
            await wait_for(lambda: reader.book.synced)
            feed = feed_of(conn)
            assert await emu.market.drop_streams() == 1
            await conn.place(buy("dis1", "95000"))
            emu.core.tick()
            await wait_for(lambda: feed.stream.connects == 2 and reader.book.snapshots == 2)
            await settle(conn, reader, "90000")
            assert D("95000") in reader.book.bids and same_book(reader, emu)
            assert (feed.sync.stats.reconnects, feed.sync.stats.resyncs) == (2, 1)
    asyncio.run(main())


def test_diffs_during_a_slow_snapshot_are_applied_after_it() -> None:
    """The snapshot is taken, its answer held while diffs keep flowing: they are buffered and
    applied after it (hummingbot #1926 dropped them: the first diff after the snapshot would
    then show a gap, and the book a resync)."""
    async def main() -> None:
        async with running() as (emu, conn, _):
            emu.market.ping_s = 1.0
            held = asyncio.Event()
            emu.market.faults.hold_depth_after = held
            reader = Reader(conn)
            try:
                await wait_for(lambda: emu.market.depth_taken == 1)
                await conn.place(buy("slow1", "95000"))
                emu.core.tick()
                feed = feed_of(conn)
                await wait_for(lambda: feed.sync.buffered >= 2)
                assert not reader.events
                held.set()
                await wait_for(lambda: reader.book.synced)
                assert D("95000") in reader.book.bids
                await settle(conn, reader, "90000")
                assert same_book(reader, emu)
                stats = feed.sync.stats
                assert (stats.snapshots, stats.resyncs, stats.gaps, stats.stale_snapshots) == (
                    1, 0, 0, 0)
            finally:
                await reader.stop()
    asyncio.run(main())


def test_diffs_before_a_slow_snapshot_are_discarded() -> None:
    """The request waits before the snapshot is taken: what was buffered until then is in it
    (u <= lastUpdateId) and discarded."""
    async def main() -> None:
        async with running() as (emu, conn, _):
            emu.market.ping_s = 1.0
            held = asyncio.Event()
            emu.market.faults.hold_depth_before = held
            reader = Reader(conn)
            try:
                await wait_for(lambda: emu.market.depth_requests == 1)
                await conn.place(buy("early1", "95000"))
                emu.core.tick()
                feed = feed_of(conn)
                await wait_for(lambda: feed.sync.buffered >= 2)
                held.set()
                await wait_for(lambda: reader.book.synced)
                assert feed.sync.buffered == 0
                await settle(conn, reader, "90000")
                assert same_book(reader, emu) and feed.sync.stats.resyncs == 0
            finally:
                await reader.stop()
    asyncio.run(main())


def test_slow_consumer_gets_coalesced_updates_without_gaps() -> None:
    """The consumer stops reading; the feed keeps reading the socket into the book (ccxt
    #15130, #17827: a feed read only on demand falls behind into gaps); when the consumer reads
    again it gets the net change, not the backlog."""
    async def main() -> None:
        async with watching() as (emu, conn, reader):
            await wait_for(lambda: reader.book.synced)
            feed = feed_of(conn)
            reader.gate.clear()
            await conn.place(buy("sc0", "95000"))
            await wait_for(lambda: len(reader.events) == 2)  # holds the 95000 update
            for i in range(200):
                emu.core.tick()
                if i % 50 == 0:
                    await conn.place(buy(f"sc{i + 1}", str(94000 - i)))
            await wait_for(lambda: feed.sync.update_id == emu.market.published[VSYM].update_id)
            assert len(reader.events) == 2  # it read nothing meanwhile
            sync, seen = feed.sync, reader.book
            assert sync.stats.messages >= 200
            # what waits is bounded by the two books, not by the 200 messages' levels
            assert sync.unread <= len(sync.bids) + len(sync.asks) + len(seen.bids) + len(
                seen.asks)
            reader.gate.set()
            await settle(conn, reader, "90000")
            assert same_book(reader, emu)
            assert len(reader.events) <= 5  # snapshot, 95000, the net change, the marker
            stats = feed.sync.stats
            assert (stats.resyncs, stats.gaps, stats.snapshots) == (0, 0, 1)
    asyncio.run(main())


def test_periodic_refresh() -> None:
    async def main() -> None:
        async with watching(book_refresh_s=0.2) as (emu, conn, reader):
            await wait_for(lambda: reader.book.snapshots >= 3)
            stats = feed_of(conn).sync.stats
            assert stats.refreshes >= 2 and stats.gaps == 0
            await settle(conn, reader, "90000")
            assert same_book(reader, emu)
    asyncio.run(main())


def test_public_trades() -> None:
    """Our resting buy is hit by an outside seller: the buyer was the maker (``m`` true), the
    seller aggressed."""
    async def main() -> None:
        async with watching() as (emu, conn, reader):
            await wait_for(lambda: reader.book.synced)
            await conn.place(buy("tr1", "96000", "0.02"))
            emu.core.trade_against(SYM, Side.SELL, D("5.01"), D("96000"))
            trades = await wait_for(lambda: [e for e in reader.events
                                             if isinstance(e, PublicTrade)])
            [t] = trades
            assert (t.symbol, t.price, t.size, t.aggressor) == (SYM, D("96000"), D("0.01"),
                                                                Side.SELL)
            assert t.trade_id.startswith("BTCUSDT:")
            await settle(conn, reader, "90000")
            assert same_book(reader, emu)
    asyncio.run(main())


def test_rest_depth_limit_weight_and_feed_end_on_close() -> None:
    async def main() -> None:
        async with running(book_depth=5) as (emu, conn, _):
            before = emu.limits.weight_used
            snap = S.DEPTH_SNAPSHOT.decode(await conn._depth(VSYM))
            assert len(snap.bids) == len(snap.asks) == 5
            assert emu.limits.weight_used - before == 5  # "Order book": limit 1-100, weight 5
            assert snap.lastUpdateId == emu.market.published[VSYM].update_id
            bids, _asks = emu.market.levels(VSYM)
            assert [D(p) for p, _ in snap.bids] == sorted(bids, reverse=True)[:5]
            events: list[MarketEvent] = []

            async def read() -> None:
                async for ev in conn.market_data(SYM):
                    events.append(ev)

            task = asyncio.get_running_loop().create_task(read())
            await wait_for(lambda: events)
            await conn.close()  # the feed ends with the connector
            await asyncio.wait_for(task, 5)
            assert not conn.market_feeds
    asyncio.run(main())


def test_the_gateway_keeps_the_binance_book() -> None:
    """gateway/marketdata over the Binance connector: the watched book follows the emulator's."""
    async def main() -> None:
        async with running() as (emu, conn, _):
            emu.market.ping_s = 1.0
            md = MarketData({"binance": conn})
            changes: list[int] = []

            class Watch:
                def book_changed(self, book: Book, trades: Sequence[PublicTrade]) -> None:
                    changes.append(len(trades))

            try:
                book = await md.watch("binance", SYM, Watch())
                assert book.synced and changes
                await conn.place(buy("gw1", "95000"))
                emu.core.tick()
                await conn.place(buy("gw2", "90000"))
                await wait_for(lambda: D("90000") in book.bids)
                bids, asks = emu.market.levels(VSYM)
                assert (book.bids, book.asks) == (bids, asks)
            finally:
                await md.close()
    asyncio.run(main())
