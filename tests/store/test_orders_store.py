"""Order-side store (gateway.store.orders) against SQLite and PostgreSQL (``store_url``)."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any, TypeVar

import pytest
from sqlalchemy import create_engine
from sqlalchemy import event as sa_event
from sqlalchemy.exc import IntegrityError

from connectors.base import OrderType, Side, TimeInForce
from gateway.orders.lifecycle import OrdStatus
from gateway.orders.model import Order, OrderEvent, Pending, order_from_json, order_to_json
from gateway.store.orders import _unreported_events
from gateway.store.records import CopyRecord, FillRecord, OrderAppend
from gateway.store.rows import build_append, delivered_row
from gateway.store.store import SessionStore

from .unchecked import unchecked_save

T = TypeVar("T")
SID = "FIX.4.4:GW->CLIENT1"
SID2 = "FIX.4.4:GW->CLIENT2"
NS = 1_714_566_645_123_456_789


def with_store(url: str, body: Callable[[SessionStore], Awaitable[T]]) -> T:
    async def main() -> T:
        async with SessionStore(url) as store:
            return await body(store)

    return asyncio.run(main())


def order(
    order_id: str, *, session_id: str = SID, cl_ord_id: str | None = None, **kw: Any
) -> Order:
    fields: dict[str, Any] = {
        "order_id": order_id,
        "session_id": session_id,
        "cl_ord_id": cl_ord_id or f"CL-{order_id}",
        "account": "acct-1",
        "venue": "paper",
        "symbol": "BTC/USDT",
        "side": Side.BUY,
        "type": OrderType.LIMIT,
        "quantity": Decimal("1.50000000"),
        "price": Decimal("65000.10"),
        "stop_price": None,
        "time_in_force": TimeInForce.GTC,
        "expire_time_ns": None,
        "post_only": False,
        "reduce_only": False,
        "created_ns": NS,
        "updated_ns": NS,
    }
    fields.update(kw)
    return Order(**fields)


def event(
    event_id: int,
    order_id: str = "O1",
    kind: str = "accepted",
    *,
    exec_id: str | None = None,
    session_id: str = SID,
    data: dict[str, Any] | None = None,
) -> OrderEvent:
    return OrderEvent(
        event_id=event_id,
        order_id=order_id,
        session_id=session_id,
        kind=kind,
        ts_ns=NS + event_id,
        data=data if data is not None else {"n": event_id},
        exec_id=exec_id,
    )


def fill(trade_id: str, order_id: str = "O1", *, venue: str = "paper", **kw: Any) -> FillRecord:
    fields: dict[str, Any] = {
        "venue": venue,
        "trade_id": trade_id,
        "order_id": order_id,
        "quantity": Decimal("0.10000000"),
        "price": Decimal("65000.10"),
        "fee": Decimal("0.0000650001"),
        "fee_currency": "USDT",
        "liquidity": "maker",
        "ts_ns": NS,
    }
    fields.update(kw)
    return FillRecord(**fields)


def _as_order(snapshot: dict[str, Any] | None) -> Order | None:
    """An order of what the store gives back (its snapshot)."""
    return None if snapshot is None else order_from_json(snapshot)


def exact(o: Order | None) -> dict[str, Any]:
    """Everything about an order, Decimals compared by their exact string (1.50 != 1.5)."""
    assert o is not None
    return order_to_json(o)


# --- orders --------------------------------------------------------------------------------------


def test_order_round_trip_is_exact(store_url: str) -> None:
    o = order(
        "O1",
        side=Side.SELL,
        type=OrderType.STOP_LIMIT,
        quantity=Decimal("0.00012345"),
        price=Decimal("65000.10"),
        stop_price=Decimal("64999.990"),
        time_in_force=TimeInForce.GTD,
        expire_time_ns=NS + 10**12,
        post_only=True,
        status=OrdStatus.PENDING_REPLACE,
        cum_qty=Decimal("0.00002000"),
        avg_px=Decimal("65000.123456789012345678"),
        venue_order_id="V-77",
        venue_client_order_id="gw-O1-2",
        venue_version=2,
        orig_cl_ord_id="CL-0",
        pending=Pending(
            "replace", "CL-2", "CL-O1", Decimal("0.00020000"), Decimal("65001.5"), None
        ),
        text="ünïcode ✓",
        last_event_id=7,
        exec_count=3,
        trade_ids={"T2", "T1"},
    )
    plain = order("O2", pending=None, price=None, type=OrderType.MARKET)

    async def body(store: SessionStore) -> None:
        await store.append_order_events([event(7, "O1")], [o, plain])
        assert exact(_as_order(await store.load_order("O1"))) == exact(o)
        assert _as_order(await store.load_order("missing")) is None

    with_store(store_url, body)

    async def after_restart(store: SessionStore) -> None:
        loaded = _as_order(await store.load_order("O1"))
        assert exact(loaded) == exact(o)
        assert loaded == o  # dataclass equality too: enums, Pending, set of trade ids
        assert loaded is not None and str(loaded.avg_px) == "65000.123456789012345678"
        assert exact(_as_order(await store.load_order("O2"))) == exact(plain)

    with_store(store_url, after_restart)


def _created(event_id: int, o: Order) -> OrderEvent:
    """An order's ``created`` event, as the gateway stores it with the order (its ClOrdID in
    the events' index of ClOrdIDs, by which ``find_order`` finds it)."""
    return event(event_id, o.order_id, "created", session_id=o.session_id,
                 data={"order": order_to_json(o)})


