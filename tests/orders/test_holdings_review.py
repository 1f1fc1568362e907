"""What a review of the market data, positions and cross-venue risk found, each a test that
failed before its fix: limits that a closing order or a second account could get around,
reconciliation while fills are on their way, subscriptions that leaked or blocked their
MDReqID, FIX 5.0 sessions, fees in the base asset, late fills of an earlier day, accounts'
loss limits, a failed feed's stale book, market data resent, hedge-mode venue positions, and
trades kept without bound for a slow subscriber."""
from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path
from typing import Any

from server.harness import run

from connectors.base import OrderType, Side
from gateway.positions.book import Positions
from gateway.positions.exposure import exposure
from gateway.risk.checks import RiskEngine, RiskLimits

from .support import BTC, running, session, until, venue
from .test_market_data import Inbox, _request
from .test_positions import _fills

D = Decimal



def test_the_sessions_max_position_counts_every_account(tmp_path: Path) -> None:
    """The session's max_position (no per-account limits) must count every account's position,
    as the session's max_open_orders does."""
    async def body() -> None:
        sessions = [session("C1", accounts={"A": "paper", "B": "paper"},
                            risk={"max_position": "0.015"})]
        async with running(tmp_path, sessions) as r:
            c = await r.client("C1")
            inbox = Inbox(c)
            await c.order("a1", ord_type="1", qty="0.01", extra=[(1, "A")])
            await _fills(inbox, "a1")
            await c.order("b1", ord_type="1", qty="0.01", extra=[(1, "B")])
            m = await inbox.get("8", t11="b1")
            assert m.get(39) == "8", f"session now holds 0.02 BTC > max_position 0.015: {m}"
    run(body())


def test_an_order_reducing_a_position_over_the_limit_is_not_refused() -> None:
    """A position above max_position (the limit lowered, or an adjustment) cannot be reduced
    partially: a sell that brings 0.02 down to 0.019 is refused."""
    positions = Positions()
    positions.fill("S", "", "paper", BTC, Side.BUY, "t1", D("0.02"), D("100"), None, None, 1)
    risk = RiskEngine({"S": RiskLimits(max_position=D("0.015"))})
    risk.exposure = lambda sid, account, asset: exposure(
        positions, [], lambda v, s: D("100"), sid, account, asset)
    refused = risk.check(session_id="S", account=None, order_type=OrderType.LIMIT,
                         quantity=D("0.001"), price=D("100"), last_price=D("100"), now=0.0,
                         side=Side.SELL, asset="BTC")
    assert refused is None, refused.text


def test_a_fill_on_its_way_is_not_adjusted(tmp_path: Path) -> None:
    """The venue already holds the position a gateway order's fill makes, but the fill's event
    has not reached the gateway yet (a lagging user stream): the periodic reconciliation must
    not turn that into an adjustment (and then a second, reversing one)."""
    from .support import PERP

    async def body() -> None:
        async with running(tmp_path, [session("C1")]) as r:
            reconciler = r.gw.reconciler
            assert reconciler is not None and r.gw.positions is not None
            c = await r.client("C1")
            r.venue().update_faults(reorder_window=1000)  # the venue's events lag
            await c.order("p1", ord_type="1", qty="0.01", symbol=PERP)
            await until(lambda: any(p.quantity for p in r.venue().exchange.positions()))
            await asyncio.wait_for(r.orders.idle(), 5)
            made = await reconciler.reconcile()  # the venue has it, the fills not yet
            r.venue().flush_events()  # the fill arrives
            await until(lambda: r.gw.positions is not None and
                        r.gw.positions.venue_totals("paper").get(PERP) == D("0.01"))
            made += await reconciler.reconcile()
            assert made == [], made
            assert r.gw.positions.venue_totals("paper")[PERP] == D("0.01")
    run(body())


BOTH = ["paper", "paper2"]


def _md_sessions() -> list[dict[str, Any]]:
    return [session("C1", "FIX.4.4", venues=BOTH)]


def _md_venues() -> list[dict[str, Any]]:
    return [venue("paper"), venue("paper2", seed=7)]


