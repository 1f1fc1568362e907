"""CcxtConnector's per-order state stays bounded: hundreds of orders placed and ended (filled
or canceled, by polling or by the stream) leave nothing in the maps of the watched orders, the
ended ones are kept up to ``closed_orders_kept``, and a late trade of an ended order is still
mapped to its client order id (from what is kept, else by asking the venue) or dropped as a
duplicate."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from venue_common.support import drain, run, until

from connectors.base import OrderCanceled, OrderFilled, RejectReason, VenueRejected
from connectors.ccxt import CcxtConnector

from .fake import FakeExchange
from .test_connector_fake import WatchingFake, limit, settings, started

N = 300
LIVE = ("_vid", "_coid", "_symbol_of", "_requests", "_acked", "_filled", "_terminal_waits",
        "_owed", "_open")
"""The per-order structures that must hold only the orders still watched."""


def live_sizes(conn: CcxtConnector) -> dict[str, int]:
    return {name: len(getattr(conn, name)) for name in LIVE}


def empty() -> dict[str, int]:
    return dict.fromkeys(LIVE, 0)


def late_trade(fake: FakeExchange, oid: str, trade_id: str) -> dict[str, Any]:
    """A trade of order ``oid`` that shows up after the order ended."""
    o = fake.orders[oid]
    trade = {"id": trade_id, "order": oid, "symbol": o["symbol"], "side": o["side"],
             "price": 97000.0, "amount": 0.001, "timestamp": fake.server_ms + 10 * N,
             "takerOrMaker": "maker", "fee": {"cost": 0.01, "currency": "USDT"}, "info": {}}
    fake.trades.append(trade)
    return trade


def test_polling_many_orders_leave_nothing_behind() -> None:
    async def go() -> None:
        conn, fake = await started()
        vids: dict[str, str] = {}
        for i in range(N):
            ack = await conn.place(limit(f"o{i}", qty="0.01", price="97000"))
            vids[f"o{i}"] = ack.venue_order_id
            if i % 3 == 0:  # filled outright
                fake.fill(ack.venue_order_id, 0.01, 97000.0, f"t{i}")
            elif i % 3 == 1:  # partly filled, then canceled on request
                fake.fill(ack.venue_order_id, 0.004, 97000.0, f"t{i}")
                await conn.cancel("BTC/USDT", f"o{i}")
            # else: stays open for now
        assert len(conn.tracked) == N - N // 3
        for i in range(2, N, 3):  # the rest end at the venue: canceled by someone else
            fake.orders[vids[f"o{i}"]]["status"] = "canceled"
        for _ in range(3):
            await conn.poll_once()
        evs = drain(conn)
        fills = [e for e in evs if isinstance(e, OrderFilled)]
        assert len(fills) == len({f.trade_id for f in fills}) == 2 * N // 3
        assert all(f.client_order_id == f"o{f.trade_id[1:]}" for f in fills)
        assert len([e for e in evs if isinstance(e, OrderCanceled)]) == 2 * N // 3
        assert live_sizes(conn) == empty()
        assert len(conn._ended) == N and len(conn._ended_coid) == N
        assert len(conn._tasks) == 1  # the polling loop

        # a late trade of an ended order: mapped from what is kept, without asking the venue
        calls = len(fake.calls)
        late_trade(fake, vids["o5"], "late5")
        got = await conn.fills_since(0)
        assert not any(c[0] == "fetch_order" for c in fake.calls[calls:])
        by_trade = {f.trade_id: f.client_order_id for f in got}
        assert by_trade["late5"] == "o5"
        assert all(c == f"o{t[1:]}" for t, c in by_trade.items() if t.startswith("t"))
        dropped = conn.duplicates_dropped
        for f in got:  # the catch-up's emit: only the new one goes out
            conn.emit(f)
        (ev,) = drain(conn)
        assert isinstance(ev, OrderFilled) and ev.trade_id == "late5"
        assert ev.client_order_id == "o5" and conn.duplicates_dropped == dropped + len(got) - 1
        assert live_sizes(conn) == empty()  # nothing came back to life
        assert conn._ended["o5"].filled == Decimal("0.001")
        # a cancel of an ended order is too late, as before (it was acknowledged)
        with pytest.raises(VenueRejected) as ei:
            await conn.cancel("BTC/USDT", "o0")
        assert ei.value.reason is RejectReason.TOO_LATE
        assert live_sizes(conn) == empty()
        await conn.close()
    run(go())


def test_ended_orders_kept_are_bounded_and_older_ones_asked_of_the_venue() -> None:
    async def go() -> None:
        conn, fake = await started(options={"closed_orders_kept": 50})
        vids = []
        for i in range(N):
            ack = await conn.place(limit(f"o{i}"))
            vids.append(ack.venue_order_id)
            await conn.cancel("BTC/USDT", f"o{i}")
        assert live_sizes(conn) == empty()
        assert len(conn._ended) == 50 and len(conn._ended_coid) == 50
        assert "o0" not in conn._ended and f"o{N - 1}" in conn._ended
        drain(conn)
        # o0 is forgotten: its late trade is resolved by a query, to the right order
        calls = len(fake.calls)
        late_trade(fake, vids[0], "late0")
        late_trade(fake, vids[N - 1], "lateN")
        got = {f.trade_id: f.client_order_id for f in await conn.fills_since(0)}
        assert got == {"late0": "o0", "lateN": f"o{N - 1}"}
        assert [c[1][0] for c in fake.calls[calls:] if c[0] == "fetch_order"] == [vids[0]]
        assert len(conn._ended) <= 50 and len(conn._ended_coid) <= 50
        # so is a query of a forgotten order (by a scan: the fake is no known venue)
        st = await conn.query_order("BTC/USDT", "o1")
        assert st is not None and st.venue_order_id == vids[1]
        await conn.close()
    run(go())


def test_streaming_many_orders_leave_nothing_behind() -> None:
    async def go() -> None:
        fake = WatchingFake()
        conn = CcxtConnector(settings(), "fake", {"events": "stream"}, exchange=fake)
        await conn.start()
        vids: dict[str, str] = {}
        for i in range(N):
            ack = await conn.place(limit(f"o{i}", qty="0.01", price="97000"))
            vid = vids[f"o{i}"] = ack.venue_order_id
            if i % 2 == 0:  # filled: the trade before the order's update, or after it
                fake.fill(vid, 0.01, 97000.0, f"t{i}")
                if i % 4 == 0:
                    fake.trade_q.put_nowait(fake.trades[-1])
                    fake.order_q.put_nowait(dict(fake.orders[vid]))
                else:
                    fake.order_q.put_nowait(dict(fake.orders[vid]))
                    fake.trade_q.put_nowait(fake.trades[-1])
            else:  # partly filled, then canceled at the venue
                fake.fill(vid, 0.004, 97000.0, f"t{i}")
                fake.orders[vid]["status"] = "canceled"
                fake.order_q.put_nowait(dict(fake.orders[vid]))
                fake.trade_q.put_nowait(fake.trades[-1])
        await until(lambda: fake.order_q.empty() and fake.trade_q.empty()
                    and not conn.tracked and not conn._owed)
        evs = drain(conn)
        fills = [e for e in evs if isinstance(e, OrderFilled)]
        assert len(fills) == len({f.trade_id for f in fills}) == N
        assert all(f.client_order_id == f"o{f.trade_id[1:]}" for f in fills)
        assert len([e for e in evs if isinstance(e, OrderCanceled)]) == N // 2
        assert live_sizes(conn) == empty()
        assert len(conn._ended) == N
        # a late duplicate of a trade is dropped; a late new one goes to its own order
        dropped = conn.duplicates_dropped
        fake.trade_q.put_nowait(fake.trades[0])
        fake.trade_q.put_nowait(late_trade(fake, vids["o7"], "late7"))
        await until(lambda: fake.trade_q.empty() and not conn._events.empty())
        (ev,) = drain(conn)
        assert isinstance(ev, OrderFilled) and ev.client_order_id == "o7"
        assert conn.duplicates_dropped == dropped + 1
        # a trade of an order placed elsewhere is resolved over REST; its task goes away
        raw = await fake.create_order("BTC/USDT", "limit", "sell", "0.01", "97000",
                                      {"clientOrderId": "other"})
        fake.trade_q.put_nowait(late_trade(fake, raw["id"], "x1"))
        (ev,) = await until(lambda: drain(conn) or None)
        assert isinstance(ev, OrderFilled) and ev.client_order_id == "other"
        await until(lambda: len(conn._tasks) == 2)  # the two watch loops
        assert live_sizes(conn) == empty()
        await conn.close()
    run(go())
