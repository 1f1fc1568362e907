"""Crash recovery end to end: the gateway is SIGKILLed while fills stream in, the venue keeps
trading, the gateway restarts and reconciles; the client must learn of every fill exactly once.

Processes: ``fixgw venue-sim`` (outlives the gateway), ``fixgw run`` (SQLite store, session
CLIENT1 FIX.4.4, venue kind ``paper-remote``) started twice, and this test as the FIX client
(a :class:`~orders.crash_fix.Session` that continues its sequence numbers, asks for resends of
gaps and accepts PossDup resends) and as the venue's counterparty (its own control connection:
``trade_against`` and ``tick``).

The proof, against the venue's own record (``fills_since(0)``):

* every venue trade of our orders was reported once, under the ExecID derived from its trade
  id (a PossDupFlag=Y resend of a report already received is not a second report), with the
  venue's quantity and price; no fill was reported that the venue did not make;
* the last ExecutionReport of each order has the venue's CumQty and AvgPx, and says Filled;
* no MsgSeqNum hole is left, none came twice without PossDupFlag.

Seeds: ``CRASH_SEEDS=1,2,3,...`` overrides the default set (the seed drives the orders, the
venue's market, the fill stream and the moment of the kill).
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest
from server.harness import run

from connectors.base import (
    OrderAccepted,
    OrderFilled,
    OrderRequest,
    OrderState,
    OrderType,
    RejectReason,
    Side,
    VenueAmbiguous,
    VenueEvent,
    VenueRejected,
    VenueStatus,
    VenueUnavailable,
    venue_client_order_id,
)
from connectors.paper.config import Faults, PaperConfig
from connectors.paper.exchange import CLIENT_ORDER_ID_RULES
from connectors.paper.remote import RemotePaperConnector
from connectors.paper.server import VenueSimServer, VenueSimulator
from gateway.config import ConfigError, load_config

from .crash_fix import Ledger, Session
from .crash_procs import Proc, gateway, venue_sim, write_gateway_config

D = Decimal
SOL, ETH = "SOL/USDT", "ETH/USDT"
# the still market of the venue simulator (mid 180.00 / 3400.00, quotes one tick either side):
# our resting orders at the mid are alone at the top of the book
SOL_BID, ETH_ASK = D("180.00"), D("3400.00")
SEEDS = [int(s) for s in os.environ.get("CRASH_SEEDS", "11,23,37").split(",") if s.strip()]


@dataclass(frozen=True)
class Spec:
    cl_ord_id: str
    symbol: str
    side: Side
    quantity: Decimal
    price: Decimal | None
    """None: a market order."""
    resting: bool

    def body(self) -> list[tuple[int, str | int]]:
        body: list[tuple[int, str | int]] = [
            (11, self.cl_ord_id), (55, self.symbol), (54, "1" if self.side is Side.BUY else "2"),
            (60, "20270101-00:00:00.000"), (38, str(self.quantity)),
            (40, "1" if self.price is None else "2"),
        ]
        if self.price is not None:
            body += [(44, str(self.price)), (59, "1")]
        return body


def _qty(rng: random.Random, low: str, high: str, step: str) -> Decimal:
    lo, hi, st = D(low), D(high), D(step)
    return lo + st * rng.randint(0, int((hi - lo) / st))


def make_orders(rng: random.Random, prefix: str, resting: int, marketable: int) -> list[Spec]:
    specs: list[Spec] = []
    for i in range(resting):
        cl = f"{prefix}r{i}"
        if rng.random() < 0.6:
            specs.append(Spec(cl, SOL, Side.BUY, _qty(rng, "0.5", "3", "0.001"), SOL_BID, True))
        else:
            specs.append(Spec(cl, ETH, Side.SELL, _qty(rng, "0.02", "0.4", "0.0001"), ETH_ASK,
                              True))
    for i in range(marketable):
        cl = f"{prefix}m{i}"
        if rng.random() < 0.5:
            specs.append(Spec(cl, SOL, Side.BUY, _qty(rng, "0.1", "5", "0.001"), None, False))
        else:  # an aggressive limit: trades with the market maker's bids at once
            specs.append(Spec(cl, ETH, Side.SELL, _qty(rng, "0.01", "2", "0.0001"), D("3390.00"),
                              False))
    rng.shuffle(specs)
    return specs


async def trade_pieces(venue: RemotePaperConnector, rng: random.Random, pieces: int) -> None:
    """The counterparty takes our resting orders piece by piece, as fast as the venue answers."""
    for _ in range(pieces):
        if rng.random() < 0.6:
            await venue.trade_against(SOL, Side.SELL, _qty(rng, "0.2", "1.5", "0.001"), SOL_BID)
        else:
            await venue.trade_against(ETH, Side.BUY, _qty(rng, "0.01", "0.12", "0.0001"), ETH_ASK)


async def fill_everything(venue: RemotePaperConnector) -> None:
    """Take every open order of ours (and whatever the market maker quotes in front of it)."""
    for _ in range(20):
        open_orders = await venue.open_orders()
        if not open_orders:
            return
        for symbol, side, price in sorted({(o.symbol, o.side, o.price) for o in open_orders},
                                          key=str):
            assert price is not None
            other = Side.SELL if side is Side.BUY else Side.BUY
            await venue.trade_against(symbol, other, D("100000"), price)
    raise AssertionError(f"orders still open at the venue: {await venue.open_orders()}")


@pytest.mark.parametrize("seed", SEEDS)
def test_sigkill_while_fills_stream_in_loses_and_duplicates_nothing(
    tmp_path: Path, seed: int
) -> None:
    run(_scenario(tmp_path, seed), timeout=60)


async def _scenario(tmp: Path, seed: int) -> None:
    rng = random.Random(seed)
    ledger = Ledger()
    specs = make_orders(rng, "a", resting=30, marketable=10)
    late = make_orders(rng, "b", resting=3, marketable=2)
    async with venue_sim(tmp, seed) as sim:
        venue = RemotePaperConnector("127.0.0.1", sim.port, name="control", keep_events=False)
        await venue.start()
        config = write_gateway_config(tmp, sim.port)
        try:
            # ---- first life: orders in, fills streaming, SIGKILL at a seeded moment ----
            async with gateway(config, tmp / "gateway-1.stderr") as gw1:
                s = await Session.open(gw1.port, ledger)
                await _place(s, ledger, specs, gw1)
                before = len(ledger.fills())
                kill_after = rng.randint(1, 16)
                stream = asyncio.create_task(trade_pieces(venue, rng, 16))
                await s.wait(lambda: len(ledger.fills()) - before >= kill_after, 15,
                             f"{kill_after} fills of the stream reported")
                gw1.sigkill()
                reported_at_kill = len(ledger.fills())
                await stream
                made_at_kill = len(await venue.fills_since(0))
                await s.wait_closed()
                await s.close()
                assert await gw1.proc.wait() == -signal.SIGKILL
            # ---- the venue trades on while the gateway is down ----
            await trade_pieces(venue, rng, 10)
            await venue.tick()
            made_down = len(await venue.fills_since(0))
            # ---- second life: reconcile, resend, finish ----
            async with gateway(config, tmp / "gateway-2.stderr") as gw2:
                s = await Session.open(gw2.port, ledger)
                # the client also asks to see a seeded stretch of history again: PossDup
                # copies, never second reports
                await s.send("2", [(7, rng.randint(1, ledger.contiguous)), (16, 0)])
                await _place(s, ledger, late, gw2)
                await fill_everything(venue)
                everything = specs + late
                stalled: list[str] = []
                try:
                    await s.wait(lambda: all(ledger.filled(o.cl_ord_id, o.quantity)
                                             for o in everything), 10,
                                 "every order reported Filled")
                    await s.sync("end")
                except AssertionError as exc:  # say what is missing, below
                    stalled.append(str(exc))
                fills = await venue.fills_since(0)
                states = {o.cl_ord_id: await _venue_state(venue, ledger, o) for o in everything}
                problems = stalled + _verify(ledger, everything, fills, states)
                print(f"seed {seed}: kill after {kill_after}; reported {reported_at_kill} of "
                      f"{made_at_kill} venue fills at the kill, {made_down} after the downtime, "
                      f"{len(fills)} in all; {len(ledger.ers)} ERs received, "
                      f"{ledger.possdup_ignored} PossDup copies, {len(ledger.reports)} reports, "
                      f"{s.resend_requests} gap(s)")
                assert not problems, _evidence(seed, problems, ledger, gw2, tmp)
                await s.close()
                gw2.proc.send_signal(signal.SIGTERM)
                assert await asyncio.wait_for(gw2.proc.wait(), 10) == 0, gw2.log_tail()
        finally:
            await venue.close()


async def _place(s: Session, ledger: Ledger, specs: list[Spec], gw: Proc) -> None:
    for o in specs:
        await s.send("D", o.body())
    # acknowledged: resting orders New, marketable ones Filled
    await s.wait(lambda: all(
        ledger.last_report(o.cl_ord_id) is not None
        and (o.resting or ledger.filled(o.cl_ord_id, o.quantity)) for o in specs
    ), 15, "every order acknowledged (marketable ones filled)")
    rejected = [m for m in ledger.ers if m.get(150) == "8"]
    assert not rejected, f"orders rejected: {[str(m) for m in rejected]}\n{gw.log_tail()}"


async def _venue_state(venue: RemotePaperConnector, ledger: Ledger, o: Spec) -> OrderState | None:
    last = ledger.last_report(o.cl_ord_id)
    if last is None:
        return None
    coid = venue_client_order_id(last[37], 0, CLIENT_ORDER_ID_RULES)
    return await venue.query_order(o.symbol, coid)


def _verify(
    ledger: Ledger, specs: list[Spec], fills: Sequence[OrderFilled],
    states: dict[str, OrderState | None],
) -> list[str]:
    problems: list[str] = []
    problems += [f"reported twice (ExecID {m[17]}, not PossDup): {m}" for m in ledger.duplicates]
    problems += ledger.anomalies
    # who is who: OrderID <-> venue client order id
    order_ids: dict[str, str] = {}
    for o in specs:
        last = ledger.last_report(o.cl_ord_id)
        if last is None:
            problems.append(f"{o.cl_ord_id}: never reported")
            continue
        order_ids[venue_client_order_id(last[37], 0, CLIENT_ORDER_ID_RULES)] = last[37]
    venue_trades: dict[tuple[str, str], OrderFilled] = {}
    for f in fills:
        oid = order_ids.get(f.client_order_id)
        if oid is None:
            problems.append(f"the venue filled an order the client does not know: {f}")
            continue
        venue_trades[(oid, f.trade_id)] = f
    # every reported fill is a venue trade, reported once, as the venue made it
    reported: dict[tuple[str, str], list[str]] = {}
    for m in ledger.fills():
        exec_id, oid = m[17], m[37]
        # Invariant 2: a fill's ExecID is derived from the venue's trade id: "<OrderID>.T<id>"
        trade = exec_id.rsplit(".T", 1)[-1] if exec_id.startswith(f"{oid}.T") else "?"
        key = (oid, trade)
        reported.setdefault(key, []).append(exec_id)
        made = venue_trades.get(key)
        if made is None:
            problems.append(f"fill reported that the venue did not make: ExecID {exec_id}: {m}")
        elif (D(m[32]), D(m[31])) != (made.quantity, made.price):
            problems.append(f"ExecID {exec_id}: LastQty/LastPx {m[32]}/{m[31]}, venue "
                            f"{made.quantity}/{made.price}")
    for key, exec_ids in reported.items():
        if len(exec_ids) > 1:
            problems.append(f"venue trade {key} reported under {len(exec_ids)} ExecIDs {exec_ids}")
    for key, f in venue_trades.items():
        if key not in reported:
            problems.append(f"venue trade never reported: order {key[0]} trade {key[1]} "
                            f"{f.quantity}@{f.price} ts {f.ts_ns}")
    # the last report of each order is the venue's state
    for o in specs:
        last, state = ledger.last_report(o.cl_ord_id), states.get(o.cl_ord_id)
        if last is None:
            continue
        if state is None:
            problems.append(f"{o.cl_ord_id} (OrderID {last[37]}): unknown at the venue")
            continue
        avg = state.average_price or D(0)
        if D(last[14]) != state.filled_quantity or D(last[6]) != avg:
            problems.append(f"{o.cl_ord_id} (OrderID {last[37]}): last report CumQty/AvgPx "
                            f"{last[14]}/{last[6]}, venue {state.filled_quantity}/{avg} "
                            f"(report {last})")
        if last.get(39) != "2" or state.status is not VenueStatus.FILLED:
            problems.append(f"{o.cl_ord_id}: last OrdStatus {last.get(39)}, venue {state.status}")
    if ledger.contiguous != max(ledger.seen, default=0):
        holes = sorted(set(range(1, max(ledger.seen) + 1)) - ledger.seen)
        problems.append(f"MsgSeqNums never received: {holes}")
    return problems


def _evidence(seed: int, problems: list[str], ledger: Ledger, gw: Proc, tmp: Path) -> str:
    first = (tmp / "gateway-1.stderr").read_text(errors="replace").splitlines()[-30:]
    return "\n".join([
        f"seed {seed}: {len(problems)} problem(s); {len(ledger.reports)} reports, "
        f"{len(ledger.ers)} ExecutionReports received, {ledger.possdup_ignored} PossDup copies",
        *problems[:60],
        "--- gateway, first life (tail) ---", *first,
        "--- gateway, second life (tail) ---", gw.log_tail(60),
    ])



# ---- the venue link: lost and found again while the gateway lives --------------------------------


def test_venue_link_loss_is_reconciled_after_reconnect(tmp_path: Path) -> None:
    """The gateway's connection to the venue is cut and kept down while the venue fills our
    orders (events nobody receives); when it reconnects the gateway reconciles and reports
    each of those fills once."""
    run(_link_loss(tmp_path, seed=5), timeout=40)


async def _link_loss(tmp: Path, seed: int) -> None:
    rng = random.Random(seed)
    ledger = Ledger()
    specs = make_orders(rng, "l", resting=8, marketable=0)
    async with venue_sim(tmp, seed) as sim:
        venue = RemotePaperConnector("127.0.0.1", sim.port, name="control", keep_events=False)
        await venue.start()
        try:
            async with gateway(write_gateway_config(tmp, sim.port), tmp / "gateway.stderr") as gw:
                s = await Session.open(gw.port, ledger)
                await _place(s, ledger, specs, gw)
                assert await venue.drop_clients(hold=True) == 1, "the gateway was connected"
                await trade_pieces(venue, rng, 6)
                made = len(await venue.fills_since(0))
                await s.sync("cut")
                assert made > 0 and not ledger.fills(), "fills reported over a cut link"
                await venue.release()
                await s.wait(lambda: len(ledger.fills()) >= made, 10,
                             f"the {made} fills made while the link was down reported")
                await fill_everything(venue)  # and live events flow again
                stalled: list[str] = []
                try:
                    await s.wait(lambda: all(ledger.filled(o.cl_ord_id, o.quantity)
                                             for o in specs), 10, "every order reported Filled")
                    await s.sync("end")
                except AssertionError as exc:
                    stalled.append(str(exc))
                states = {o.cl_ord_id: await _venue_state(venue, ledger, o) for o in specs}
                problems = stalled + _verify(ledger, specs, await venue.fills_since(0), states)
                assert not problems, "\n".join([*problems, gw.log_tail(40)])
                await s.close()
        finally:
            await venue.close()


# ---- the remote connector on its own (in-process venue simulator) ------------------------------


class _GatedVenue(VenueSimulator):
    """Holds every ``place`` until ``gate`` opens (``entered`` says one is waiting)."""

    def __init__(self) -> None:
        super().__init__(PaperConfig(seed=3))
        self.entered = asyncio.Event()
        self.gate = asyncio.Event()

    async def place(self, request: OrderRequest) -> OrderAccepted:
        self.entered.set()
        await self.gate.wait()
        return await super().place(request)


async def _next_fill(events: AsyncIterator[VenueEvent]) -> OrderFilled:
    async for ev in events:
        if isinstance(ev, OrderFilled):
            return ev
    raise AssertionError("the event stream ended")


def test_remote_connector_in_flight_requests_and_reconnect() -> None:
    async def scenario() -> None:
        sim = _GatedVenue()
        server = VenueSimServer(sim)
        host, port = await server.start()
        conn = RemotePaperConnector(host, port, name="sim", seed=1)
        control = RemotePaperConnector(host, port, name="control", keep_events=False)
        reconnected = asyncio.Event()

        async def on_reconnect() -> None:
            reconnected.set()

        conn.on_reconnect.append(on_reconnect)
        try:
            await conn.start()
            await control.start()
            assert conn.connected and conn.info.capabilities.amend
            assert conn.info.name == "sim" and conn.last_price(SOL) == D("180")
            # a place in flight when the link drops is ambiguous, not rejected
            req = OrderRequest("x1", SOL, Side.BUY, OrderType.LIMIT, D("1"), SOL_BID)
            place = asyncio.create_task(conn.place(req))
            await sim.entered.wait()
            assert await control.drop_clients(hold=True) == 1
            with pytest.raises(VenueAmbiguous):
                await place
            # while it is down: definitely not sent
            with pytest.raises(VenueUnavailable):
                await conn.open_orders()
            assert not (await conn.health()).connected
            sim.gate.set()  # the venue carries the place out after all
            await control.release()
            await asyncio.wait_for(reconnected.wait(), 5)
            assert conn.connections == 2
            # Invariant 3: the ambiguous place is resolved by a query
            state = await conn.query_order(SOL, "x1")
            assert state is not None and state.status is VenueStatus.NEW
            # events flow on the new connection
            events = conn.events()
            assert await control.trade_against(SOL, Side.SELL, D("0.4"), SOL_BID) == (
                D("0.4"), D("0.4"))
            fill = await asyncio.wait_for(_next_fill(events), 5)
            assert (fill.client_order_id, fill.quantity, fill.price) == ("x1", D("0.4"), SOL_BID)
            # the venue's errors keep their kind over the wire
            await control.set_faults(Faults(timeout_next=1, timeout_mode="accepted"))
            with pytest.raises(VenueAmbiguous):
                await conn.cancel(SOL, "x1")
            await control.set_faults(Faults())
            with pytest.raises(VenueRejected) as rejected:
                await conn.cancel(SOL, "x1")
            assert rejected.value.reason is RejectReason.TOO_LATE
            final = await conn.query_order(SOL, "x1")
            assert final is not None and (final.status, final.filled_quantity,
                                          final.average_price) == (VenueStatus.CANCELED,
                                                                   D("0.4"), SOL_BID)
        finally:
            await conn.close()
            await control.close()
            await server.close()
            await sim.close()

    run(scenario(), timeout=30)


def test_paper_remote_venue_config(tmp_path: Path) -> None:
    def load(venue: str) -> None:
        path = tmp_path / "g.toml"
        path.write_text(f"[[venue]]\nname = \"v\"\n{venue}\n")
        load_config(path)

    load('kind = "paper-remote"\nport = 9000')
    for venue, error in [
        ('kind = "paper-remote"', "needs port"),
        ('kind = "paper-remote"\nport = 9000\nseed = 3', "seed: not for"),
        ("port = 9000", "host and port are for"),
        ('kind = "paper-remote"\nport = 0', "greater than or equal to 1"),
    ]:
        with pytest.raises(ConfigError, match=error):
            load(venue)
