"""``fixgw client`` against an in-process gateway (the embedded default configuration on an
ephemeral port, SQLite store in tmp_path, paper venue).

The gateway runs on its own event loop in a thread; each client run is ``main([...])`` on the
test thread (one subprocess run covers ``python -m gateway.client``). Nothing sleeps: the client
waits on messages with timeouts (``--wait`` is how long it waits after the last message).
"""

from __future__ import annotations

import asyncio
import io
import json
import re
import subprocess
import sys
import threading
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

from gateway.app import Gateway, build_gateway
from gateway.client import main
from gateway.config import DEFAULT_CONFIG, Config, load_config
from gateway.fix.session import SessionID
from gateway.store.records import SessionRecord
from gateway.store.store import SessionStore

REPO = Path(__file__).resolve().parents[2]
T = TypeVar("T")
SID = str(SessionID("FIX.4.4", "GATEWAY", "CLIENT1"))
SESSION_KEY = "FIX.4.4:CLIENT1->GATEWAY"


def default_config(tmp_path: Path) -> Config:
    """The embedded configuration on port 0, no FIX log files, the store in tmp_path."""
    cfg = load_config(DEFAULT_CONFIG)
    gw = cfg.gateway.model_copy(update={
        "port": 0, "log_dir": None, "store": f"sqlite:///{tmp_path / 'fixgw.db'}",
    })
    return cfg.model_copy(update={"gateway": gw})


class GatewayThread:
    """The gateway on an event loop of its own, so the client can run on the test thread."""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="gateway", daemon=True)
        self.store: SessionStore | None = None
        self.gateway: Gateway | None = None

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def start(self) -> tuple[str, int]:
        self.thread.start()
        return self.call(self._start())

    async def _start(self) -> tuple[str, int]:
        self.store = SessionStore(self.cfg.gateway.store)
        await self.store.start()
        self.gateway = build_gateway(self.cfg, self.store)
        return await self.gateway.start()

    def record(self, sid: str = SID) -> SessionRecord:
        assert self.store is not None
        return self.call(self.store.load(sid))

    def stop(self) -> None:
        try:
            self.call(self._stop())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
            self.loop.close()

    async def _stop(self) -> None:
        if self.gateway is not None:
            await self.gateway.stop()
        if self.store is not None:
            await self.store.close()


@dataclass
class Run:
    code: int
    out: str
    err: str


@dataclass
class Env:
    gw: GatewayThread
    host: str
    port: int
    state: Path

    def client(self, *argv: str, state: Path | None = None) -> Run:
        out, err = io.StringIO(), io.StringIO()
        code = main([*argv, "--host", self.host, "--port", str(self.port),
                     "--state", str(state or self.state), "--timeout", "10"],
                    stdout=out, stderr=err)
        return Run(code, out.getvalue(), err.getvalue())

    def seqs(self, key: str = SESSION_KEY) -> dict[str, int]:
        data = json.loads(self.state.read_text())
        seqs: dict[str, int] = data["sessions"][key]
        return seqs

    def edit_seqs(self, **delta: int) -> None:
        data = json.loads(self.state.read_text())
        for k, d in delta.items():
            data["sessions"][SESSION_KEY][k] += d
        self.state.write_text(json.dumps(data))


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    gw = GatewayThread(default_config(tmp_path))
    host, port = gw.start()
    try:
        yield Env(gw, host, port, tmp_path / "client-CLIENT1.seq")
    finally:
        gw.stop()


def cl_ord_id(out: str, msg: str = "NewOrderSingle") -> str:
    m = re.search(rf"^> {msg}\b.*? ClOrdID=(\S+)", out, re.M)
    assert m, out
    return m.group(1)


