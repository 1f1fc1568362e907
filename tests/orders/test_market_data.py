"""MarketDataRequest (V) end to end over FIX 4.4 and FIX 5.0SP2 against two simulated venues:
snapshots (W), incremental refreshes (X), rejects (Y), each validated strictly against the
dictionary; the book a client builds from what it was sent equals the venues' books."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from server.fixclient import FixMessage
from server.harness import run

from connectors.base import Side
from gateway.marketdata.requests import MarketDataRequests

from .support import BTC, OrderClient, Run, running, session, venue

BOTH = ["paper", "paper2"]


def _sessions(begin: str) -> list[dict[str, Any]]:
    return [session("C1", begin, venues=BOTH)]


def _venues() -> list[dict[str, Any]]:
    return [venue("paper"), venue("paper2", seed=7)]


async def _request(c: OrderClient, req_id: str, *, kind: str = "1", depth: int = 5,
                   types: tuple[str, ...] = ("0", "1", "2"), symbol: str = BTC,
                   exchange: str | None = None, update: str = "1") -> None:
    body: list[tuple[int, str]] = [(262, req_id), (263, kind), (264, str(depth))]
    if kind == "1":
        body.append((265, update))
    body.append((267, str(len(types))))
    body += [(269, t) for t in types]
    body += [(146, "1"), (55, symbol)]
    if exchange is not None:
        body.append((207, exchange))
    await c.send("V", body)


class Inbox:
    """Reads a client's messages by type, keeping the others (in order) for later."""

    def __init__(self, c: OrderClient) -> None:
        self.c = c
        self.kept: list[FixMessage] = []

    async def get(self, msg_type: str, wait: float = 5.0, **tags: str) -> FixMessage:
        m = next((k for k in self.kept if k.msg_type == msg_type), None)
        if m is not None:
            self.kept.remove(m)
        else:
            while True:
                m = await self.c.recv(wait)
                if m.msg_type == msg_type:
                    break
                if m.msg_type != "0":
                    self.kept.append(m)
        for key, want in tags.items():
            assert m.get(int(key[1:])) == want, f"{key}: {m}"
        return m

    async def report(self, cl: str, status: str) -> FixMessage:
        """The ExecutionReport of ``cl`` with OrdStatus ``status`` (earlier ones skipped)."""
        while True:
            m = await self.get("8", t11=cl)
            if m.get(39) == status:
                return m

    async def nothing_more(self, *types: str) -> None:
        got = [m for m in self.kept if m.msg_type in types]
        try:
            while True:
                m = await self.c.recv(0.3)
                if m.msg_type in types:
                    got.append(m)
        except TimeoutError:
            pass
        assert not got, [str(m) for m in got]


def _entries(m: Any) -> list[dict[int, str]]:
    """The repeating group NoMDEntries (268) of a W or X, one dict per entry."""
    out: list[dict[int, str]] = []
    inside = False
    first = 279 if m.msg_type == "X" else 269
    for tag, raw in m.fields:
        v = raw.decode()
        if tag == 268:
            inside = True
            continue
        if not inside or tag == 10:
            continue
        if tag == first:
            out.append({})
        out[-1][tag] = v
    return out


class ClientBook:
    """What a client holds: (MDEntryType, venue, price) -> size, built from W and X."""

    def __init__(self) -> None:
        self.levels: dict[tuple[str, str, Decimal], Decimal] = {}
        self.trades: list[dict[int, str]] = []

    def full(self, m: Any) -> None:
        self.levels = {}
        for e in _entries(m):
            if e[269] == "2":
                continue
            self.levels[(e[269], e[275], Decimal(e[270]))] = Decimal(e[271])

    def incremental(self, m: Any) -> None:
        for e in _entries(m):
            key = (e[269], e[275], Decimal(e[270]))
            if e[269] == "2":
                self.trades.append(e)
            elif e[279] == "2":
                assert key in self.levels, f"delete of a level never sent: {e}"
                del self.levels[key]
            else:
                assert (e[279] == "0") == (key not in self.levels), e
                self.levels[key] = Decimal(e[271])


def _expected(r: Run, depth: int, venues: list[str], types: str = "01"
              ) -> dict[tuple[str, str, Decimal], Decimal]:
    out: dict[tuple[str, str, Decimal], Decimal] = {}
    for entry_type, side in (("0", Side.BUY), ("1", Side.SELL)):
        if entry_type not in types:
            continue
        levels = [(p, name, q) for name in venues
                  for p, q in r.venue(name).exchange.book(BTC).levels(side)[:depth]]
        levels.sort(key=lambda x: (-x[0] if side is Side.BUY else x[0], x[1]))
        for p, name, q in levels[:depth]:
            out[(entry_type, name, p)] = q
    return out


async def _until_equal(inbox: Inbox, book: ClientBook, r: Run, depth: int,
                       venues: list[str], types: str = "01") -> None:
    """Apply the X messages that arrive until the client's book is the venues' (bounded)."""
    for _ in range(50):
        if book.levels == _expected(r, depth, venues, types):
            return
        book.incremental(await inbox.get("X"))
    assert book.levels == _expected(r, depth, venues, types)