def test_open_orders_and_find_order(store_url: str) -> None:
    """Orders stored as the gateway stores them, each with its ``created`` event (a replace's
    ClOrdID with its ``replace_requested`` event): the open ones are read at start, and an order
    is found by the ClOrdID it has now."""
    async def body(store: SessionStore) -> None:
        orders = [
            order("A", status=OrdStatus.PENDING_NEW),
            order("B", status=OrdStatus.NEW),
            order("C", status=OrdStatus.PARTIALLY_FILLED, cum_qty=Decimal("0.5")),
            order("D", status=OrdStatus.PENDING_CANCEL),
            order("E", status=OrdStatus.FILLED),
            order("F", status=OrdStatus.CANCELED),
            order("G", status=OrdStatus.REJECTED, session_id=SID2),
        ]
        await store.append_order_events([_created(i + 1, o) for i, o in enumerate(orders)],
                                        orders)
        assert [d["order_id"] for d in await store.load_open_orders()] == ["A", "B", "C", "D"]

        b = dataclasses.replace(orders[1], status=OrdStatus.FILLED, last_event_id=2)
        await store.append_order_events([], [b])
        assert [d["order_id"] for d in await store.load_open_orders()] == ["A", "C", "D"]

        found = _as_order(await store.find_order(SID, "CL-C"))
        assert found is not None and found.order_id == "C"
        assert _as_order(await store.find_order(SID2, "CL-C")) is None  # ClOrdIDs are per session
        assert _as_order(await store.find_order(SID, "nope")) is None

        # a ClOrdID reused after its order ended: the latest updated one is found
        old = order("H1", cl_ord_id="REUSED", status=OrdStatus.CANCELED, updated_ns=NS + 1)
        new = order("H2", cl_ord_id="REUSED", updated_ns=NS + 2)
        await store.append_order_events([_created(11, old), _created(12, new)], [new, old])
        found = _as_order(await store.find_order(SID, "REUSED"))
        assert found is not None and found.order_id == "H2"

        # after a replace the order is known by its new ClOrdID
        c = dataclasses.replace(
            orders[2], cl_ord_id="CL-C2", orig_cl_ord_id="CL-C", last_event_id=13
        )
        replace = event(13, "C", "replace_requested",
                        data={"cl_ord_id": "CL-C2", "orig_cl_ord_id": "CL-C"})
        await store.append_order_events([replace], [c])
        found = _as_order(await store.find_order(SID, "CL-C2"))
        assert found is not None and found.order_id == "C"
        assert _as_order(await store.find_order(SID, "CL-C")) is None

    with_store(store_url, body)


