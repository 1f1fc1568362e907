"""The store fails while orders and fills flow: PostgreSQL SIGKILLed (a private cluster) and
restarted, or SQLite's disk filled up and freed. Nothing the client sent or the venue did may
be lost or told twice (Invariant 8).

Processes: ``fixgw venue-sim``, ``fixgw run`` on the failing store, this test as the FIX client
(a :class:`~orders.crash_fix.Session` that reconnects, continues its sequence numbers, asks
for resends of gaps and serves the gateway's) and as the venue's counterparty.

While the store is down the gateway must end the session with a Logout saying why and answer
every Logon with one; orders sent meanwhile are resent by the client afterwards (their
sequence numbers were never stored as received), or were refused with a reason. The proof, once
the store is back, against the venue's own record:

* every order the client sent has a last ExecutionReport: Filled as the venue filled it, or
  Rejected saying the store was unavailable (and then unknown to the venue);
* every venue trade of our orders reported once (PossDup copies aside), none the venue did not
  make; no MsgSeqNum hole, none twice without PossDupFlag; the Logouts said "store unavailable".
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal
from pathlib import Path

import pytest
from server.harness import run
from store.pgcluster import PgCluster
from store.test_outage import _fill, small_disk

from connectors.base import VenueStatus, venue_client_order_id
from connectors.paper.exchange import CLIENT_ORDER_ID_RULES
from connectors.paper.remote import RemotePaperConnector

from .crash_fix import Ledger, Session
from .crash_procs import Proc, gateway, venue_sim, write_gateway_config
from .test_crash_recovery import Spec, fill_everything, make_orders, trade_pieces

D = Decimal


async def _log_on(port: int, ledger: Ledger, refusals: list[str], within: float) -> Session:
    """Log on, again and again while the gateway refuses (as a FIX engine reconnects)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        try:
            return await Session.open(port, ledger, timeout=5.0)
        except (AssertionError, ConnectionError) as exc:
            refusals.append(str(exc))
            if loop.time() > deadline:
                raise AssertionError(f"no Logon accepted within {within}s: {refusals[-3:]}") \
                    from None
            await asyncio.sleep(0.2)  # a reconnect interval, as an initiator has


async def _send_blind(s: Session, specs: list[Spec]) -> None:
    """Send whatever the connection takes; the rest counts as sent (the client resends it)."""
    for o in specs:
        with contextlib.suppress(ConnectionError, OSError):
            await s.send("D", o.body())


