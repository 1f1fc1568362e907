"""End-to-end harness for the order path: a real gateway (SQLite store, paper venues) on an
ephemeral loopback port, FIX clients that validate every ExecutionReport (8), OrderCancelReject
(9) and OrderMassCancelReport (r) they receive strictly against the standard dictionaries, and a
teardown that replays the stored event log and compares it with the stored order snapshots.

No sleeps: every wait is a read of the next message, bounded by a timeout. The paper markets do
not move on their own (``tick_interval`` is an hour); a test moves them with ``venue.tick()``.
"""

# ruff: noqa: ASYNC109

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from server.fixclient import FixClient, FixMessage, Value

from connectors.base import VenueUnavailable
from connectors.paper.venue import PaperConnector
from gateway.app import Gateway, build_gateway
from gateway.config import Config
from gateway.fix import dictionary
from gateway.fix.session import Session, SessionID
from gateway.fix.validation import ValidationSettings, parse_message, validate
from gateway.orders.manager import OrderManager, StrategyFactory
from gateway.orders.model import Order, apply, new_order, order_from_json
from gateway.store.store import SessionStore

BTC = "BTC/USDT"
ETH = "ETH/USDT"
PERP = "BTC/USDT:USDT"
D = Decimal
STRICT = ValidationSettings.strict()
VALIDATED = ("8", "9", "r", "W", "X", "Y", "y", "BA", "BG", "AO", "AP", "N")
NOW = "20260101-00:00:00"


Num = Value | Decimal
"""A quantity or price: a Decimal, or the text of one."""
LIST_ORDER_TAGS = (11, 67, 1, 18, 111, 100, 55, 48, 22, 54, 60, 38, 40, 44, 99, 59, 126, 847)
"""The fields of one order of a NewOrderList the tests send, in ListOrdGrp's order."""


def _v(x: Num) -> Value:
    return str(x) if isinstance(x, Decimal) else x


def sid(target: str = "CLIENT1", begin: str = "FIX.4.4") -> str:
    return str(SessionID(begin, "GATEWAY", target))


def check_strict(m: FixMessage, begin: str, appl_ver: str = "FIX.5.0SP2") -> None:
    """The message as a strict QuickFIX counterparty would validate it."""
    if begin == "FIXT.1.1":
        sdd, add = dictionary.standard("FIXT.1.1"), dictionary.standard(appl_ver)
    else:
        sdd = add = dictionary.standard("FIX.4.4")
    validate(parse_message(m.raw, sdd, add), sdd, add, STRICT)