def test_find_order_by_past_cl_names_each_clordid_of_the_chain_exactly(store_url: str) -> None:
    """A ClOrdID an order's chain had (its NewOrderSingle's, a replace's, a cancel's) finds the
    order; ClOrdIDs are compared as FIX has them, case included, within their session."""
    created = _created

    def request(event_id: int, order_id: str, kind: str, cl: str, orig: str) -> OrderEvent:
        return event(event_id, order_id, kind, data={"cl_ord_id": cl, "orig_cl_ord_id": orig})

    async def body(store: SessionStore) -> None:
        a = order("A", cl_ord_id="abc2", orig_cl_ord_id="abc1", status=OrdStatus.CANCELED,
                  last_event_id=4)
        b = order("B", cl_ord_id="other", session_id=SID2)
        await store.append_order_events([
            created(1, dataclasses.replace(a, cl_ord_id="abc", orig_cl_ord_id=None)),
            request(2, "A", "replace_requested", "abc1", "abc"),
            event(3, "A", "accepted", data={"cl_ord_id": "not-a-chain-id"}),
            request(4, "A", "cancel_requested", "abc2", "abc1"),
            created(5, b),
        ], [a, b])
        for cl in ("abc", "abc1", "abc2"):
            found = _as_order(await store.find_order_by_past_cl(SID, cl))
            assert found is not None and found.order_id == "A", cl
        for cl in ("ABC", "Abc1", "ab%", "ab_", "not-a-chain-id"):
            assert await store.find_order_by_past_cl(SID, cl) is None, cl
        assert await store.find_order_by_past_cl(SID, "other") is None  # (SID2's)
        found = _as_order(await store.find_order_by_past_cl(SID2, "other"))
        assert found is not None and found.order_id == "B"

        # a ClOrdID used again after its order ended: the latest order that had it
        c = order("C", cl_ord_id="abc")
        await store.append_order_events([created(6, c)], [c])
        found = _as_order(await store.find_order_by_past_cl(SID, "abc"))
        assert found is not None and found.order_id == "C"

    with_store(store_url, body)


def test_a_snapshot_never_goes_back_to_an_older_event(store_url: str) -> None:
    async def body(store: SessionStore) -> None:
        newer = order("O1", status=OrdStatus.NEW, last_event_id=5)
        older = order("O1", status=OrdStatus.PENDING_NEW, last_event_id=3)
        await store.append_order_events([], [newer])
        await store.append_order_events([], [older])  # a late retry, say
        assert exact(_as_order(await store.load_order("O1"))) == exact(newer)
        # the same within one group commit, in either order
        newest = order("O1", status=OrdStatus.FILLED, last_event_id=8)
        await asyncio.gather(
            store.append_order_events([], [newest]), store.append_order_events([], [older])
        )
        assert exact(_as_order(await store.load_order("O1"))) == exact(newest)
        assert await store.load_open_orders() == []

    with_store(store_url, body)


# --- events -------------------------------------------------------------------------------------


def test_events_replay_in_event_id_order_with_paging(store_url: str) -> None:
    async def body(store: SessionStore) -> None:
        assert await store.max_event_id() == 0
        assert await store.replay_events(0, 10) == []
        # 25 events appended by 5 concurrent callers, ids interleaved across the calls
        batches = [[event(i, f"O{i % 3}") for i in range(k, 26, 5)] for k in range(1, 6)]
        await asyncio.gather(*(store.append_order_events(b, []) for b in reversed(batches)))
        assert await store.max_event_id() == 25

        pages, after = [], 0
        while page := await store.replay_events(after, 10):
            pages.append([e.event_id for e in page])
            after = page[-1].event_id
        assert pages == [list(range(1, 11)), list(range(11, 21)), list(range(21, 26))]
        assert await store.replay_events(3, 2) == [event(4, "O1"), event(5, "O2")]

    with_store(store_url, body)


def test_event_round_trip_and_idempotent_append(store_url: str) -> None:
    data = {"quantity": Decimal("0.10000000"), "price": "65000.10", "nested": {"a": [1, None]}}
    stored = event(1, "O1", "fill", exec_id="E-1", data=data)

    async def body(store: SessionStore) -> None:
        await store.append_order_events([stored, event(2, "O1", "status")], [])
        # an event_id already stored is skipped (a retried append), not duplicated or changed
        await store.append_order_events([event(1, "O1", "other", data={"x": 1})], [])
        replayed = await store.replay_events(0, 10)
        assert [e.event_id for e in replayed] == [1, 2]
        first = replayed[0]
        assert (first.kind, first.exec_id, first.ts_ns) == ("fill", "E-1", NS + 1)
        # a Decimal in event data comes back as its exact string
        assert first.data == {
            "quantity": "0.10000000",
            "price": "65000.10",
            "nested": {"a": [1, None]},
        }
        assert replayed[1].exec_id is None
        with pytest.raises(TypeError):
            await store.append_order_events([event(3, data={"bad": object()})], [])
        with pytest.raises(ValueError):
            await store.append_order_events([event(0)], [])

    with_store(store_url, body)


