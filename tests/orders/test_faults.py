"""Venue faults (paper ``Faults``, seeded): rejects, ambiguous timeouts resolved by query, and
duplicated, dropped and reordered events that still give exactly one ExecutionReport per fill."""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

import pytest
from server.harness import run

from connectors.base import OrderState, VenueUnavailable
from connectors.paper.venue import PaperConnector

from .support import BTC, D, OrderClient, Run, by_order, consistent, running, sid, until, venue


def _speed_up(r: Run) -> None:
    """Ask the venue again every 50 ms (backing off to 100 ms at most), give up on a lost order
    after 0.2 s (instead of 5 s)."""
    r.orders.patience.retry = 0.05
    r.orders.patience.retry_cap = 0.1
    r.orders.patience.patience = 0.2


def _count_queries(r: Run, monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    conn = r.venue()
    asked: Counter[str] = Counter()
    query = PaperConnector.query_order

    async def counting(symbol: str, client_order_id: str, *,
                       venue_order_id: str | None = None) -> OrderState | None:
        asked[client_order_id] += 1
        return await query(conn, symbol, client_order_id, venue_order_id=venue_order_id)

    monkeypatch.setattr(conn, "query_order", counting)
    return asked


def test_venue_reject_and_unavailable(tmp_path: Path) -> None:
    async def body() -> None:
        async with running(tmp_path) as r:
            c = await r.client()
            r.venue().update_faults(reject_next=1)
            await c.order("a", price="90000")
            m = await c.er(t11="a", t39="8", t150="8", t103="99")
            assert "injected" in m[58] and "paper" in m[58]
            r.venue().update_faults(unavailable=True)
            await c.order("b", price="90000")
            m = await c.er(t11="b", t39="8", t150="8", t103="2")
            assert "unavailable" in m[58]
    run(body())


def test_timeout_accepted_stays_pending_and_is_resolved_by_query(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def body() -> None:
        async with running(tmp_path) as r:
            _speed_up(r)
            asked = _count_queries(r, monkeypatch)
            c = await r.client()
            # the place times out after the venue took it, and its events are lost too: only
            # the query can tell what happened
            r.venue().update_faults(timeout_next=1, timeout_mode="accepted", drop_event_rate=1.0)
            await c.order("a", ord_type="1", qty="0.7")
            new = await c.er(t11="a", t39="0", t150="0")
            fills = [await c.er(t11="a", t150="F") for _ in range(2)]
            assert fills[-1][39] == "2" and D(fills[-1][14]) == D("0.7")
            assert sum(asked.values()) >= 1
            assert new[198]
            r.venue().update_faults(drop_event_rate=0.0, timeout_next=1)
            await c.order("b", price="90000")
            await c.er(t11="b", t39="0")
            await c.quiet(0.2)  # no reject follows
    run(body())


def test_timeout_lost_is_rejected_only_after_querying(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def body() -> None:
        async with running(tmp_path) as r:
            _speed_up(r)
            asked = _count_queries(r, monkeypatch)
            c = await r.client()
            r.venue().update_faults(timeout_next=1, timeout_mode="lost")
            await c.order("a", price="90000")
            m = await c.er(t11="a", t39="8", t150="8")
            assert "never received" in m[58]
            assert sum(asked.values()) >= 2, asked  # asked, and asked again before giving up
            assert await r.open_at_venue() == []
            # while it is being resolved, it is PendingNew: a cancel waits for the outcome
            r.venue().update_faults(timeout_next=1, timeout_mode="lost")
            await c.order("b", price="90000")
            await c.cancel("b2", "b")
            await c.er(t11="b2", t41="b", t39="6")
            m = await c.er(t11="b", t39="8", t150="8")
            assert "never received" in m[58]
    run(body())


def test_an_unanswered_cancel_is_asked_about_until_the_venue_answers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The venue carries out a cancel but its answer and its event are lost, and it then fails
    the first 15 queries: the cancel stays pending (never guessed) and is resolved by the
    first query that is answered (Invariant 3)."""
    async def body() -> None:
        async with running(tmp_path) as r:
            _speed_up(r)
            conn = r.venue()
            c = await r.client()
            await c.order("a", price="90000", tif="1")
            await c.er(t11="a", t39="0")
            failures = 15
            asked = 0
            query = PaperConnector.query_order

            async def failing(symbol: str, client_order_id: str, *,
                              venue_order_id: str | None = None) -> OrderState | None:
                nonlocal asked
                asked += 1
                if asked <= failures:
                    raise VenueUnavailable("injected: query failed")
                return await query(conn, symbol, client_order_id, venue_order_id=venue_order_id)

            monkeypatch.setattr(conn, "query_order", failing)
            conn.update_faults(timeout_next=1, timeout_mode="accepted", drop_event_rate=1.0)
            await c.cancel("b", "a")
            await c.er(t11="b", t41="a", t39="6")
            m = await c.er(t11="b", t41="a", t39="4", t150="4", timeout=10)
            assert m[151] == "0"
            assert asked == failures + 1
            assert await r.open_at_venue() == []
            assert not [x for x in c.received if x.msg_type == "9"]
    run(body())


async def _exactly_one_er_per_fill(r: Run, c: OrderClient, n_orders: int) -> None:
    """Every venue trade of ours reported once, with its own ExecID."""
    ours = {f.trade_id for f in r.venue().exchange.fills()}
    reports = [m for m in c.received if m.msg_type == "8" and m[150] == "F"]
    assert sorted(m[17].split(".T")[1] for m in reports) == sorted(ours), "\n".join(
        str(m) for m in c.received)
    assert len({m[17] for m in reports}) == len(reports)
    orders = by_order(c.received)
    assert len(orders) == n_orders
    for msgs in orders.values():
        for m in msgs:
            consistent(m)
        ids = [m[17] for m in msgs]
        assert len(ids) == len(set(ids))


@pytest.mark.parametrize("seed", [4, 8, 18])  # seeds where a cancel overtakes fills
def test_duplicated_and_reordered_events(tmp_path: Path, seed: int) -> None:
    async def body() -> None:
        async with running(tmp_path, venues=[venue(seed=seed)]) as r:
            conn = r.venue()
            conn.update_faults(duplicate_event_rate=0.5, reorder_window=3)
            c = await r.client()
            book = conn.exchange.book(BTC)
            bid, ask = book.best_bid(), book.best_ask()
            assert bid is not None and ask is not None
            # a sweep, a partial IOC, a resting order filled in two by our own crossing orders
            await c.order("sweep", ord_type="1", qty="1.3")
            await c.order("ioc", price=ask + D("0.02"), qty="2", tif="3")
            await c.order("rest", price=bid + D("0.01"), qty="0.4")
            await c.order("x1", side="2", price=bid + D("0.01"), qty="0.1")
            await c.order("x2", side="2", price=bid + D("0.01"), qty="0.1")
            conn.flush_events()
            done = {"sweep": "2", "ioc": "4", "x1": "2", "x2": "2"}
            last: dict[str, str] = {}
            while any(last.get(k) != v for k, v in done.items()) or last.get("rest") != "1" \
                    or D([m for m in c.received if m.get(11) == "rest"][-1][14]) != D("0.2"):
                m = await c.er()
                last[m[11]] = m[39]
                conn.flush_events()
            await c.quiet(0.2)
            await _exactly_one_er_per_fill(r, c, 5)
    run(body())


def test_dropped_events_recovered_by_reconcile(tmp_path: Path) -> None:
    async def body() -> None:
        async with running(tmp_path) as r:
            conn = r.venue()
            c = await r.client()
            bid = conn.exchange.book(BTC).best_bid()
            assert bid is not None
            await c.order("rest", price=bid + D("0.01"), qty="0.4")
            await c.er(t11="rest", t39="0")
            conn.update_faults(drop_event_rate=1.0)
            await c.order("sweep", ord_type="1", qty="1.2")
            await c.order("x1", side="2", price=bid + D("0.01"), qty="0.1")
            await c.order("gone", price=bid - 5)
            for cl in ("sweep", "x1", "gone"):  # acknowledged by the place calls' answers
                await c.er(t11=cl, t39="0")
            await c.quiet(0.2)  # the fills' events were lost
            await r.orders.reconcile("paper")
            want = {"sweep": "2", "x1": "2"}
            got: dict[str, str] = {}
            while got != want or [m for m in c.received if m.get(11) == "rest"][-1][39] != "1":
                m = await c.er()
                if m[11] in want:
                    got[m[11]] = m[39]
            # a cancel whose event is lost: PendingCancel until the reconciliation
            await c.cancel("gone2", "gone")
            await c.er(t11="gone2", t39="6")
            await c.quiet(0.2)
            conn.update_faults(drop_event_rate=0.0)
            await r.orders.reconcile("paper")
            await c.er(t11="gone2", t41="gone", t39="4")
            await r.orders.reconcile("paper")  # nothing new the second time
            await c.quiet(0.2)
            await _exactly_one_er_per_fill(r, c, 4)
    run(body())


@pytest.mark.parametrize("seed", [1, 2])
def test_cancel_then_new_with_duplicated_and_reordered_events(tmp_path: Path, seed: int) -> None:
    async def body() -> None:
        async with running(tmp_path, venues=[venue(seed=seed, amend=False)]) as r:
            conn = r.venue()
            c = await r.client()
            bid = conn.exchange.book(BTC).best_bid()
            assert bid is not None
            await c.order("a", price=bid - 20, qty="0.2")
            await c.er(t11="a", t39="0")
            conn.update_faults(duplicate_event_rate=1.0, reorder_window=2, latency_s=0.05)
            await c.replace("b", "a", qty="0.3", price=bid - 21)
            await c.er(t11="b", t39="E")
            await c.er(t11="b", t41="a", t150="5", t39="0", t38="0.3")
            conn.flush_events()
            await c.quiet(0.3)  # no second replacement, no cancel of the order
            (state,) = await conn.open_orders()
            assert state.quantity == D("0.3") and state.price == bid - 21
            await c.cancel("c", "b")
            await c.er(t11="c", t39="6")
            await c.er(t11="c", t39="4")
            assert await r.open_at_venue() == []
    run(body())


def test_an_unanswered_cancel_of_a_replace_whose_event_comes_while_asking(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Cancel-then-new: the venue carries out the cancel of the old order but its answer is
    lost; its event comes while the gateway asks about it (and places the new order). What
    the question finds out is read against the order as it is then: the venue order the
    cancel was sent for is no longer awaited (``cancel_sent_for`` is None). Compiled, that
    read once raised TypeError (mypy took it for what the replace had set before asking)."""
    caplog.set_level(logging.ERROR, logger="fixgw.orders")

    async def body() -> None:
        async with running(tmp_path, venues=[venue(amend=False)]) as r:
            _speed_up(r)
            conn = r.venue()
            c = await r.client()
            bid = conn.exchange.book(BTC).best_bid()
            assert bid is not None
            await c.order("a", price=bid - 20, qty="0.2", tif="1")
            await c.er(t11="a", t39="0")
            old = (await r.open_at_venue())[0]
            order = r.orders.book.by_cl(sid(), "a")
            assert order is not None
            query = PaperConnector.query_order
            asked: list[str] = []

            async def slow(symbol: str, client_order_id: str, *,
                           venue_order_id: str | None = None) -> OrderState | None:
                asked.append(client_order_id)
                if client_order_id == old and asked.count(old) == 1:
                    # the first answer waits until the cancel's event has been taken: the
                    # replace no longer awaits the old venue order when the answer is read
                    pending = order.pending
                    assert pending is not None and pending.cancel_sent_for == old
                    await until(lambda: pending.cancel_sent_for is None)
                return await query(conn, symbol, client_order_id, venue_order_id=venue_order_id)

            monkeypatch.setattr(conn, "query_order", slow)
            conn.update_faults(timeout_next=1, timeout_mode="accepted")
            await c.replace("b", "a", qty="0.3", price=bid - 21)
            await c.er(t11="b", t39="E")
            await c.er(t11="b", t41="a", t150="5", t39="0", t38="0.3")
            await r.orders.idle()
            assert old in asked  # the gateway asked about the old order
            (state,) = await conn.open_orders()  # one replacement, nothing refused
            assert state.quantity == D("0.3") and state.price == bid - 21
            await c.quiet(0.2)
        failed = [rec.getMessage()[:80] for rec in caplog.records
                  if rec.levelno >= logging.ERROR and rec.name == "fixgw.orders"]
        assert failed == [], failed
    run(body())