@pytest.mark.parametrize("begin", ["FIX.4.4", "FIXT.1.1"])
def test_consolidated_book_snapshot_then_updates(tmp_path: Path, begin: str) -> None:
    async def body() -> None:
        async with running(tmp_path, _sessions(begin), _venues()) as r:
            c = await r.client("C1", begin)
            inbox = Inbox(c)
            await _request(c, "md1")
            w = await inbox.get("W", t262="md1", t55=BTC)
            book = ClientBook()
            book.full(w)
            assert book.levels == _expected(r, 5, BOTH)
            assert {e[275] for e in _entries(w)} == set(BOTH)  # both venues, each named
            if begin == "FIXT.1.1":
                assert w.get(779) is not None  # LastUpdateTime, required in 5.0SP2
            # a buy resting above the best bid at one venue (inside the spread): a new top
            best = r.venue("paper").exchange.book(BTC).best_bid()
            assert best is not None
            await c.order("b1", price=str(best + Decimal("0.01")), qty="0.01", tif="1")
            await inbox.report("b1", "0")
            await _until_equal(inbox, book, r, 5, BOTH)
            assert ("0", "paper", best + Decimal("0.01")) in book.levels
            # it is canceled: the level goes, the one it pushed out of the top 5 comes back
            await c.cancel("b1c", "b1", qty="0.01")
            await inbox.report("b1c", "4")
            await _until_equal(inbox, book, r, 5, BOTH)

    run(body())


def test_one_venue_by_security_exchange_and_a_trade(tmp_path: Path) -> None:
    async def body() -> None:
        async with running(tmp_path, _sessions("FIX.4.4"), _venues()) as r:
            c = await r.client("C1")
            inbox = Inbox(c)
            await _request(c, "p2", exchange="paper2", depth=3)
            w = await inbox.get("W", t262="p2", t207="paper2")
            book = ClientBook()
            book.full(w)
            assert book.levels == _expected(r, 3, ["paper2"])
            # a marketable buy at paper2 trades: the trade is told with its venue
            ask = r.venue("paper2").exchange.book(BTC).best_ask()
            assert ask is not None
            await c.order("t1", price=str(ask), qty="0.01", extra=[(100, "paper2")])
            await inbox.report("t1", "2")
            while not book.trades:
                book.incremental(await inbox.get("X"))
            (trade,) = book.trades
            assert (trade[275], Decimal(trade[270]), Decimal(trade[271])) == (
                "paper2", ask, Decimal("0.01"))

    run(body())


def test_snapshot_only_and_unsubscribe_send_nothing_more(tmp_path: Path) -> None:
    async def body() -> None:
        async with running(tmp_path, _sessions("FIX.4.4"), _venues()) as r:
            c = await r.client("C1")
            inbox = Inbox(c)
            await _request(c, "s0", kind="0")
            await inbox.get("W", t262="s0")
            await _request(c, "s1")
            await inbox.get("W", t262="s1")
            await _request(c, "s1", kind="2")
            # (an X of s1 may still come before the unsubscribe is read: changes follow)
            await c.test_request("after-unsubscribe")
            inbox.kept.clear()
            best = r.venue("paper").exchange.book(BTC).best_bid()
            assert best is not None
            await c.order("q1", price=str(best + 1), qty="0.01", tif="1")
            await inbox.report("q1", "0")
            await inbox.nothing_more("W", "X")
            assert r.gw.market_data is not None
            assert not r.gw.market_data.md.book("paper", BTC)  # the feed stopped

    run(body())


@pytest.mark.parametrize(("request_kw", "reason", "text"), [
    ({"symbol": "NOPE/USDT"}, "0", "NOPE/USDT is listed at no venue"),
    ({"exchange": "elsewhere"}, "3", "venue elsewhere is not one this session may use"),
    ({"types": ("0", "4")}, "8", "MDEntryType 4 is not supported"),
    ({"kind": "2"}, None, "MDReqID r is not subscribed"),
])
def test_requests_refused_with_a_reason(tmp_path: Path, request_kw: dict[str, Any],
                                        reason: str | None, text: str) -> None:
    async def body() -> None:
        async with running(tmp_path, _sessions("FIX.4.4"), _venues()) as r:
            c = await r.client("C1")
            await _request(c, "r", **request_kw)
            y = await Inbox(c).get("Y", t262="r")
            assert y.get(281) == reason
            assert text in (y.get(58) or "")

    run(body())


def test_a_duplicate_subscription_is_refused(tmp_path: Path) -> None:
    async def body() -> None:
        async with running(tmp_path, _sessions("FIX.4.4"), _venues()) as r:
            c = await r.client("C1")
            inbox = Inbox(c)
            await _request(c, "d")
            await inbox.get("W", t262="d")
            await _request(c, "d")
            y = await inbox.get("Y", t262="d")
            assert y.get(281) == "1"

    run(body())