def test_exec_id_is_unique_and_a_duplicate_fails_only_its_caller(store_url: str) -> None:
    async def body(store: SessionStore) -> None:
        await store.append_order_events([event(1, exec_id="E-1")], [])
        results = await asyncio.gather(
            store.append_order_events([event(2, exec_id="E-2")], [order("O2", last_event_id=2)]),
            store.append_order_events([event(3, exec_id="E-1")], [order("O3", last_event_id=3)]),
            store.append_order_events([event(4)], [], [fill("T4")]),
            return_exceptions=True,
        )
        assert results[0] is None and results[2] is None
        assert isinstance(results[1], IntegrityError)
        # the failed append left nothing behind (its order snapshot neither), the others did
        assert [e.event_id for e in await store.replay_events(0, 10)] == [1, 2, 4]
        assert _as_order(await store.load_order("O3")) is None
        assert _as_order(await store.load_order("O2")) is not None
        assert await store.known_trade_ids("paper", ["T4"]) == {"T4"}
        # events without an ExecID are not constrained
        await store.append_order_events([event(5), event(6)], [])
        assert await store.max_event_id() == 6

    with_store(store_url, body)


# --- fills --------------------------------------------------------------------------------------


def test_fills_are_deduplicated_by_venue_and_trade_id(store_url: str) -> None:
    f1 = fill("T1", ts_ns=NS + 1)
    f2 = fill(
        "T2", quantity=Decimal("1E-8"), fee=None, fee_currency=None, liquidity=None, ts_ns=NS + 2
    )

    async def body(store: SessionStore) -> None:
        assert await store.known_trade_ids("paper", []) == set()
        await store.append_order_events([event(1, "O1", "fill")], [], [f2, f1])
        # the same trade again (a replayed venue event), with other amounts: ignored
        await store.append_order_events([], [], [dataclasses.replace(f1, quantity=Decimal(9))])
        # and twice within one group commit
        await asyncio.gather(
            store.append_order_events([], [], [fill("T3", ts_ns=NS + 3)]),
            store.append_order_events([], [], [fill("T3", quantity=Decimal(7), ts_ns=NS + 3)]),
        )
        # the same trade id at another venue is another trade
        await store.append_order_events([], [], [fill("T1", "O9", venue="other")])

        stored = await store.fills_for_order("O1")
        assert [f.trade_id for f in stored] == ["T1", "T2", "T3"]
        assert stored[0] == f1 and str(stored[0].fee) == "0.0000650001"
        assert stored[1] == f2 and str(stored[1].quantity) == "1E-8"
        assert str(stored[0].quantity) == "0.10000000"  # exact, trailing zeros kept
        assert stored[2].quantity == Decimal("0.1")  # the first of the two kept
        assert await store.fills_for_order("O9") == [fill("T1", "O9", venue="other")]
        assert await store.fills_for_order("none") == []

        assert await store.known_trade_ids("paper", ["T1", "T3", "T9", "T1"]) == {"T1", "T3"}
        assert await store.known_trade_ids("other", ["T1", "T2"]) == {"T1"}
        many = [f"X{i}" for i in range(1200)]  # more than one IN (...) chunk
        await store.append_order_events([], [], [fill(t, "O2") for t in many[::2]])
        assert await store.known_trade_ids("paper", many) == set(many[::2])

    with_store(store_url, body)


# --- reports / unreported events ----------------------------------------------------------------


def test_unreported_events(store_url: str) -> None:
    async def body(store: SessionStore) -> None:
        await store.append_order_events(
            [
                event(1, "O1", exec_id="E1"),
                event(2, "O1"),  # no ExecID: never reported to anyone
                event(3, "O2", exec_id="E3"),
                event(4, "O3", exec_id="E4", session_id=SID2),
                event(5, "O1", exec_id="E5"),
            ],
            [],
        )
        assert [e.event_id for e in await store.unreported_events(SID)] == [1, 3, 5]
        await store.save(SID, sent=[(1, b"8=..E3")], next_sender=2, reports=[("E3", 1)])
        assert [e.event_id for e in await store.unreported_events(SID)] == [1, 5]
        assert [e.event_id for e in await store.unreported_events(SID2)] == [4]
        assert await store.unreported_events("FIX.4.4:GW->NOBODY") == []
        # reported twice (a resend with a new MsgSeqNum): still reported
        await store.save(SID, sent=[(2, b"8=..E1"), (3, b"8=..E5")], reports=[("E1", 2), ("E5", 3)])
        await store.save(SID, sent=[(4, b"8=..E1")], reports=[("E1", 4)])
        assert await store.unreported_events(SID) == []

    with_store(store_url, body)

    async def after_restart(store: SessionStore) -> None:
        assert await store.unreported_events(SID) == []
        assert [e.event_id for e in await store.unreported_events(SID2)] == [4]

    with_store(store_url, after_restart)


