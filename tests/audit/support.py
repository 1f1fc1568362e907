"""Logs written by the real gateway (in process, SQLite store, the paper venue) for the audit
tests, and helpers to run ``fixgw audit`` and to inject faults into copies of a log."""

# ruff: noqa: ASYNC109

from __future__ import annotations

import contextlib
import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orders.support import OrderClient, Run, running, session
from server.harness import run as run_async

from gateway.cli import main
from gateway.store.store import SessionStore

SOH = b"\x01"
FIX44_LOG = "FIX.4.4-GATEWAY-CLIENT1.messages.current.log"
FIXT_LOG = "FIXT.1.1-GATEWAY-CLIENT50.messages.current.log"


@dataclass
class Flow:
    log_dir: Path
    store_url: str

    @property
    def fix44(self) -> Path:
        return self.log_dir / FIX44_LOG

    @property
    def fixt(self) -> Path:
        return self.log_dir / FIXT_LOG


async def trade(r: Run, c: OrderClient, p: str) -> None:
    """One client's day: a resting order replaced then cancelled, an order filled at once and
    a cancel too late for it, a sell that sweeps several bid levels (partial fills), an order
    refused (unknown symbol), a cancel of an unknown order."""
    await c.order(f"{p}A1", price="90000", tif="1")
    await c.er(t11=f"{p}A1", t39="0")
    await c.replace(f"{p}A2", f"{p}A1", qty="0.2", price="90001")
    await c.er(t11=f"{p}A2", t150="E")
    await c.er(t11=f"{p}A2", t150="5")
    await c.cancel(f"{p}A3", f"{p}A2", qty="0.2")
    await c.er(t11=f"{p}A3", t150="6")
    await c.er(t11=f"{p}A3", t150="4")
    await c.order(f"{p}B1", qty="0.01", price="200000")
    await c.er(t11=f"{p}B1", t39="0")
    await c.er(t11=f"{p}B1", t39="2")
    await c.cancel(f"{p}B2", f"{p}B1", qty="0.01")
    await c.expect("9", t11=f"{p}B2")
    await c.order(f"{p}S1", side="2", qty="2.5", price="90000")
    while (await c.er(t11=f"{p}S1"))[39] != "2":
        pass
    await c.order(f"{p}X1", symbol="NOPE/USDT", price="1")
    await c.er(t11=f"{p}X1", t39="8")
    await c.cancel(f"{p}U2", f"{p}U1")
    await c.expect("9", t11=f"{p}U2")
    await c.order(f"{p}R1", price="90000", tif="1")  # left open at the end
    await c.er(t11=f"{p}R1", t39="0")


def make_flow(tmp: Path, store_url: str | None = None) -> Flow:
    """The gateway's logs and store after :func:`trade` on a FIX 4.4 and a FIXT 1.1 session,
    then a Logon the gateway refuses (MsgSeqNum too low) on the FIX 4.4 one. ``store_url``:
    that store (PostgreSQL) instead of SQLite in ``tmp``."""
    log_dir = tmp / "log"

    async def body() -> None:
        sessions = [session("CLIENT1", "FIX.4.4"), session("CLIENT50", "FIXT.1.1")]
        store = None
        if store_url is not None:
            store = SessionStore(store_url)
            await store.start()
        try:
            await _trade_all(tmp, sessions, log_dir, store)
        finally:
            if store is not None:
                await store.close()

    run_async(body(), 60)
    return Flow(log_dir, store_url or f"sqlite:///{tmp / 'fixgw.db'}")


async def _trade_all(tmp: Path, sessions: list[dict[str, Any]], log_dir: Path,
                     store: SessionStore | None) -> None:
    async with running(tmp, sessions, store=store, log_dir=log_dir,
                       gateway={"message_log": "both"}) as r:
        c = await r.client("CLIENT1", "FIX.4.4")
        await trade(r, c, "")
        c50 = await r.client("CLIENT50", "FIXT.1.1")
        await trade(r, c50, "T")
        await c.logout()
        await c50.logout()
        # a Logon the gateway refuses (MsgSeqNum too low): part of the trail
        refused = await OrderClient.connect(r.host, r.port, sender="CLIENT1",
                                            begin="FIX.4.4", next_seq=1)
        answer = await refused.logon()
        assert answer.msg_type == "5", str(answer)
        await refused.close()


def audit(*args: str | Path) -> tuple[int, str, str]:
    """``fixgw audit ARGS`` in this process: (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["audit", *(str(a) for a in args)])
    return code, out.getvalue(), err.getvalue()


# --- faults -------------------------------------------------------------------------------------


def lines_of(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def field(line: bytes, tag: int) -> bytes | None:
    m = re.search(rb"\x01%d=([^\x01]*)\x01" % tag, line)
    return m.group(1) if m else None


def set_field(line: bytes, tag: int, value: bytes) -> bytes:
    return re.sub(rb"\x01%d=[^\x01]*\x01" % tag, b"\x01%d=%s\x01" % (tag, value), line, count=1)


def find(lines: list[bytes], *pairs: tuple[int, bytes], start: int = 0) -> int:
    """The index of the first line from ``start`` with every (tag, value) of ``pairs``."""
    for i in range(start, len(lines)):
        if all(field(lines[i], t) == v for t, v in pairs):
            return i
    raise AssertionError(f"no line with {pairs}")