def test_a_slow_client_gets_the_latest_state_in_one_message(tmp_path: Path) -> None:
    """While the last message is not yet written, changes accumulate: the next message
    carries the net change of each level once, not every intermediate state (a level added
    and removed meanwhile is never sent)."""

    async def body() -> None:
        async with running(tmp_path, _sessions("FIX.4.4"), _venues()) as r:
            assert r.gw.market_data is not None
            requests: MarketDataRequests = r.gw.market_data
            gate = asyncio.Event()
            flush = requests._flush
            assert flush is not None

            async def slow(sid: Any) -> None:
                await gate.wait()  # the client is not reading
                await flush(sid)

            c = await r.client("C1")
            inbox = Inbox(c)
            await _request(c, "slow", exchange="paper", depth=20, types=("0",))
            book = ClientBook()
            book.full(await inbox.get("W", t262="slow"))
            requests._flush = slow
            # ten resting buys at new levels, then nine of them canceled, all while the
            # client "does not read"
            for i in range(1, 11):
                await c.order(f"o{i}", price=str(90000 + i), qty="0.01", tif="1")
                await inbox.report(f"o{i}", "0")
            for i in range(1, 10):
                await c.cancel(f"c{i}", f"o{i}", qty="0.01")
                await inbox.report(f"c{i}", "4")
            gate.set()
            await _until_equal(inbox, book, r, 20, ["paper"], "0")
            assert ("0", "paper", Decimal(90010)) in book.levels
            xs = [m for m in c.received if m.msg_type == "X"]
            assert len(xs) <= 3, [str(m) for m in xs]  # not one per change (nineteen)
            sent_prices = {Decimal(e[270]) for m in xs for e in _entries(m)}
            # at most the first change went out before the gate closed on it
            assert len(sent_prices & {Decimal(90000 + i) for i in range(2, 10)}) == 0

    run(body())


def _group(m: FixMessage, count_tag: int, first: int) -> list[dict[int, str]]:
    out: list[dict[int, str]] = []
    inside = False
    for tag, raw in m.fields:
        if tag == count_tag:
            inside = True
            continue
        if inside and tag == first:
            out.append({})
        if out and tag != 10:
            out[-1][tag] = raw.decode()
    return out


@pytest.mark.parametrize("begin", ["FIX.4.4", "FIXT.1.1"])
def test_security_list_of_every_venue(tmp_path: Path, begin: str) -> None:
    async def body() -> None:
        async with running(tmp_path, _sessions(begin), _venues()) as r:
            c = await r.client("C1", begin)
            inbox = Inbox(c)
            await c.send("x", [(320, "all"), (559, "4")])
            y = await inbox.get("y", t320="all", t560="0")
            got = {(e[207], e[55]): e for e in _group(y, 146, 55)}
            want = {(name, i.symbol): i for name in BOTH
                    for i in await r.venue(name).instruments()}
            assert got.keys() == want.keys()
            for key, i in want.items():
                e = got[key]
                assert (Decimal(e[969]), Decimal(e[561]), Decimal(e[562]), e[15]) == (
                    i.tick_size, i.lot_size, i.min_qty, i.quote)
                assert Decimal(e.get(20001, "0")) == i.min_notional
                # a perpetual's quantities are in its base asset: ContractMultiplier 1
                assert e.get(231) == ("1" if ":" in i.symbol else None)
            await c.send("x", [(320, "one"), (559, "0"), (55, BTC), (207, "paper2")])
            y = await inbox.get("y", t320="one", t560="0")
            assert [(e[207], e[55]) for e in _group(y, 146, 55)] == [("paper2", BTC)]
            await c.send("x", [(320, "none"), (559, "0"), (55, "NOPE/USDT")])
            await inbox.get("y", t320="none", t560="2")
            await c.send("x", [(320, "other"), (559, "4"), (207, "elsewhere")])
            await inbox.get("y", t320="other", t560="3")

    run(body())


@pytest.mark.parametrize("begin", ["FIX.4.4", "FIXT.1.1"])
def test_balances_per_venue_and_currency(tmp_path: Path, begin: str) -> None:
    async def body() -> None:
        sessions = [session("C1", begin, venues=BOTH, accounts={"ACC2": "paper2"})]
        async with running(tmp_path, sessions, _venues()) as r:
            c = await r.client("C1", begin)
            inbox = Inbox(c)
            await c.send("BB", [(909, "b1")])
            want = {(name, b.asset): b for name in BOTH
                    for b in await r.venue(name).balances()}
            reports = [await inbox.get("BA", t909="b1") for _ in want]
            assert reports[-1].get(912) == "Y" and {m.get(911) for m in reports} == {
                str(len(want))}
            for m in reports:
                b = want[(m[448], m[15])]
                assert m[452] == "22"
                assert (Decimal(m[900]), Decimal(m[20010]), Decimal(m[20011])) == (
                    b.total, b.free, b.locked)
            # one account: its venue only
            await c.send("BB", [(909, "b2"), (1, "ACC2")])
            first = await inbox.get("BA", t909="b2")
            assert first[448] == "paper2" and first[1] == "ACC2"
            # not this session's account: refused
            await c.send("BB", [(909, "b3"), (1, "SOMEONE")])
            bg = await inbox.get("BG", t909="b3", t945="4", t946="9")
            assert "SOMEONE" in bg[58]

    run(body())