def test_a_report_committed_with_its_event_is_kept_in_the_events_row(store_url: str) -> None:
    """The usual case (a session's commit: the reports it sends and their events): the event's
    row is inserted with the MsgSeqNum, and the unreported events are read from a partial
    index that holds only those (SQLite's plan says so). A report committed without its event
    (told at a Logon; or sent while its event waits in memory for the store, stored after
    it) is kept in ``reports``: either way the event is reported."""
    async def body(store: SessionStore) -> list[tuple[Any, ...]]:
        append = build_append([event(1, "O1", exec_id="E1"), event(2, "O1", exec_id="E2"),
                               event(3, "O1")], [])
        await store.save(SID, sent=[(1, b"8=..E1")], next_sender=2, reports=[("E1", 1)],
                         appends=[append])
        assert [e.event_id for e in await store.unreported_events(SID)] == [2]
        # an event stored again (a batch retried after a lost answer) keeps what it had
        await store.append_order_events([event(1, "O1", exec_id="E1")], [])
        # a report sent later (at the next Logon), in a commit without its event
        await store.save(SID, sent=[(2, b"8=..E2")], next_sender=3, reports=[("E2", 2)])
        assert await store.unreported_events(SID) == []
        # a report committed before its event is (the event was kept in memory meanwhile)
        await store.save(SID, sent=[(3, b"8=..E4")], next_sender=4, reports=[("E4", 3)])
        await store.append_order_events([event(4, "O1", exec_id="E4")], [])
        assert await store.unreported_events(SID) == []

        def read(conn: Any) -> list[tuple[Any, ...]]:
            return [tuple(r) for r in conn.exec_driver_sql(
                "SELECT event_id, report_seq FROM order_events ORDER BY event_id").all()]
        return await store.writer.query(read)

    assert with_store(store_url, body) == [(1, 1), (2, None), (3, None), (4, None)]
    if store_url.startswith("sqlite"):
        engine = create_engine(store_url)
        seen: list[tuple[str, Any]] = []
        sa_event.listen(engine, "before_cursor_execute",
                        lambda _c, _cur, sql, params, _ctx, _many: seen.append((sql, params)))
        with engine.connect() as conn:
            _unreported_events(conn, SID)
            (sql, params), = seen
            plan = " ".join(str(r[-1]) for r in conn.exec_driver_sql(
                "EXPLAIN QUERY PLAN " + sql, params).all())
        engine.dispose()
        assert "ix_order_events_unreported" in plan, plan


DC = "FIX.4.4:GW->DROP"
DC2 = "FIX.4.4:GW->DROP2"


def test_drop_copies_stored_with_their_event_and_delivered_by_a_message(store_url: str) -> None:
    """A copy is stored with the event it copies (once, however often it is stored again),
    read back in event order until the drop copy session's message that carries it records
    its MsgSeqNum, after a restart too."""
    def copy(n: int, session_id: str = DC) -> CopyRecord:
        return CopyRecord(session_id, f"E{n}", n, SID, NS + n,
                          ((6, b"0"), (17, f"E{n}".encode()), (58, "caf\u00e9".encode())))

    async def body(store: SessionStore) -> None:
        for n in (3, 1, 2):  # stored out of order: read back by event id
            await store.append_built(build_append([event(n, exec_id=f"E{n}")], [],
                                                  copies=[copy(n), copy(n, DC2)]))
        await store.append_built(build_append([], [], copies=[copy(1)]))  # again: kept once
        got = await store.undelivered_copies(DC, 0, 10)
        assert [c.exec_id for c in got] == ["E1", "E2", "E3"]
        assert got[0] == copy(1)
        assert [c.exec_id for c in await store.undelivered_copies(DC, 1, 1)] == ["E2"]
        await store.save(DC, sent=[(7, b"8=..E2")], next_sender=8,
                         appends=[OrderAppend((), (), (), delivered=(delivered_row(DC, "E2", 7),))])
        assert [c.exec_id for c in await store.undelivered_copies(DC, 0, 10)] == ["E1", "E3"]
        assert len(await store.undelivered_copies(DC2, 0, 10)) == 3  # another drop copy's own
        # stored again after its delivery (events kept through an outage): still delivered
        await store.append_built(build_append([], [], copies=[copy(2)]))
        assert [c.exec_id for c in await store.undelivered_copies(DC, 0, 10)] == ["E1", "E3"]

    with_store(store_url, body)

    async def after_restart(store: SessionStore) -> None:
        assert [c.exec_id for c in await store.undelivered_copies(DC, 0, 10)] == ["E1", "E3"]

    with_store(store_url, after_restart)