def test_market_buy_fills(env: Env) -> None:
    r = env.client("buy", "BTC/USDT", "0.01")
    assert r.code == 0, r.err + r.out
    cl = cl_ord_id(r.out)
    assert re.match(r"CLIENT1-\d{13}-\d+$", cl)
    fill = re.search(rf"^< ExecutionReport ExecType=F OrdStatus=2 ClOrdID={cl} .*"
                     r"LastQty=0\.01 LastPx=\S+ CumQty=0\.01 .*AvgPx=\S+", r.out, re.M)
    assert fill, r.out
    assert "< Logon" in r.out and "> Logout" in r.out and "< Logout" in r.out
    assert f"{cl}: Filled buy 0.01 BTC/USDT" in r.out
    assert r.err == ""


def test_verbose_prints_raw_messages_and_masks_the_password(env: Env) -> None:
    r = env.client("orders", "-v", "--username", "u", "--password", "secret")
    assert r.code == 0, r.err + r.out
    assert "secret" not in r.out
    assert re.search(r"^  8=FIX\.4\.4\|9=\d+\|35=A\|34=1\|.*\|553=u\|554=\*\*\*\|10=\d{3}\|$",
                     r.out, re.M), r.out
    assert "0 open order(s)" in r.out


def test_resting_order_then_cancel(env: Env) -> None:
    r = env.client("buy", "BTC/USDT", "0.01", "--price", "90000", "--tif", "gtc",
                   "--wait", "0.5")
    assert r.code == 0, r.err + r.out
    cl = cl_ord_id(r.out)
    assert re.search(rf"ExecType=0 OrdStatus=0 ClOrdID={cl} .*Price=90000 TimeInForce=1",
                     r.out), r.out
    assert f"{cl}: New buy 0.01 BTC/USDT @ 90000" in r.out

    r = env.client("cancel", cl)
    assert r.code == 0, r.err + r.out
    cancel = cl_ord_id(r.out, "OrderCancelRequest")
    assert re.search(rf"^> OrderCancelRequest OrigClOrdID={cl} ClOrdID={cancel} "
                     r"Symbol=BTC/USDT Side=1", r.out, re.M), r.out
    assert re.search(rf"ExecType=4 OrdStatus=4 ClOrdID={cancel} OrigClOrdID={cl}", r.out)

    r = env.client("cancel", cl)  # no longer open
    assert r.code == 1
    assert "cancel of" in r.err and "rejected" in r.err


def test_replace_status_orders_and_cancel_all(env: Env) -> None:
    r = env.client("sell", "ETH/USDT", "0.5", "--price", "3700", "--wait", "0.5")
    assert r.code == 0, r.err + r.out
    cl = cl_ord_id(r.out)

    r = env.client("replace", cl, "--qty", "0.7", "--price", "3710")
    assert r.code == 0, r.err + r.out
    new = cl_ord_id(r.out, "OrderCancelReplaceRequest")
    assert re.search(rf"ExecType=5 OrdStatus=0 ClOrdID={new} OrigClOrdID={cl} .*"
                     r"OrderQty=0\.7 OrdType=2 Price=3710", r.out), r.out

    r = env.client("status", new)
    assert r.code == 0, r.err + r.out
    assert re.search(rf"ExecType=I OrdStatus=0 ClOrdID={new} .*OrderQty=0\.7", r.out), r.out

    r = env.client("buy", "SOL/USDT", "2", "--price", "165", "--wait", "0.5")
    assert r.code == 0, r.err + r.out
    sol = cl_ord_id(r.out)

    r = env.client("orders")
    assert r.code == 0, r.err + r.out
    assert "2 open order(s)" in r.out
    assert f"{new}: New sell 0.7 ETH/USDT @ 3710" in r.out
    assert f"{sol}: New buy 2 SOL/USDT @ 165" in r.out

    r = env.client("cancel-all")
    assert r.code == 0, r.err + r.out
    assert "TotalAffectedOrders=2" in r.out
    assert "2 order(s) canceled" in r.out

    r = env.client("orders")
    assert "0 open order(s)" in r.out


