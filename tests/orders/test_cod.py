"""Cancel-on-disconnect: the session setting (off, disconnect, logout, both), the grace period,
the per-connection Logon tag 8013, orders not yet acknowledged, orders with a replace in flight;
the outcomes reach the client as ExecutionReports when it logs on again."""

from __future__ import annotations

from pathlib import Path

import pytest
from server.harness import run

from connectors.paper.venue import PaperConnector

from .support import BTC, ETH, D, OrderClient, Run, running, session, sid, unreachable_for_cancels


async def _two_resting(r: Run, c: OrderClient) -> list[str]:
    book = r.venue().exchange
    btc, eth = book.book(BTC).best_bid(), book.book(ETH).best_bid()
    assert btc is not None and eth is not None
    await c.order("b", price=btc - 50)
    await c.order("e", symbol=ETH, price=eth - 5)
    return [(await c.er(t11=cl, t39="0"))[198] for cl in ("b", "e")]


async def _leave(c: OrderClient, how: str) -> None:
    if how == "logout":
        await c.logout()
    else:
        await c.close()


@pytest.mark.parametrize(
    ("mode", "how", "flag", "cancels"),
    [
        ("off", "disconnect", None, False),
        ("off", "logout", None, False),
        ("disconnect", "disconnect", None, True),
        ("disconnect", "logout", None, False),
        ("logout", "logout", None, True),
        ("logout", "disconnect", None, False),
        ("both", "disconnect", None, True),
        ("both", "logout", None, True),
        ("off", "disconnect", "Y", True),
        ("both", "logout", "N", False),
    ],
)
def test_cancel_on_disconnect_modes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str, how: str, flag: str | None,
    cancels: bool,
) -> None:
    async def body() -> None:
        async with running(tmp_path, [session(cancel_on_disconnect=mode)]) as r:
            bulk: list[str | None] = []
            cancel_all = PaperConnector.cancel_all
            conn = r.venue()

            async def counting(symbol: str | None = None) -> int:
                bulk.append(symbol)
                return await cancel_all(conn, symbol)

            monkeypatch.setattr(conn, "cancel_all", counting)
            c = await r.client(extra=[(8013, flag)] if flag else ())
            await _two_resting(r, c)
            await _leave(c, how)
            await r.logged_out(sid())
            await r.orders.idle()
            assert len(await r.open_at_venue()) == (0 if cancels else 2)
            assert bulk == ([None] if cancels else [])  # every open order is ours: bulk cancel
            c = await r.reconnect(c)
            if cancels:
                reports = [await c.er(t150="4", t39="4", t151="0") for _ in range(2)]
                assert {m[11] for m in reports} == {"b", "e"}
                assert all(m[58].startswith("cancel on disconnect") for m in reports), reports
                assert all(41 not in m for m in c.received if m.msg_type == "8")
            await c.quiet(0.2)
    run(body())


def test_grace_period_and_only_the_sessions_orders(tmp_path: Path) -> None:
    async def body() -> None:
        sessions = [session("C1", cancel_on_disconnect="both", cancel_on_disconnect_grace=0.5),
                    session("C2")]
        async with running(tmp_path, sessions) as r:
            mine = await r.client("C1")
            theirs = await r.client("C2")
            await _two_resting(r, mine)
            await _two_resting(r, theirs)
            # back within the grace period: nothing is cancelled
            await mine.close()
            await r.logged_out(sid("C1"))
            mine = await r.reconnect(mine)
            await r.orders.idle()
            assert len(await r.open_at_venue()) == 4
            await mine.quiet(0.2)
            # not back: after the grace period its orders (only its) are cancelled, one by one
            await mine.logout()
            await r.logged_out(sid("C1"))
            await r.orders.idle()
            assert len(await r.open_at_venue()) == 2
            mine = await r.reconnect(mine)
            assert {(await mine.er(t39="4"))[11] for _ in range(2)} == {"b", "e"}
            await theirs.quiet(0.2)
    run(body())


def test_unacknowledged_and_replacing_orders_are_cancelled(tmp_path: Path) -> None:
    async def body() -> None:
        async with running(tmp_path, [session(cancel_on_disconnect="disconnect")]) as r:
            c = await r.client()
            bid = r.venue().exchange.book(BTC).best_bid()
            assert bid is not None
            await c.order("a", price=bid - 50)
            await c.er(t11="a", t39="0")
            r.venue().update_faults(latency_s=0.3)
            await c.replace("a2", "a", qty="0.2", price=bid - 51)  # in flight at the venue
            await c.order("n", price=bid - 52)  # not acknowledged yet
            await c.er(t11="a2", t39="E")
            await c.close()
            await r.logged_out(sid())
            await r.orders.idle()
            assert await r.open_at_venue() == []
            r.venue().update_faults(latency_s=0.0)
            c = await r.reconnect(c)
            got = [await c.er() for _ in range(4)]
            assert {(m[11], m[150]) for m in got} == {("a2", "5"), ("n", "0"), ("a2", "4"),
                                                      ("n", "4")}
            assert [m[150] for m in got if m[11] == "a2"] == ["5", "4"]
            assert [m[150] for m in got if m[11] == "n"] == ["0", "4"]
            await c.quiet(0.2)
            assert D(0) == sum((D(m[14]) for m in c.received if m.msg_type == "8"), D(0))
    run(body())


def test_a_cancel_the_venue_cannot_take_is_asked_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Invariant 5: the venue is unreachable when cancel-on-disconnect fires; the cancel is
    asked again until it is taken, and the client learns of it at its next Logon."""
    async def body() -> None:
        async with running(tmp_path, [session(cancel_on_disconnect="disconnect")]) as r:
            r.orders.patience.retry = 0.05
            conn = r.venue()
            failures = unreachable_for_cancels(r, monkeypatch, 3)
            c = await r.client()
            bid = conn.exchange.book(BTC).best_bid()
            assert bid is not None
            await c.order("b", price=bid - 50)
            await c.er(t11="b", t39="0")
            await _leave(c, "disconnect")
            await r.logged_out(sid())
            await r.orders.idle()
            assert not failures and await r.open_at_venue() == []
            c = await r.reconnect(c)
            m = await c.er(t11="b", t150="4", t39="4")
            assert m[58].startswith("cancel on disconnect")
    run(body())
