"""OKX public market data: the ``books`` sync rules (sans-I/O, on hand-made messages and the
docs-v5 checksum examples) and the connector's feed against the emulator's public WebSocket on
loopback, where after each injected fault the book rebuilt from the yielded events equals the
emulator's own book."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

from venue_common.mdsupport import BookReader, exchange_book

from connectors.base import BookSnapshot, BookUpdate, OrderRequest, OrderType, Side
from connectors.common.marketfeed import Applied, Conflation, OutOfSync, Traded
from connectors.okx import schemas
from connectors.okx.book import BookSync, checksum_text, signed_crc32
from connectors.okx.connector import OkxConnector
from emulators.okx import OkxEmulator

from .helpers import run, venue, wait_for

FIXTURES = Path(__file__).parent / "fixtures"
BTC = "BTC/USDT"


# ---- the sync rules, sans-I/O --------------------------------------------------------------


def _msg(action: str, bids: list[list[str]], asks: list[list[str]], prev: int, seq: int,
         checksum: int = 0, inst: str = "BTC-USDT") -> bytes:
    data = {"asks": [a + ["0", "1"] for a in asks], "bids": [b + ["0", "1"] for b in bids],
            "ts": "1597026383085", "checksum": checksum, "prevSeqId": prev, "seqId": seq}
    return json.dumps({"arg": {"channel": "books", "instId": inst}, "action": action,
                       "data": [data]}).encode()


def test_checksum_of_the_docs_examples() -> None:
    # docs-v5 "Order book channel / Checksum": both examples and their check strings; the
    # values are the documented pushes' checksums (signed 32-bit)
    text = checksum_text([("3366.1", "7"), ("3366", "6")], [("3366.8", "9"), ("3368", "8")])
    assert text == "3366.1:7:3366.8:9:3366:6:3368:8"
    assert signed_crc32(text) == -1881014294
    text = checksum_text([("3366.1", "7")], [("3366.8", "9"), ("3368", "8"), ("3372", "8")])
    assert text == "3366.1:7:3366.8:9:3368:8:3372:8"
    assert signed_crc32(text) == 831078360


def test_snapshot_checksum_verified_with_strings_as_sent() -> None:
    sync = BookSync(BTC, "BTC-USDT")
    good = _msg("snapshot", [["3366.1", "7"], ["3366", "6"]], [["3366.8", "9"], ["3368", "8"]],
                -1, 10, checksum=-1881014294)
    out = sync.receive(good)
    assert isinstance(out, Applied) and out.snapshot and sync.synced
    assert sync.checksums_verified == 1 and sync.resyncs == 0
    # the same book written "3366.10": another check string, so another checksum
    sync2 = BookSync(BTC, "BTC-USDT")
    out = sync2.receive(_msg("snapshot", [["3366.10", "7"], ["3366", "6"]],
                             [["3366.8", "9"], ["3368", "8"]], -1, 10, checksum=-1881014294))
    assert isinstance(out, OutOfSync) and sync2.resyncs == 1 and not sync2.synced


def test_update_in_sequence_then_gap_then_new_snapshot() -> None:
    sync = BookSync(BTC, "BTC-USDT")
    assert isinstance(sync.receive(_msg("snapshot", [["100", "1"]], [["101", "1"]], -1, 5)),
                      Applied)
    out = sync.receive(_msg("update", [["100", "2"], ["99", "3"]], [["101", "0"]], 5, 9))
    assert isinstance(out, Applied) and not out.snapshot
    assert out.bids == [(Decimal(100), Decimal(2)), (Decimal(99), Decimal(3))]
    assert out.asks == [(Decimal(101), Decimal(0))]
    assert sync.levels() == (((Decimal(100), Decimal(2)), (Decimal(99), Decimal(3))), ())
    # prevSeqId 12 after seqId 9: messages were lost
    out = sync.receive(_msg("update", [["98", "1"]], [], 12, 14))
    assert isinstance(out, OutOfSync) and sync.resyncs == 1 and sync.gaps == 1
    assert not sync.synced and sync.levels() == ((), ())
    # until the new snapshot, updates are ignored (no second resync: no gap loop)
    assert sync.receive(_msg("update", [["97", "1"]], [], 14, 15)) is None
    assert sync.resyncs == 1
    out = sync.receive(_msg("snapshot", [["97", "1"]], [["102", "1"]], -1, 20))
    assert isinstance(out, Applied) and out.snapshot and sync.synced


def test_snapshot_prev_minus_one_and_checksum_zero_keep_the_stream() -> None:
    # prevSeqId -1 on a snapshot is no gap; checksum 0 (OKX's deprecation) is not verified
    sync = BookSync(BTC, "BTC-USDT")
    assert isinstance(sync.receive(_msg("snapshot", [["100", "1"]], [["101", "1"]], -1, 5, 0)),
                      Applied)
    for prev, seq in ((5, 6), (6, 7), (7, 8)):
        out = sync.receive(_msg("update", [["100", str(seq)]], [], prev, seq, 0))
        assert isinstance(out, Applied)
    assert sync.synced and sync.resyncs == 0 and sync.checksums_verified == 0


def test_no_update_heartbeat_and_sequence_reset() -> None:
    # docs-v5: "No update: prevSeqId = seqId" with empty sides; after a sequence reset
    # (maintenance) seqId < prevSeqId, prevSeqId still the last seqId
    sync = BookSync(BTC, "BTC-USDT")
    sync.receive(_msg("snapshot", [["100", "1"]], [["101", "1"]], -1, 5))
    out = sync.receive(_msg("update", [], [], 5, 5))
    assert isinstance(out, Applied) and not out.bids and not out.asks
    out = sync.receive(_msg("update", [], [], 5, 5))
    assert isinstance(out, Applied)
    out = sync.receive(_msg("update", [["100", "4"]], [], 5, 2))
    assert isinstance(out, Applied) and sync.seq_id == 2
    assert isinstance(sync.receive(_msg("update", [["100", "5"]], [], 2, 3)), Applied)
    assert sync.resyncs == 0


def test_duplicate_dropped_absent_level_deleted_and_other_instruments_ignored() -> None:
    sync = BookSync(BTC, "BTC-USDT")
    sync.receive(_msg("snapshot", [["100", "1"]], [["101", "1"]], -1, 5))
    upd = _msg("update", [["100", "2"]], [["105", "0"]], 5, 6)  # 105 is not in the book
    assert isinstance(sync.receive(upd), Applied)
    assert sync.receive(upd) is None and sync.duplicates == 1 and sync.resyncs == 0
    assert sync.receive(_msg("update", [["1", "1"]], [], 77, 78, inst="ETH-USDT")) is None
    assert sync.receive(b"pong") is None
    assert sync.receive(b'{"event":"subscribe","arg":{"channel":"books","instId":"BTC-USDT"}'
                        b',"connId":"a4d3ae55"}') is None
    assert sync.levels() == (((Decimal(100), Decimal(2)),), ((Decimal(101), Decimal(1)),))


def test_bad_checksum_on_an_update_resyncs() -> None:
    sync = BookSync(BTC, "BTC-USDT")
    sync.receive(_msg("snapshot", [["3366.1", "7"]], [["3366.8", "9"], ["3368", "8"]], -1, 1))
    right = _msg("update", [], [["3372", "8"]], 1, 2, checksum=831078360)
    assert isinstance(sync.receive(right), Applied) and sync.checksums_verified == 1
    wrong = _msg("update", [["3366.1", "6"]], [], 2, 3, checksum=831078360)
    out = sync.receive(wrong)
    assert isinstance(out, OutOfSync) and sync.checksum_failures == 1 and sync.resyncs == 1


def test_swap_sizes_are_contracts_times_ct_val_and_trades_have_the_taker_side() -> None:
    sync = BookSync("BTC/USDT:USDT", "BTC-USDT-SWAP", Decimal("0.01"))
    out = sync.receive(_msg("snapshot", [["100", "3"]], [], -1, 1, inst="BTC-USDT-SWAP"))
    assert isinstance(out, Applied) and out.bids == [(Decimal(100), Decimal("0.03"))]
    assert sync.levels()[0] == ((Decimal(100), Decimal("0.03")),)
    trades = BookSync(BTC, "BTC-USDT").receive((FIXTURES / "ws_trades.json").read_bytes())
    assert isinstance(trades, Traded)
    (t,) = trades.trades
    assert (t.price, t.size, t.aggressor, t.trade_id) == (
        Decimal("42219.9"), Decimal("0.12060306"), Side.BUY, "130639474")


def test_fixtures_parse() -> None:
    push = schemas.PUBLIC.decode((FIXTURES / "ws_books_snapshot.json").read_bytes())
    assert push.arg is not None and (push.arg.channel, push.action) == ("books", "snapshot")
    (data,) = schemas.BOOK_DATA.decode(push.data)
    assert data.prevSeqId == -1 and data.seqId == 123456 and data.asks[0][0] == "8476.98"
    sync = BookSync("BTC/USDT", "BTC-USDT")
    assert isinstance(sync.receive((FIXTURES / "ws_books_snapshot.json").read_bytes()), Applied)
    assert isinstance(sync.receive((FIXTURES / "ws_books_update.json").read_bytes()), Applied)
    assert sync.checksums_verified == 2 and sync.seq_id == 123457


def test_conflation_gives_a_lagging_reader_the_net_change_bounded() -> None:
    sync = BookSync(BTC, "BTC-USDT")
    c = Conflation(BTC, max_levels=10)
    c.applied(_applied(sync.receive(_msg("snapshot", [["100", "1"]], [], -1, 1))))
    first = c.take(sync)
    assert [type(e) for e in first] == [BookSnapshot]
    for seq in range(2, 7):  # the same level five times, another one added and removed
        c.applied(_applied(sync.receive(_msg("update", [["100", str(seq)]], [], seq - 1, seq))))
    c.applied(_applied(sync.receive(_msg("update", [["99", "1"]], [], 6, 7))))
    c.applied(_applied(sync.receive(_msg("update", [["99", "0"]], [], 7, 8))))
    (upd,) = c.take(sync)
    assert isinstance(upd, BookUpdate)
    assert dict(upd.bids) == {Decimal(100): Decimal(6), Decimal(99): Decimal(0)}
    # more changed levels than the bound: the next read is a snapshot of the book
    bids = [[str(200 + i), "1"] for i in range(20)]
    c.applied(_applied(sync.receive(_msg("update", bids, [], 8, 9))))
    assert not c.bids and c.snapshot_due
    (snap,) = c.take(sync)
    assert isinstance(snap, BookSnapshot) and len(snap.bids) == 21


def _applied(out: object) -> Applied:
    assert isinstance(out, Applied)
    return out


# ---- against the emulator ------------------------------------------------------------------


def _order(n: int, side: Side, price: str, qty: str = "0.01", symbol: str = BTC
           ) -> OrderRequest:
    return OrderRequest(f"md{n}", symbol, side, OrderType.LIMIT, Decimal(qty), Decimal(price))


def _place(emu: OkxEmulator, req: OrderRequest) -> None:
    emu.core.run(lambda now: emu.core.exchange.place(req, now))


def _emulator_book(emu: OkxEmulator, symbol: str = BTC) -> Any:
    return exchange_book(emu.core.exchange, symbol, 400)


async def _equal(emu: OkxEmulator, reader: BookReader, symbol: str = BTC) -> None:
    await wait_for(lambda: reader.book.synced and reader.levels() == _emulator_book(emu, symbol))


def _feed(conn: OkxConnector, symbol: str = BTC) -> Any:
    return conn.md_feeds[symbol]


def test_book_and_trades_from_the_emulator() -> None:
    async def go() -> None:
        async with venue() as (emu, conn):
            reader = BookReader(conn, BTC)
            await _equal(emu, reader)
            assert reader.snapshots() == 1
            for n, price in enumerate(("96000", "96000.5", "95999")):
                _place(emu, _order(n, Side.BUY, price))
                await _equal(emu, reader)
            assert reader.updates() >= 3
            # an account buy crossing the ask: a trade whose aggressor is the buyer
            _place(emu, _order(9, Side.BUY, "98000", "0.02"))
            await wait_for(lambda: reader.trades)
            assert reader.trades[0].aggressor is Side.BUY and reader.trades[0].size > 0
            await _equal(emu, reader)
            feed = _feed(conn)
            assert feed.resyncs == 0 and feed.sync.checksums_verified >= 4
            await reader.stop()
    run(go())


def test_gap_resubscribes_and_the_book_is_right_again() -> None:
    async def go() -> None:
        async with venue() as (emu, conn):
            reader = BookReader(conn, BTC)
            await _equal(emu, reader)
            emu.public.faults.drop_next = 1
            _place(emu, _order(1, Side.BUY, "96000"))  # lost: the book misses this level
            _place(emu, _order(2, Side.BUY, "95000"))  # its prevSeqId shows the gap
            await _equal(emu, reader)
            feed = _feed(conn)
            assert feed.resyncs == 1 and feed.sync.gaps == 1
            assert emu.public.unsubscribes == 1 and reader.snapshots() == 2
            _place(emu, _order(3, Side.SELL, "99000"))
            await _equal(emu, reader)
            assert feed.resyncs == 1
            await reader.stop()
    run(go())


def test_bad_or_corrupt_checksum_resyncs() -> None:
    async def go() -> None:
        async with venue() as (emu, conn):
            reader = BookReader(conn, BTC)
            await _equal(emu, reader)
            feed = _feed(conn)
            emu.public.faults.bad_checksum_next = 1
            _place(emu, _order(1, Side.BUY, "96000"))
            await wait_for(lambda: feed.resyncs == 1)
            await _equal(emu, reader)
            # a wrong size under the checksum of the true book: only the checksum tells
            emu.public.faults.corrupt_next = 1
            _place(emu, _order(2, Side.BUY, "95000"))
            await wait_for(lambda: feed.resyncs == 2)
            await _equal(emu, reader)
            assert feed.sync.checksum_failures == 2 and reader.snapshots() == 3
            await reader.stop()
    run(go())


def test_duplicates_heartbeat_and_zero_checksum_keep_the_stream() -> None:
    async def go() -> None:
        async with venue() as (emu, conn):
            emu.public.faults.zero_checksum = True
            reader = BookReader(conn, BTC)
            await _equal(emu, reader)
            feed = _feed(conn)
            emu.public.faults.duplicate_next = 2
            _place(emu, _order(1, Side.BUY, "96000"))
            _place(emu, _order(2, Side.BUY, "96001"))
            emu.public.heartbeat()
            _place(emu, _order(3, Side.SELL, "99000"))
            await _equal(emu, reader)
            await wait_for(lambda: feed.sync.duplicates == 2)
            assert feed.resyncs == 0 and feed.sync.checksums_verified == 0
            assert reader.snapshots() == 1
            await reader.stop()
    run(go())


def test_disconnect_reconnects_with_a_new_snapshot() -> None:
    async def go() -> None:
        async with venue() as (emu, conn):
            reader = BookReader(conn, BTC)
            await _equal(emu, reader)
            feed = _feed(conn)
            await emu.drop_streams()
            await wait_for(lambda: feed.stream.connects == 2 and reader.snapshots() == 2)
            _place(emu, _order(1, Side.BUY, "96000"))
            await _equal(emu, reader)
            assert feed.resyncs == 0
            await reader.stop()
    run(go())


def test_slow_consumer_gets_the_net_change_without_a_gap_loop() -> None:
    async def go() -> None:
        async with venue() as (emu, conn):
            stream = conn.market_data(BTC)
            first = await anext(stream)
            assert isinstance(first, BookSnapshot)
            feed = _feed(conn)
            # the consumer reads nothing while 60 changes happen
            for n in range(60):
                _place(emu, _order(n, Side.BUY, str(95000 + n)))
            await wait_for(lambda: feed.sync.seq_id == emu.public.last_seq(BTC))
            assert emu.public.updates_sent == 60 and feed.resyncs == 0
            nxt = await anext(stream)  # all of it at once: one update, the net change
            assert isinstance(nxt, BookUpdate) and len(nxt.bids) == 60
            bids = dict(first.bids)
            bids.update(nxt.bids)
            assert bids == _emulator_book(emu)[0]
            await stream.aclose()
            assert BTC not in conn.md_feeds
    run(go())


def test_swap_book_in_base_units() -> None:
    async def go() -> None:
        async with venue() as (emu, conn):
            reader = BookReader(conn, "BTC/USDT:USDT")
            await _equal(emu, reader, "BTC/USDT:USDT")
            _place(emu, _order(1, Side.BUY, "96000", "0.05", "BTC/USDT:USDT"))
            await _equal(emu, reader, "BTC/USDT:USDT")
            assert reader.book.bids[Decimal(96000)] == Decimal("0.05")
            await reader.stop()
    run(go())


def test_the_cached_checksum_is_always_the_books() -> None:
    """The checksum is computed again only when a change reaches the 25 levels it covers:
    after each of many random changes at every depth it equals one computed from scratch."""
    import json
    import random

    rng = random.Random(7)
    sync = BookSync("BTC/USDT", "BTC-USDT")

    def push(action: str, seq: int, bids: list[list[str]], asks: list[list[str]]) -> None:
        sync.receive(json.dumps({"arg": {"channel": "books", "instId": "BTC-USDT"},
                                 "action": action, "data": [{
                                     "asks": asks, "bids": bids, "ts": "1", "checksum": 0,
                                     "prevSeqId": seq - 1 if seq > 1 else -1,
                                     "seqId": seq}]}))

    push("snapshot", 1, [[f"{100 - i}", "1", "0", "1"] for i in range(60)],
         [[f"{101 + i}", "1", "0", "1"] for i in range(60)])
    for seq in range(2, 2000):
        side = rng.choice(("bids", "asks"))
        depth = rng.randrange(0, 70)
        px = f"{100 - depth}" if side == "bids" else f"{101 + depth}"
        size = rng.choice(("0", "1", "2.5"))
        change = [[px, size, "0", "1"]]
        push("update", seq, change if side == "bids" else [], change if side == "asks" else [])
        bids, asks = sync.levels()
        fresh = signed_crc32(checksum_text(
            [(sync._bids.levels[p][0], sync._bids.levels[p][1]) for p, _ in bids[:25]],
            [(sync._asks.levels[p][0], sync._asks.levels[p][1]) for p, _ in asks[:25]]))
        assert sync.checksum() == fresh, seq
