"""The order path when single commits fail (a store double that fails its writes on demand):
what the client was to be told is told, nothing is placed that the store does not have, and a
request refused for the store is not carried out when the client resends it."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Sequence
from decimal import Decimal as D
from pathlib import Path
from typing import Any

from server.harness import run

from gateway.store.store import SessionStore

from .support import BTC, NOW, OrderClient, Run, running, session, sid


class FailingStore(SessionStore):
    """A SQLite store whose writes fail while ``failing`` is set (those whose SQL contains
    ``only``, when given), as a full disk or a read-only database would make them: the
    statements the writer runs with parameters on its cursor (``Writer.execute``: the batch
    writes, the fence check, the outage probe) raise ``error(message)``, which the writer
    raises as SQLAlchemy's. (The writer is compiled: its ``execute`` cannot be replaced on the
    instance, its cursor is wrapped instead.)"""

    failing = False
    only: str | None = None
    error: type[sqlite3.DatabaseError] = sqlite3.OperationalError
    message = "database or disk is full"

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.writer.wrap_cursor = lambda cursor: _FailingCursor(self, cursor)


class _FailingCursor:
    """The writer's DBAPI cursor, failing as its store says. BEGIN, COMMIT and PRAGMAs (run
    without parameters, not by ``Writer.execute``) never fail."""

    def __init__(self, store: FailingStore, cursor: Any) -> None:
        self._store = store
        self._cursor = cursor

    def _check(self, sql: str) -> None:
        store = self._store
        if store.failing and (store.only is None or store.only in sql):
            raise store.error(store.message)

    def execute(self, sql: str, params: Any = None) -> Any:
        if params is None:
            return self._cursor.execute(sql)
        self._check(sql)
        return self._cursor.execute(sql, params)

    def executemany(self, sql: str, rows: Sequence[Any]) -> Any:
        self._check(sql)
        return self._cursor.executemany(sql, rows)

    def __getattr__(self, name: str) -> Any:  # rowcount, fetchone, close, ...
        return getattr(self._cursor, name)


async def _back(r: Run, store: FailingStore) -> None:
    """Mend the store and wait until the gateway accepts Logons again."""
    back = asyncio.Event()
    store.add_availability_listener(lambda up, _why: back.set() if up else None)
    store.failing = False
    if not store.available:
        await asyncio.wait_for(back.wait(), 10)
    await r.gw.settled()
    assert r.gw.acceptor.store_down is None


async def _until_quiet(c: OrderClient, quiet: float = 1.0) -> list[Any]:
    got = []
    try:
        while True:
            got.append(await c.recv(quiet))
    except TimeoutError:
        return got


def test_an_order_whose_intent_the_store_refuses_is_rejected_not_stranded(
    tmp_path: Path,
) -> None:
    """Not an outage (a read-only database, a corrupt page): the order is neither placed nor
    left pending; the client gets a Rejected saying it could not be stored."""
    async def body() -> None:
        async with FailingStore(f"sqlite:///{tmp_path / 'fixgw.db'}") as store, running(
            tmp_path, [session("C1")], store=store, replay_check=False,
        ) as r:
            c = await r.client("C1")
            store.failing, store.only = True, "order_events"
            store.error, store.message = sqlite3.DatabaseError, "database disk image is malformed"
            await c.order("o1", price="90000", tif="1")
            m = await c.er(t11="o1", t39="8", t150="8")
            store.failing = False
            assert "not placed" in m[58] and "could not be stored" in m[58]
            await asyncio.wait_for(r.orders.idle(), 5)
            assert await r.open_at_venue() == []
            assert not [o for o in r.orders.orders.values() if o.cl_ord_id == "o1"]
    run(body())


def test_a_replace_refused_for_the_store_is_not_carried_out_on_its_possdup_resend(
    tmp_path: Path,
) -> None:
    async def body() -> None:
        async with FailingStore(f"sqlite:///{tmp_path / 'fixgw.db'}") as store, running(
            tmp_path, [session("C1")], store=store, replay_check=False,
        ) as r:
            c = await r.client("C1")
            await c.order("r1", price="90000", tif="1", qty="0.1")
            await c.er(t11="r1", t39="0")
            store.failing, store.only = True, "order_events"  # the G's commit is the first
            g_seq = c.next_seq
            g = [(11, "r2"), (21, "1"), (38, "0.2"), (40, "2"), (41, "r1"), (44, "90000"),
                 (54, "1"), (55, BTC), (60, NOW)]
            await c.send("G", g)
            got = await c.expect_closed(5.0)
            assert [m.msg_type for m in got] == ["5"] and "store unavailable" in got[0][58]
            await _back(r, store)
            # the gateway took the G's number back: the client resends it, PossDup
            c2 = await OrderClient.connect(r.host, r.port, sender="C1", next_seq=g_seq)
            r.clients.append(c2)
            assert (await c2.logon(reset=False)).msg_type == "A"
            await c2.send("G", g, header=[(43, "Y"), (122, NOW)])
            told = [(m.msg_type, m.get(150)) for m in await _until_quiet(c2)
                    if m.get(11) == "r2"]
            assert told == [("8", "E"), ("9", None)], told  # PendingReplace, then refused
            (state,) = await r.venue().open_orders()
            assert state.quantity == D("0.1"), "the replace was carried out after all"
    run(body())


def test_a_report_kept_for_the_next_logon_survives_a_failed_logon(tmp_path: Path) -> None:
    """A fill made while the client was logged out; the store fails on the commit of its next
    Logon: the fill is reported at the Logon after that."""
    async def body() -> None:
        async with FailingStore(f"sqlite:///{tmp_path / 'fixgw.db'}") as store, running(
            tmp_path, [session("C1"), session("C2")], store=store, replay_check=False,
        ) as r:
            c = await r.client("C1")
            other = await r.client("C2")
            book = r.venue().exchange.book(BTC)
            bid = book.best_bid()
            assert bid is not None
            top = bid + D("0.01")
            await c.order("rest", price=top, qty="0.3")
            await c.er(t11="rest", t39="0")
            await c.logout()
            await other.order("x1", side="2", price=top, qty="0.1")
            await other.er(t11="x1", t39="0")
            await other.er(t11="x1", t39="2")
            assert len(r.orders._sessions[sid("C1")].unreported) == 1
            store.failing = True
            failed = await OrderClient.connect(r.host, r.port, sender="C1", next_seq=c.next_seq)
            await failed.send("A", [(98, "0"), (108, "30")])
            got = await failed.expect_closed(5.0)
            assert [m.msg_type for m in got] == ["5"]
            await _back(r, store)
            c3 = await OrderClient.connect(r.host, r.port, sender="C1", next_seq=failed.next_seq)
            r.clients.append(c3)
            assert (await c3.logon(reset=False)).msg_type == "A"
            fills = [m for m in await _until_quiet(c3) if m.msg_type == "8" and m.get(11) == "rest"]
            assert [(m.get(150), m.get(32)) for m in fills] == [("F", "0.1")]
    run(body())