def test_order_unknown_to_the_state_file_is_looked_up(env: Env) -> None:
    r = env.client("buy", "BTC/USDT", "0.01", "--price", "90000", "--wait", "0.5")
    cl = cl_ord_id(r.out)
    data = json.loads(env.state.read_text())
    data["orders"] = {}
    env.state.write_text(json.dumps(data))

    r = env.client("cancel", cl)
    assert r.code == 0, r.err + r.out
    assert "> OrderMassStatusRequest" in r.out
    assert re.search(rf"ExecType=4 OrdStatus=4 .*OrigClOrdID={cl}", r.out), r.out

    r = env.client("cancel", "NO-SUCH-ORDER")
    assert r.code == 1
    assert "give --symbol and --side" in r.err


def test_sequence_numbers_continue_across_runs(env: Env) -> None:
    r = env.client("orders")
    assert r.code == 0, r.err + r.out
    first = env.seqs()
    assert first["next_out"] > 2 and first["next_in"] > 2

    r = env.client("buy", "BTC/USDT", "0.01", "-v")
    assert r.code == 0, r.err + r.out
    logon = re.search(r"^> Logon .*\n  (\S+)", r.out, re.M)
    assert logon, r.out
    assert f"|34={first['next_out']}|" in logon.group(1)
    assert "141=Y" not in logon.group(1)
    assert "ResendRequest" not in r.out and "SequenceReset" not in r.out
    second = env.seqs()
    assert second["next_out"] > first["next_out"]
    # the gateway agrees: it expects what the client sends next and vice versa
    rec = env.gw.record()
    assert (rec.next_target, rec.next_sender) == (second["next_out"], second["next_in"])


def test_reset_starts_again_at_one(env: Env) -> None:
    env.client("orders")
    r = env.client("orders", "--reset", "-v")
    assert r.code == 0, r.err + r.out
    assert re.search(r"^  8=FIX\.4\.4\|9=\d+\|35=A\|34=1\|.*\|141=Y\|", r.out, re.M), r.out
    assert re.search(r"^< Logon .*ResetSeqNumFlag=Y", r.out, re.M)
    assert env.seqs()["next_out"] == 4  # Logon, request, Logout


def test_gateway_resend_request_is_gap_filled(env: Env) -> None:
    env.client("orders")
    env.edit_seqs(next_out=5)  # five messages the gateway never saw
    r = env.client("buy", "BTC/USDT", "0.01", "-v")
    assert r.code == 0, r.err + r.out
    expected = env.gw.record().next_target
    assert re.search(r"^< ResendRequest BeginSeqNo=\d+ EndSeqNo=0", r.out, re.M), r.out
    assert re.search(r"^> SequenceReset GapFillFlag=Y NewSeqNo=\d+", r.out, re.M), r.out
    assert "ExecType=F OrdStatus=2" in r.out
    assert expected == env.seqs()["next_out"]


def test_client_asks_for_a_resend_when_it_sees_a_gap(env: Env) -> None:
    r = env.client("buy", "BTC/USDT", "0.01")
    cl = cl_ord_id(r.out)
    env.edit_seqs(next_in=-3)  # the Fill and the Logout were "lost"
    r = env.client("orders")
    assert r.code == 0, r.err + r.out
    assert "MsgSeqNum too high" in r.out
    assert re.search(r"^> ResendRequest BeginSeqNo=\d+ EndSeqNo=0", r.out, re.M), r.out
    # the resent ExecutionReport is printed, marked as a possible duplicate
    assert re.search(rf"^< ExecutionReport ExecType=F OrdStatus=2 ClOrdID={cl} .*\(PossDup\)$",
                     r.out, re.M), r.out
    assert "0 open order(s)" in r.out
    rec = env.gw.record()
    assert (rec.next_target, rec.next_sender) == (env.seqs()["next_out"], env.seqs()["next_in"])


def test_sequence_numbers_out_of_step_fail_the_logon(env: Env) -> None:
    env.client("orders")
    env.edit_seqs(next_out=-2)
    r = env.client("orders")
    assert r.code == 1
    assert "logon refused: MsgSeqNum too low" in r.err
    assert "--reset" in r.err
    assert env.client("orders", "--reset").code == 0