def test_one_mdreqid_twice_before_the_snapshot_is_a_duplicate(
        tmp_path: Path) -> None:
    """Two subscriptions with one MDReqID, sent back to back (the feed not started yet): the
    second must be refused (281=1); both are accepted, and after the unsubscribe one keeps
    running (and keeps the venue feed) until logout."""
    async def body() -> None:
        async with running(tmp_path, _md_sessions(), _md_venues()) as r:
            c = await r.client("C1")
            inbox = Inbox(c)
            await _request(c, "dup", exchange="paper")
            await _request(c, "dup", exchange="paper")
            await inbox.get("W", t262="dup")
            await inbox.get("Y", t262="dup", t281="1")
            await _request(c, "dup", kind="2")
            assert r.gw.market_data is not None
            md = r.gw.market_data.md
            await until(lambda: md.book("paper", BTC) is None)  # no subscription left
    run(body())


def test_a_venue_error_while_subscribing_is_refused_and_stops_the_feeds(
        tmp_path: Path) -> None:
    """A request for two instruments; the first is watched, then listing the second fails
    at a venue (VenueUnavailable): the client must get a Y and the first feed must stop."""
    async def body() -> None:
        async with running(tmp_path, _md_sessions(), _md_venues()) as r:
            c = await r.client("C1")
            inbox = Inbox(c)
            r.venue("paper2").update_faults(unavailable=True)
            await c.send("V", [(262, "two"), (263, "1"), (264, "5"), (265, "1"), (267, "1"),
                               (269, "0"), (146, "2"), (55, BTC), (207, "paper"),
                               (55, "ETH/USDT")])
            y = await inbox.get("Y", t262="two")
            assert "market data unavailable" in y[58]
            assert r.gw.market_data is not None
            assert r.gw.market_data.md.book("paper", BTC) is None  # the first feed stopped
    run(body())


def test_a_logout_before_the_snapshot_frees_the_mdreqid(
        tmp_path: Path) -> None:
    """The session logs out while its subscription waits for the feed's first snapshot; after
    it logs on again, a subscription with the same MDReqID must be served, not refused as a
    duplicate of the one that never went out."""
    async def body() -> None:
        async with running(tmp_path, _md_sessions(), _md_venues()) as r:
            conn = r.venue("paper")
            original = conn.market_data
            gate = asyncio.Event()
            asked = asyncio.Event()

            async def slow(symbol: str):  # type: ignore[no-untyped-def]
                asked.set()
                await gate.wait()
                async for ev in original(symbol):
                    yield ev

            conn.market_data = slow  # type: ignore[method-assign]
            c = await r.client("C1")
            await _request(c, "m1", exchange="paper")
            await asyncio.wait_for(asked.wait(), 5)  # the request waits for its snapshot
            await c.send("5", [])
            await c.expect_closed()
            gate.set()
            assert r.gw.market_data is not None
            requests = r.gw.market_data
            await until(lambda: not requests._subs and requests.md.book("paper", BTC) is None)
            c2 = await r.client("C1")
            await _request(c2, "m1", exchange="paper")
            got = None
            try:
                while True:
                    got = await c2.recv(2.0)
                    if got.msg_type in ("W", "Y"):
                        break
            except TimeoutError:
                pass
            assert got is not None and got.msg_type == "W", str(got)
    run(body())


def test_messages_to_a_fix50_session_validate_against_the_fix50_dictionary(
        tmp_path: Path) -> None:
    """DefaultApplVerID FIX.5.0 is a configurable choice; what the gateway sends such a
    session must validate against the FIX 5.0 dictionary it ships."""
    from gateway.fix import dictionary
    from gateway.fix.validation import parse_message, validate

    from .support import STRICT

    async def body() -> None:
        sessions = [session("C1", "FIXT.1.1", venues=BOTH, default_appl_ver_id="FIX.5.0")]
        async with running(tmp_path, sessions, _md_venues()) as r:
            c = await r.client("C1", "FIXT.1.1")
            c.appl_ver = "FIX.5.0"  # (also checked on receipt, strictly)
            inbox = Inbox(c)
            await c.send("BB", [(909, "b1")])
            ba = await inbox.get("BA", t909="b1")
            await _request(c, "md1", exchange="paper")
            w = await inbox.get("W", t262="md1")
            await c.send("x", [(320, "all"), (559, "4")])
            y = await inbox.get("y", t320="all")
            sdd, add = dictionary.standard("FIXT.1.1"), dictionary.standard("FIX.5.0")
            problems = []
            for m in (ba, w, y):
                try:
                    validate(parse_message(m.raw, sdd, add), sdd, add, STRICT)
                except Exception as exc:  # noqa: BLE001
                    problems.append((m.msg_type, repr(exc)))
            assert not problems, problems
    run(body())