async def _until_closed(s: Session, venue: RemotePaperConnector, rng: random.Random,
                        within: float) -> None:
    """Until the gateway ends the connection, the counterparty taking more of our resting
    orders meanwhile: a store that fails only some writes -- a full disk fails a commit only
    when the write-ahead log must grow, and whether it must depends on when the checkpointer
    last rewound it -- is found by the commits of more fills."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        with contextlib.suppress(AssertionError):
            await s.wait_closed(1.0)
        if s.closed:
            return
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {within}s waiting for: the connection to close")
        await trade_pieces(venue, rng, 2)


@contextlib.asynccontextmanager
async def _telling(gw: Proc) -> AsyncIterator[None]:
    """A scenario that fails in any way (a timeout included) prints the end of the gateway's
    log (on stderr: pytest shows it with the failure)."""
    try:
        yield
    except BaseException:
        print(f"--- the end of the gateway's log ---\n{gw.log_tail(60)}", file=sys.stderr)
        raise


async def _scenario(
    tmp: Path, seed: int, store: str, break_store: Callable[[], Awaitable[None]],
    mend_store: Callable[[], Awaitable[None]], log_dir: Path | None = None,
) -> None:
    rng = random.Random(seed)
    ledger = Ledger()
    before = make_orders(rng, "a", resting=12, marketable=6)
    during = make_orders(rng, "b", resting=6, marketable=6)
    after = make_orders(rng, "c", resting=3, marketable=3)
    refusals: list[str] = []
    async with venue_sim(tmp, seed) as sim:
        venue = RemotePaperConnector("127.0.0.1", sim.port, name="control", keep_events=False)
        await venue.start()
        config = write_gateway_config(tmp, sim.port, store=store, log_dir=log_dir)
        try:
            async with gateway(config, tmp / "gateway.stderr") as gw, _telling(gw):
                s = await _log_on(gw.port, ledger, refusals, 10)
                await s.orders({o.cl_ord_id: o.body() for o in before}, 15)
                # ---- the store fails while orders come in and the venue fills ours ----
                await _send_blind(s, during[:4])
                await break_store()
                await _send_blind(s, during[4:8])
                await trade_pieces(venue, rng, 6)
                await _send_blind(s, during[8:])
                await _until_closed(s, venue, rng, 20)
                await s.close()
                refused_while_down = len(refusals)
                with contextlib.suppress(AssertionError):
                    await _log_on(gw.port, ledger, refusals, 1.0)  # refused: still down
                assert len(refusals) > refused_while_down, "a Logon was accepted while down"
                made_down = len(await venue.fills_since(0))
                # ---- the store is back ----
                await mend_store()
                s = await _log_on(gw.port, ledger, refusals, 30)
                for o in after:
                    await s.send("D", o.body())
                everything = before + during + after
                stalled: list[str] = []
                try:
                    await s.wait(lambda: ledger.answered(o.cl_ord_id for o in everything), 20,
                                 "every order answered")
                    await fill_everything(venue)
                    await s.wait(lambda: all(_settled(ledger, o) for o in everything), 20,
                                 "every order filled or refused")
                    await s.sync("end")
                except AssertionError as exc:
                    stalled.append(str(exc))
                problems = stalled + await _verify(ledger, everything, venue)
                logouts = [a for a in ledger.anomalies if "logged out" in a]
                problems += [a for a in ledger.anomalies if "logged out" not in a]
                if not any("store unavailable" in a for a in logouts):
                    problems.append(f"no Logout said why: {logouts}")
                refused = [o for o in everything if _refused(ledger, o)]
                print(f"seed {seed}: {len(everything)} orders, {len(refused)} refused for the "
                      f"store, {len(ledger.fills())} fills reported ({made_down} made by the "
                      f"venue before the store came back), {len(refusals)} Logons refused, "
                      f"{len(ledger.ers)} ERs, {ledger.possdup_ignored} PossDup copies")
                assert not problems, "\n".join(problems[:40])
                await s.close()
        finally:
            await venue.close()


def _refused(ledger: Ledger, o: Spec) -> bool:
    last = ledger.last_report(o.cl_ord_id)
    return last is not None and last.get(39) == "8"


def _settled(ledger: Ledger, o: Spec) -> bool:
    return _refused(ledger, o) or ledger.filled(o.cl_ord_id, o.quantity)


async def _verify(ledger: Ledger, specs: list[Spec], venue: RemotePaperConnector,
                  reasons_ok: tuple[str, ...] = ("store unavailable",)) -> list[str]:
    """What is wrong: an order unanswered or answered twice, a fill reported that the venue did
    not make or not reported, a reject whose reasons name none of ``reasons_ok`` or whose
    order the venue has."""
    problems = [f"reported twice (ExecID {m[17]}, not PossDup): {m}" for m in ledger.duplicates]
    coids: dict[str, str] = {}
    for o in specs:
        last = ledger.last_report(o.cl_ord_id)
        if last is None:
            problems.append(f"{o.cl_ord_id}: sent, never answered")
            continue
        coid = venue_client_order_id(last[37], 0, CLIENT_ORDER_ID_RULES)
        state = await venue.query_order(o.symbol, coid)
        if last.get(39) == "8":
            reasons = [m.get(58) or "" for m in ledger.ers if m.get(11) == o.cl_ord_id]
            if not any(ok in r for r in reasons for ok in reasons_ok):
                problems.append(f"{o.cl_ord_id}: rejected without the store as the reason: "
                                f"{reasons}")
            if state is not None:
                problems.append(f"{o.cl_ord_id}: rejected, yet the venue has it: {state}")
            continue
        coids[coid] = last[37]
        if state is None or state.status is not VenueStatus.FILLED:
            problems.append(f"{o.cl_ord_id}: last report {last}, venue {state}")
        elif D(last[14]) != state.filled_quantity or D(last[6]) != state.average_price:
            problems.append(f"{o.cl_ord_id}: CumQty/AvgPx {last[14]}/{last[6]}, venue "
                            f"{state.filled_quantity}/{state.average_price}")
    made = {(coids[f.client_order_id], f.trade_id): f for f in await venue.fills_since(0)
            if f.client_order_id in coids}
    told: dict[tuple[str, str], int] = {}
    for m in ledger.fills():
        key = (m[37], m[17].rsplit(".T", 1)[-1])
        told[key] = told.get(key, 0) + 1
        if key not in made:
            problems.append(f"fill reported that the venue did not make: {m}")
    problems += [f"venue trade {k} reported {n} times" for k, n in told.items() if n > 1]
    problems += [f"venue trade never reported: {k} {f.quantity}@{f.price}"
                 for k, f in made.items() if k not in told]
    if ledger.contiguous != max(ledger.seen, default=0):
        holes = sorted(set(range(1, max(ledger.seen) + 1)) - ledger.seen)
        problems.append(f"MsgSeqNums never received: {holes}")
    return problems


@pytest.mark.postgres
def test_postgres_killed_mid_flow_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    pg = PgCluster()
    try:
        pg.start()

        async def kill() -> None:
            await asyncio.to_thread(pg.kill)

        async def restart() -> None:
            await asyncio.to_thread(pg.start)

        run(_scenario(tmp_path, 41, pg.url, kill, restart), timeout=120)
    finally:
        pg.stop()


def test_sqlite_disk_full_mid_flow_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    with small_disk(20) as disk:
        ballast: list[Path] = []

        async def fill() -> None:
            ballast.append(_fill(disk, 0))

        async def free() -> None:
            ballast.pop().unlink()

        run(_scenario(tmp_path, 43, f"sqlite:///{disk / 'fixgw.db'}", fill, free,
                      log_dir=disk / "log"), timeout=120)