def test_rejected_order_exits_1(env: Env) -> None:
    """Through ``python -m gateway.client``: quantity above the session's max_order_qty."""
    proc = subprocess.run(
        [sys.executable, "-m", "gateway.client", "buy", "BTC/USDT", "101",
         "--port", str(env.port), "--state", str(env.state)],
        capture_output=True, text=True, timeout=60, cwd=REPO,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert re.search(r"^< ExecutionReport ExecType=8 OrdStatus=8 .*OrderQty=101 .*"
                     r"Text=risk: quantity 101 exceeds max_order_qty 100", proc.stdout, re.M)
    assert "rejected: risk: quantity 101 exceeds max_order_qty 100" in proc.stderr
    assert "< Logout" in proc.stdout


def test_fixt_session(env: Env) -> None:
    r = env.client("--fixt", "buy", "BTC/USDT", "0.01", "-v",
                   state=env.state.with_name("client-CLIENT50.seq"))
    assert r.code == 0, r.err + r.out
    assert re.search(r"^  8=FIXT\.1\.1\|.*\|49=CLIENT50\|.*\|1137=9\|", r.out, re.M), r.out
    assert "ExecType=F OrdStatus=2 ClOrdID=CLIENT50-" in r.out


def test_logon_failure_exits_1(env: Env) -> None:
    r = env.client("orders", "--sender", "NOBODY", state=env.state.with_name("x.seq"))
    assert r.code == 1
    assert "logon failed" in r.err


def test_no_gateway_exits_1(env: Env, tmp_path: Path) -> None:
    r = main(["orders", "--port", "1", "--state", str(tmp_path / "s.seq")],
             stdout=io.StringIO(), stderr=(err := io.StringIO()))
    assert r == 1
    assert "cannot connect to 127.0.0.1:1" in err.getvalue()


def test_usage_errors_exit_2() -> None:
    err = io.StringIO()
    assert main(["buy", "BTC/USDT", "-1"], stdout=io.StringIO(), stderr=err) == 2
    assert "must be positive" in err.getvalue()
    assert main(["fly"], stdout=io.StringIO(), stderr=io.StringIO()) == 2
    out = io.StringIO()
    assert main(["--help"], stdout=out, stderr=io.StringIO()) == 0
    assert "fixgw client buy BTC/USDT 0.01" in out.getvalue()


def test_balances_positions_and_the_book(env: Env) -> None:
    r = env.client("buy", "BTC/USDT", "0.01")
    assert r.code == 0, r.err + r.out
    r = env.client("balances")
    assert r.code == 0, r.err + r.out
    assert re.search(r"^paper\s+BTC\s+total 10\.00999\d*\s+available", r.out, re.M), r.out
    assert re.search(r"^paper\s+USDT\s+total \d", r.out, re.M), r.out
    r = env.client("positions")
    assert r.code == 0, r.err + r.out
    # the buy's fee (0.05%) was paid in BTC, out of the 0.01 bought
    assert re.search(r"^paper\s+BTC/USDT\s+qty 0\.009995 +avg \d.*fees 0\.000005 BTC", r.out,
                     re.M), r.out
    r = env.client("book", "BTC/USDT", "--depth", "3")
    assert r.code == 0, r.err + r.out
    assert "BTC/USDT: 3 bid and 3 offer levels" in r.out
    assert len(re.findall(r"^  bid +\d", r.out, re.M)) == 3
    r = env.client("book", "NOPE/USDT")
    assert r.code == 1 and "market data refused" in r.err


def test_vwap_and_pov_orders(env: Env) -> None:
    """--vwap: TargetStrategy 1 until ExpireTime (one bucket of 10 s by default: one child);
    --pov: TargetStrategy 2 with ParticipationRate (849), here until --expire-in (the embedded
    configuration's market has no synthetic trades: nothing to take part in)."""
    r = env.client("buy", "BTC/USDT", "0.002", "--vwap", "1", "-v")
    assert r.code == 0, r.err + r.out
    order = re.search(r"^  8=FIX\.4\.4\|.*\|35=D\|.*$", r.out, re.M)
    assert order and "|847=1|" in order.group(0) and "|126=" in order.group(0), r.out
    assert re.search(r"ExecType=F OrdStatus=2 .*CumQty=0\.002", r.out), r.out
    r = env.client("buy", "BTC/USDT", "0.002", "--pov", "0.1", "--expire-in", "1", "-v")
    assert r.code == 0, r.err + r.out
    order = re.search(r"^  8=FIX\.4\.4\|.*\|35=D\|.*$", r.out, re.M)
    assert order and "|847=2|" in order.group(0) and "|849=0.1|" in order.group(0), r.out
    assert re.search(r"ExecType=C OrdStatus=C .*CumQty=0", r.out), r.out
    r = env.client("buy", "BTC/USDT", "0.002", "--expire-in", "1")
    assert r.code == 2 and "--expire-in is for --pov" in r.err


def test_a_twap_order(env: Env) -> None:
    """--twap: TargetStrategy 1000 until ExpireTime, worked by the gateway's TWAP; the client
    waits through the window for the fills."""
    r = env.client("buy", "BTC/USDT", "0.002", "--twap", "2", "-v")
    assert r.code == 0, r.err + r.out
    order = re.search(r"^  8=FIX\.4\.4\|.*\|35=D\|.*$", r.out, re.M)
    assert order and "|847=1000|" in order.group(0) and "|126=" in order.group(0), r.out
    assert re.search(r"ExecType=F OrdStatus=2 .*CumQty=0\.002", r.out), r.out


def test_a_routed_order(env: Env) -> None:
    """--venue SOR: ExDestination SOR, the smart order router chooses (here the one venue)."""
    r = env.client("buy", "BTC/USDT", "0.002", "--venue", "SOR", "-v")
    assert r.code == 0, r.err + r.out
    order = re.search(r"^  8=FIX\.4\.4\|.*\|35=D\|.*$", r.out, re.M)
    assert order and "|100=SOR|" in order.group(0), r.out
    assert re.search(r"ExecType=F OrdStatus=2 .*CumQty=0\.002", r.out), r.out


def test_an_order_list_its_status_and_its_cancel(env: Env) -> None:
    r = env.client("list", "buy,BTC/USDT,0.01,90000", "buy,BTC/USDT,0.02,90001",
                   "buy,DOGE/USDT,1,1", "sell,ETH/USDT,0.1", "--list-id", "L1", "--tif", "gtc")
    assert r.code == 0, r.err + r.out
    assert re.search(r"^> NewOrderList .*ListID=L1 BidType=3 TotNoOrders=4 NoOrders=4 ", r.out,
                     re.M), r.out
    assert re.search(r"ExecType=0 OrdStatus=0 .*Symbol=ETH/USDT .*ListID=L1", r.out), r.out
    assert "< ListStatus" in r.out
    lines = r.out[r.out.index("list L1: Executing"):].splitlines()
    assert re.match(r"  CLIENT1-\d+-\d+: New CumQty=0 LeavesQty=0\.01 ", lines[1]), lines
    assert "Rejected" in lines[3] and "DOGE/USDT" in lines[3]
    assert re.match(r"  CLIENT1-\d+-\d+: (New|PartiallyFilled|Filled) ", lines[4]), lines

    r = env.client("list-status", "L1")
    assert r.code == 0, r.err + r.out
    assert "list L1: Executing" in r.out

    r = env.client("list-cancel", "L1", "--wait", "5")
    assert r.code == 0, r.err + r.out
    assert "list L1: AllDone" in r.out
    assert r.out.count(": Canceled CumQty=0 LeavesQty=0") == 2

    r = env.client("list-status", "nope")
    assert r.code == 1 and "unknown ListID nope" in r.err