def test_a_fee_paid_in_the_base_asset_is_taken_off_the_position() -> None:
    """Spot buy of 1 BTC, the fee 0.001 BTC (Binance without BNB): the account holds 0.999.
    Selling those 0.999 leaves the computed position long 0.001 forever (and max_position,
    gross notional and the unrealized PnL count it)."""
    p = Positions()
    p.fill("S", "", "binance", BTC, Side.BUY, "t1", D("1"), D("100"), D("0.001"), "BTC", 1)
    p.fill("S", "", "binance", BTC, Side.SELL, "t2", D("0.999"), D("110"), D("0.1099"), "USDT",
           2)
    (pos,) = p.of_session("S")
    assert pos.quantity == 0, pos


def test_a_late_fill_of_yesterday_leaves_todays_loss() -> None:
    """A fill of yesterday applied after today's (caught up after a reconnection): the day's
    realized PnL goes back to yesterday's, and today's loss is forgotten by the guard."""
    from gateway.positions.book import NS_PER_DAY
    from gateway.positions.exposure import daily_loss

    today = 20_000
    p = Positions()
    p.fill("S", "", "paper", BTC, Side.BUY, "t1", D("1"), D("100"), None, None,
           today * NS_PER_DAY + 10)
    p.fill("S", "", "paper", BTC, Side.SELL, "t2", D("1"), D("50"), None, None,
           today * NS_PER_DAY + 20)  # realized -50 today
    assert daily_loss(p, lambda v, s: None, "S", today) == D(50)
    p.fill("S", "", "paper", "ETH/USDT", Side.BUY, "t0", D("1"), D("10"), None, None,
           (today - 1) * NS_PER_DAY + 5)  # another instrument: no effect expected
    p.fill("S", "", "paper", BTC, Side.BUY, "t3", D("1"), D("50"), None, None,
           (today - 1) * NS_PER_DAY + 30)  # late: a buy of yesterday
    marks = {BTC: D("50"), "ETH/USDT": D("10")}
    assert daily_loss(p, lambda v, s: marks[s], "S", today) == D(50)


def test_an_accounts_max_daily_loss_engages_the_kill_switch(tmp_path: Path) -> None:
    async def body() -> None:
        sessions = [session("C1", accounts={"A": "paper"},
                            risk={"accounts": {"A": {"max_daily_loss": "0.5"}}})]
        async with running(tmp_path, sessions) as r:
            c = await r.client("C1")
            inbox = Inbox(c)
            await c.order("b1", ord_type="1", qty="0.01", extra=[(1, "A")])
            await _fills(inbox, "b1")
            await c.order("s1", ord_type="1", qty="0.01", side="2", extra=[(1, "A")])
            # two taker fees (0.05% of about 970 each) and the spread: a loss past 0.5
            await _fills(inbox, "s1")
            await asyncio.wait_for(r.orders.idle(), 5)
            await c.order("b2", ord_type="1", qty="0.01", extra=[(1, "A")])
            m = await inbox.get("8", t11="b2")
            assert m.get(39) == "8", f"account A lost past its max_daily_loss: {m}"
    run(body())


def test_a_failed_feeds_stale_book_is_not_served(tmp_path: Path) -> None:
    """The venue's feed fails and cannot be started again (the venue is unreachable): the book
    is not live, and a new request is refused (Y, after waiting for a snapshot), not answered
    with a W of the stale book."""
    async def body() -> None:
        async with running(tmp_path, _md_sessions(), _md_venues()) as r:
            conn = r.venue("paper")
            original = conn.market_data
            calls = []
            lose = asyncio.Event()

            async def failing(symbol: str):  # type: ignore[no-untyped-def]
                calls.append(symbol)
                if len(calls) > 1:
                    await asyncio.Event().wait()  # unreachable
                async for ev in original(symbol):
                    yield ev
                    await lose.wait()
                    raise ConnectionError("venue websocket lost")

            conn.market_data = failing  # type: ignore[method-assign]
            assert r.gw.market_data is not None
            md = r.gw.market_data.md
            md.retry_s, md.first_snapshot_s = 0.01, 0.5
            c = await r.client("C1")
            inbox = Inbox(c)
            await _request(c, "live", exchange="paper")
            await inbox.get("W", t262="live")
            lose.set()
            await until(lambda: len(calls) == 2)  # failed, started again, hanging
            book = md.book("paper", BTC)
            assert book is not None and not book.synced
            await _request(c, "snap", kind="0", exchange="paper")
            got = None
            try:
                while True:
                    got = await c.recv(2.0)
                    if got.msg_type in ("W", "Y"):
                        break
            except TimeoutError:
                pass
            assert got is not None and got.msg_type == "Y", str(got)  # not the stale book
    run(body())