class OrderClient(FixClient):
    """A FixClient that validates what the order path sends and keeps every message read."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.received: list[FixMessage] = []
        self.appl_ver = "FIX.5.0SP2"
        """FIXT: the application version what is received is validated against."""

    async def recv(self, timeout: float = 5.0) -> FixMessage:
        m = await super().recv(timeout)
        if m.msg_type in VALIDATED:
            check_strict(m, self.begin, self.appl_ver)
        self.received.append(m)
        return m

    async def order(
        self,
        cl: str,
        *,
        symbol: str = BTC,
        side: str = "1",
        qty: Num = "0.1",
        ord_type: str = "2",
        price: Num | None = None,
        stop: Num | None = None,
        tif: str | None = None,
        extra: Iterable[tuple[int, Value]] = (),
    ) -> None:
        """NewOrderSingle (D)."""
        body: list[tuple[int, Value]] = [(11, cl), *extra]
        if self.begin == "FIX.4.4":
            body.append((21, "1"))
        body += [(38, _v(qty)), (40, ord_type)]
        if price is not None:
            body.append((44, _v(price)))
        body += [(54, side), (55, symbol)]
        if tif is not None:
            body.append((59, tif))
        body.append((60, NOW))
        if stop is not None:
            body.append((99, _v(stop)))
        await self.send("D", sorted(body, key=lambda f: f[0]))

    async def order_list(
        self,
        list_id: str,
        orders: Iterable[Mapping[int, Value]],
        *,
        bid_type: str = "3",
        tot: int | None = None,
        extra: Iterable[tuple[int, Value]] = (),
    ) -> None:
        """NewOrderList (E): each order a map of its fields (ListSeqNo 67 its place from 1
        unless given; Side buy, limit, 0.1 BTC/USDT unless given), written in the dictionary's
        order of ListOrdGrp."""
        entries = [{67: str(n), 54: "1", 40: "2", 38: "0.1", 55: BTC, **o}
                   for n, o in enumerate(orders, 1)]
        body: list[tuple[int, Value]] = [(66, list_id), (394, bid_type), *extra,
                                         (68, str(len(entries) if tot is None else tot)),
                                         (73, str(len(entries)))]
        for e in entries:
            body += [(t, _v(e[t])) for t in LIST_ORDER_TAGS if t in e]
            assert set(e) <= set(LIST_ORDER_TAGS), set(e) - set(LIST_ORDER_TAGS)
        await self.send("E", body)

    async def cancel(self, cl: str, orig: str, *, symbol: str = BTC, side: str = "1",
                     qty: Num = "0.1") -> None:
        await self.send("F", [(11, cl), (38, _v(qty)), (41, orig), (54, side), (55, symbol),
                              (60, NOW)])

    async def replace(self, cl: str, orig: str, *, qty: Num, price: Num | None = None,
                      ord_type: str = "2", symbol: str = BTC, side: str = "1",
                      extra: Iterable[tuple[int, Value]] = ()) -> None:
        body: list[tuple[int, Value]] = [(11, cl), (38, _v(qty)), (40, ord_type), (41, orig),
                                         (54, side), (55, symbol), (60, NOW), *extra]
        if self.begin == "FIX.4.4":
            body.append((21, "1"))
        if price is not None:
            body.append((44, _v(price)))
        await self.send("G", sorted(body, key=lambda f: f[0]))

    async def logout(self, timeout: float = 5.0) -> None:
        """Logout handshake, then the connection closes."""
        await self.send("5")
        await self.recv_type("5", timeout)
        await self.expect_closed(timeout)
        await self.close()

    async def expect(self, msg_type: str, timeout: float = 5.0, **tags: str) -> FixMessage:
        """The next message of ``msg_type`` (heartbeats skipped); ``t39="2"`` asserts 39=2."""
        m = await self.recv_type(msg_type, timeout)
        for key, want in tags.items():
            tag = int(key[1:])
            assert m.get(tag) == want, f"{tag}={m.get(tag)!r}, wanted {want!r} in {m}"
        return m

    async def er(self, timeout: float = 5.0, **tags: str) -> FixMessage:
        return await self.expect("8", timeout, **tags)

    async def quiet(self, timeout: float = 0.3) -> list[FixMessage]:
        """Assert nothing but heartbeats arrives within ``timeout`` (a bounded read, no sleep)."""
        got: list[FixMessage] = []
        try:
            while True:
                m = await self.recv(timeout)
                if m.msg_type != "0":
                    got.append(m)
        except TimeoutError:
            pass
        assert not got, [str(m) for m in got]
        return got


def config(
    sessions: list[dict[str, Any]] | None = None,
    venues: list[dict[str, Any]] | None = None,
    admin: dict[str, Any] | None = None,
    log_dir: Path | None = None,
    gateway: dict[str, Any] | None = None,
) -> Config:
    if sessions is None:
        sessions = [session()]
    if venues is None:
        venues = [venue()]
    return Config.model_validate({
        "gateway": {"host": "127.0.0.1", "port": 0, "log_dir": log_dir, **(gateway or {})},
        "venue": venues, "session": sessions,
        **({"admin": admin} if admin is not None else {}),
    })


def venue(name: str = "paper", **kw: Any) -> dict[str, Any]:
    return {"name": name, "tick_interval": 3600, **kw}


def session(target: str = "CLIENT1", begin: str = "FIX.4.4", **kw: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"target_comp_id": target, "begin_string": begin,
                           "default_venue": "paper", **kw}
    if begin == "FIXT.1.1":
        out.setdefault("default_appl_ver_id", "FIX.5.0SP2")
    return out


@dataclass
class Run:
    gw: Gateway
    store: SessionStore
    host: str
    port: int
    clients: list[OrderClient] = field(default_factory=list)
    logouts: asyncio.Queue[str] = field(default_factory=asyncio.Queue)
    """Session ids, as the order path hears of their logouts and disconnects."""

    async def logged_out(self, session_id: str, timeout: float = 5.0) -> None:
        """Wait until the order path has been told ``session_id`` is gone."""
        while await asyncio.wait_for(self.logouts.get(), timeout) != session_id:
            pass

    async def reconnect(
        self, old: OrderClient, *, extra: Iterable[tuple[int, Value]] = ()
    ) -> OrderClient:
        """Log on again where ``old`` left off (no reset: sequence numbers go on)."""
        return await self.client(old.sender, old.begin, reset=False, extra=extra,
                                 next_seq=old.next_seq)

    @property
    def orders(self) -> OrderManager:
        assert self.gw.orders is not None
        return self.gw.orders

    def venue(self, name: str = "paper") -> PaperConnector:
        conn = self.orders.connectors[name]
        assert isinstance(conn, PaperConnector)
        return conn

    async def client(
        self,
        sender: str = "CLIENT1",
        begin: str = "FIX.4.4",
        *,
        reset: bool = True,
        extra: Iterable[tuple[int, Value]] = (),
        next_seq: int = 1,
    ) -> OrderClient:
        c = await OrderClient.connect(self.host, self.port, sender=sender, begin=begin,
                                      next_seq=next_seq)
        assert isinstance(c, OrderClient)
        self.clients.append(c)
        ans = await c.logon(reset=reset, extra=extra)
        assert ans.msg_type == "A", str(ans)
        return c

    async def open_at_venue(self, name: str = "paper") -> list[str]:
        return [s.client_order_id for s in await self.venue(name).open_orders()]


def venue_survives(run_: Run) -> None:
    """The venue outlives the gateway: stopping the gateway does not close it."""
    async def stay_open() -> None:
        return None

    run_.venue().close = stay_open  # type: ignore[method-assign]


def restart(
    run_: Run, store: SessionStore, sessions: list[dict[str, Any]],
    strategies: Mapping[str, StrategyFactory] | None = None,
) -> Gateway:
    """A second gateway (not started) on the same store and the same (surviving) venue."""
    venue = run_.venue()
    gw = build_gateway(config(sessions), store, strategies=strategies)
    assert gw.orders is not None
    gw.orders.connectors["paper"] = venue
    return gw


@asynccontextmanager
async def restarted(run_: Run, store: SessionStore,
                    sessions: list[dict[str, Any]]) -> AsyncIterator[Gateway]:
    """:func:`restart`, started and done with what its start set going (the orders idle),
    ``run_`` pointing at it (its clients connect there); stopped after."""
    gw = restart(run_, store, sessions)
    host, port = await gw.start()
    try:
        assert gw.orders is not None
        await asyncio.wait_for(gw.orders.idle(), 5)
        run_.host, run_.port, run_.gw = host, port, gw
        yield gw
    finally:
        await gw.stop()


def unreachable_for_cancels(run_: Run, mp: pytest.MonkeyPatch, times: int) -> list[None]:
    """The paper venue's next ``times`` cancels raise VenueUnavailable (nothing happens at the
    venue); returns the failures still to come (empty once all were used)."""
    conn = run_.venue()
    cancel, left = conn.cancel, [None] * times

    async def unreachable(symbol: str, client_order_id: str) -> None:
        if left:
            left.pop()
            raise VenueUnavailable("injected: the venue is unreachable")
        await cancel(symbol, client_order_id)

    mp.setattr(conn, "cancel", unreachable)
    return left


async def until(cond: Callable[[], object], within: float = 5.0) -> None:
    """A bounded poll of state that has no event to wait on: until ``cond()`` holds
    (AssertionError after ``within`` seconds)."""
    deadline = time.monotonic() + within
    while not cond():
        assert time.monotonic() < deadline, f"condition not met within {within}s"
        await asyncio.sleep(0.02)

async def resting(c: OrderClient, *names: str) -> None:
    """Buys at 90000 (far under the market), GTC, each acknowledged."""
    for name in names:
        await c.order(name, price="90000", tif="1")
        await c.er(t11=name, t39="0")


@asynccontextmanager
async def running(
    tmp_path: Path,
    sessions: list[dict[str, Any]] | None = None,
    venues: list[dict[str, Any]] | None = None,
    *,
    store: SessionStore | None = None,
    replay_check: bool = True,
    admin: dict[str, Any] | None = None,
    strategies: Mapping[str, StrategyFactory] | None = None,
    log_dir: Path | None = None,
    gateway: dict[str, Any] | None = None,
) -> AsyncIterator[Run]:
    """A started gateway; on exit: stopped, and the event log replayed against the snapshots.
    ``log_dir``: the gateway writes its FIX file logs there (tests/audit); ``gateway``: more
    ``[gateway]`` settings."""
    own_store = store is None
    if store is None:
        store = SessionStore(f"sqlite:///{tmp_path / 'fixgw.db'}")
        await store.start()
    gw = build_gateway(config(sessions, venues, admin, log_dir, gateway), store,
                       strategies=strategies)
    host, port = await gw.start()
    run = Run(gw, store, host, port)
    # the order path hears of a logout from the sessions' application, which tells it last
    # (the order manager's own methods cannot be replaced where it is compiled)
    app = gw.acceptor.app
    on_logout = app.on_logout

    def tell(s: Session, now: float) -> None:
        on_logout(s, now)
        run.logouts.put_nowait(str(s.sid))

    mp = pytest.MonkeyPatch()
    mp.setattr(app, "on_logout", tell)
    try:
        yield run
    finally:
        mp.undo()
        for c in run.clients:
            await c.close()
        assert gw.orders is not None
        await asyncio.wait_for(gw.orders.idle(), 10)
        await gw.stop()
        await _handlers_finished()
        try:
            if replay_check:
                await assert_replay_matches(store)
        finally:
            if own_store:
                await store.close()


async def _handlers_finished() -> None:
    handlers = [t for t in asyncio.all_tasks()
                if getattr(t.get_coro(), "__qualname__", "") == "Acceptor._on_client"]
    if handlers:
        await asyncio.wait(handlers, timeout=3)


async def assert_replay_matches(store: SessionStore) -> dict[str, Order]:
    """Event sourcing: replaying every stored event rebuilds every stored snapshot exactly."""
    rebuilt: dict[str, Order] = {}
    after = 0
    while True:
        batch = await store.replay_events(after, 500)
        if not batch:
            break
        for ev in batch:
            o = rebuilt.get(ev.order_id)
            if o is None:
                rebuilt[ev.order_id] = new_order(ev)
            else:
                apply(o, ev)
        after = batch[-1].event_id
    for order_id, o in rebuilt.items():
        snapshot = await store.load_order(order_id)
        stored = None if snapshot is None else order_from_json(snapshot)
        assert stored == o, f"replay differs from the snapshot:\n{stored}\n{o}"
    return rebuilt


def fields(m: FixMessage) -> Mapping[int, str]:
    return m.as_dict()


def exec_ids(messages: Iterable[FixMessage]) -> list[str]:
    return [m[17] for m in messages if m.msg_type == "8"]


def by_order(messages: Iterable[FixMessage]) -> dict[str, list[FixMessage]]:
    out: dict[str, list[FixMessage]] = defaultdict(list)
    for m in messages:
        if m.msg_type == "8":
            out[m[37]].append(m)
    return out


def consistent(m: FixMessage) -> None:
    """CumQty + LeavesQty = OrderQty while open; LeavesQty 0 when done."""
    cum, leaves, qty = D(m[14]), D(m[151]), D(m[38])
    if m[39] in ("2", "4", "8", "C"):
        assert leaves == 0, str(m)
    else:
        assert cum + leaves == qty, str(m)


def fmt(v: Decimal) -> str:
    """A Decimal as the gateway writes it (no exponent, no trailing zeros)."""
    return format(v.normalize(), "f")


def list_lines(m: FixMessage) -> list[dict[int, str]]:
    """The NoOrders (73) entries of a ListStatus (N), each as a map of its fields."""
    lines: list[dict[int, str]] = []
    in_group = False
    for tag, value in m.fields:
        if tag == 73:
            in_group = True
        elif in_group and tag in (10,):
            break
        elif in_group:
            if tag == 11:
                lines.append({})
            lines[-1][tag] = value.decode()
    assert len(lines) == int(m[73]), str(m)
    return lines