def test_reports_commit_atomically_with_their_save(store_url: str) -> None:
    async def body(store: SessionStore) -> None:
        await store.append_order_events(
            [event(1, exec_id="E1"), event(2, exec_id="E2"), event(3, exec_id="E3")], []
        )
        results = await asyncio.gather(
            store.save(SID, sent=[(1, b"er-1")], next_sender=2, reports=[("E1", 1)]),
            unchecked_save(store, SID, [(2, b"er-2")], 0, [("E2", 2)]),  # fails
            store.append_order_events([event(4, exec_id="E4")], []),
            return_exceptions=True,
        )
        assert results[0] is None and results[2] is None
        assert isinstance(results[1], IntegrityError)
        # the failed save stored neither its message nor its report
        assert await store.get_sent(SID, 1, 0) == [(1, b"er-1")]
        assert [e.exec_id for e in await store.unreported_events(SID)] == ["E2", "E3", "E4"]
        with pytest.raises(ValueError):
            await store.save(SID, reports=[("", 5)])

    with_store(store_url, body)


def test_reads_see_order_writes_queued_before_them(store_url: str) -> None:
    async def body(store: SessionStore) -> None:
        results = await asyncio.gather(
            store.append_order_events([event(1, exec_id="E1")], [order("O1")], [fill("T1")]),
            store.load_order("O1"),
            store.known_trade_ids("paper", ["T1"]),
            store.unreported_events(SID),
            store.save(SID, sent=[(1, b"x")], next_sender=2, reports=[("E1", 1)]),
            store.unreported_events(SID),
            store.max_event_id(),
        )
        assert results[1] is not None and results[1]["order_id"] == "O1"
        assert results[2] == {"T1"}
        assert [e.exec_id for e in results[3]] == ["E1"]
        assert results[5] == []
        assert results[6] == 1

    with_store(store_url, body)


# --- counters -----------------------------------------------------------------------------------


def test_reserve_never_repeats_across_callers_restarts_and_stores(store_url: str) -> None:
    def blocks(sizes: list[int], firsts: list[int]) -> list[int]:
        return sorted(
            v for first, n in zip(firsts, sizes, strict=True) for v in range(first, first + n)
        )

    sizes = [1 + (i * 7) % 13 for i in range(40)]

    async def body(store: SessionStore) -> list[int]:
        assert await store.reserve("order_id", 1) == 1
        assert await store.reserve("order_id", 100) == 2
        assert await store.reserve("order_id", 1) == 102
        assert await store.reserve("event_id", 5) == 1  # counters are independent
        with pytest.raises(ValueError):
            await store.reserve("order_id", 0)
        with pytest.raises(ValueError):
            await store.reserve("", 1)
        firsts = await asyncio.gather(*(store.reserve("event_id", n) for n in sizes))
        return blocks(sizes, list(firsts))

    values = with_store(store_url, body)
    assert values == list(range(6, 6 + sum(sizes)))  # disjoint and without holes

    # after a restart it continues where it was
    assert with_store(store_url, lambda s: s.reserve("event_id", 3)) == 6 + sum(sizes)
    assert with_store(store_url, lambda s: s.reserve("order_id", 1)) == 103

    # two stores on one database (two gateway nodes) reserving at once: still disjoint
    async def two_nodes() -> list[int]:
        async with SessionStore(store_url) as a, SessionStore(store_url) as b:
            calls = [(a if i % 2 else b).reserve("shared", n) for i, n in enumerate(sizes)]
            return blocks(sizes, list(await asyncio.gather(*calls)))

    assert asyncio.run(two_nodes()) == list(range(1, 1 + sum(sizes)))