def test_market_data_is_gap_filled_on_a_resend_request(tmp_path: Path) -> None:
    """Every W / X is committed to the session store and a ResendRequest replays them (stale
    books, PossDup) instead of gap-filling them."""
    async def body() -> None:
        async with running(tmp_path, _md_sessions(), _md_venues()) as r:
            c = await r.client("C1")
            inbox = Inbox(c)
            await _request(c, "md", exchange="paper", kind="0")
            w = await inbox.get("W", t262="md")
            seq = w.get(34)
            await c.send("2", [(7, seq), (16, seq)])
            got = None
            try:
                while True:
                    got = await c.recv(2.0)
                    if got.msg_type in ("W", "4"):
                        break
            except TimeoutError:
                pass
            assert got is not None and got.msg_type == "4", str(got)
    run(body())



def test_the_clients_compid_as_account_covers_that_account(
        tmp_path: Path) -> None:
    """An order with Account (1) = the client's CompID is booked under "C1"; a
    RequestForPositions with Account C1 is read as "no account" and misses it."""
    from .test_positions import _ask

    async def body() -> None:
        async with running(tmp_path, [session("C1")]) as r:
            c = await r.client("C1")
            inbox = Inbox(c)
            await c.order("b1", ord_type="1", qty="0.01", extra=[(1, "C1")])
            await _fills(inbox, "b1")
            await _ask(c, "p1", account="C1")
            ack = await inbox.get("AO", t710="p1")
            assert ack.get(728) == "0", str(ack)
    run(body())


def test_max_gross_notional_lets_a_position_be_closed(tmp_path: Path) -> None:
    """Bought 0.01 BTC (~970 of a 1500 max_gross_notional): selling it back (which takes the
    gross exposure to 0) is refused as if it added 970 more."""
    async def body() -> None:
        sessions = [session("C1", risk={"max_gross_notional": "1500"})]
        async with running(tmp_path, sessions) as r:
            c = await r.client("C1")
            inbox = Inbox(c)
            await c.order("b1", ord_type="1", qty="0.01")
            await _fills(inbox, "b1")
            await c.order("s1", ord_type="1", qty="0.01", side="2")
            await _fills(inbox, "s1")  # closing the position is not refused
    run(body())


def test_hedge_mode_venue_rows_are_summed() -> None:
    """A venue in long/short (hedge) mode reports a long and a short row for one instrument
    (the OKX connector maps posSide short to a negative quantity for that case); the reconciler
    keeps only the last row and adjusts a position that matches the venue's net."""
    from connectors.base import Position as VenuePosition
    from gateway.positions.reconcile import Reconciler

    from .support import PERP

    class Venue:
        async def positions(self):  # type: ignore[no-untyped-def]
            return [VenuePosition(PERP, D("0.03"), None), VenuePosition(PERP, D("-0.01"), None)]

    async def body() -> None:
        p = Positions()
        p.fill("S", "", "okx", PERP, Side.BUY, "t1", D("0.02"), D("100"), None, None, 1)

        async def save(a: Any) -> None:
            return None

        async def settle() -> None:
            return None

        made = await Reconciler(p, {"okx": Venue()}, save, settle).reconcile()  # type: ignore[dict-item]
        assert made == [], made
    run(body())


def test_a_slow_subscriber_keeps_only_the_latest_trades() -> None:
    """The levels are conflated, but every public trade is appended to the subscription until
    its next message goes out: a client that does not read on a busy market holds them all
    (and then gets them in one X)."""
    from connectors.base import PublicTrade
    from gateway.marketdata.book import Book
    from gateway.marketdata.requests import Request, Subscription

    async def body() -> None:
        req = Request(b"r", b"1", 5, True, frozenset({b"0", b"1", b"2"}), ((BTC, None),))
        sub = Subscription(None, req, BTC, ("paper",), None)  # type: ignore[arg-type]
        book = Book("paper", BTC)
        for i in range(100_000):
            sub.book_changed(book, (PublicTrade(BTC, D(100), D(1), Side.BUY, str(i), i),))
        assert len(sub.trades) == 1000 and sub.trades_dropped == 99_000
        assert sub.trades[-1][1].trade_id == "99999"  # the latest are kept
    run(body())
