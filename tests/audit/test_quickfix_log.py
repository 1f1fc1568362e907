"""``fixgw audit`` on a log written by QuickFIX itself: a QuickFIX initiator (the C++ engine,
``quickfix`` package) with its FileLog on trades with the fixgw gateway (in process, SQLite
store, the paper venue) -- an order filled at once, one resting then cancelled -- and its
messages log (``<timestamp> : <message>``, the client's side) is audited: clean. The same log
with a report taken out is not.

Skipped when ``quickfix`` is not installed (``scripts/setup.sh --interop``), unless
``REQUIRE_INTEROP=1``, which turns the skip into a failure."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest

try:
    import quickfix as fix
except ImportError as exc:
    _MISSING = f"the quickfix package is not importable ({exc}): run scripts/setup.sh --interop"
    if os.environ.get("REQUIRE_INTEROP") == "1":
        pytest.fail(f"{_MISSING} (REQUIRE_INTEROP=1)", pytrace=False)
    pytest.skip(_MISSING, allow_module_level=True)

from interop.qf_initiator import Event, Initiator, Version
from orders.support import running, session
from server.harness import run as run_async

from .support import audit

pytestmark = [pytest.mark.interop, pytest.mark.timeout(120)]

CLIENT = Version("FIX.4.4", "FIX.4.4", "CLIENT1", target_comp_id="GATEWAY")
LENIENT = {"ValidateUserDefinedFields": "N", "AllowUnknownMsgFields": "Y",
           "ValidateFieldsOutOfOrder": "N", "CheckLatency": "N"}
"""QuickFIX checks what the gateway sends against its own dictionary; the audit is the test."""


def _order(cl: str, price: str, tif: str) -> fix.Message:
    msg = fix.Message()
    msg.getHeader().setField(35, "D")
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H:%M:%S.%f")[:-3]
    for tag, value in ((11, cl), (21, "1"), (38, "0.01"), (40, "2"), (44, price), (54, "1"),
                       (55, "BTC/USDT"), (59, tif), (60, stamp)):
        msg.setField(tag, value)
    return msg


def _cancel(cl: str, orig: str) -> fix.Message:
    msg = fix.Message()
    msg.getHeader().setField(35, "F")
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H:%M:%S.%f")[:-3]
    for tag, value in ((11, cl), (38, "0.01"), (41, orig), (54, "1"), (55, "BTC/USDT"),
                       (60, stamp)):
        msg.setField(tag, value)
    return msg


def _report(cl: str, status: str) -> object:
    def seen(history: Sequence[Event]) -> bool:
        return any(e.kind == "from_app" and e.msg_type == "8" and e.get(11) == cl
                   and e.get(39) == status for e in history)
    return seen


def _quickfix_session(tmp: Path) -> Path:
    """Runs the session; the path of QuickFIX's messages log."""
    workdir = tmp / "quickfix"

    async def body() -> None:
        async with running(tmp, [session("CLIENT1", "FIX.4.4")]) as r:
            with Initiator(CLIENT, host=r.host, port=r.port, workdir=workdir,
                           extra=LENIENT) as qf:
                qf.start()
                await asyncio.to_thread(qf.wait_logon)
                wait = qf.inbox.wait_until
                qf.send(_order("Q1", "200000", "1"))  # marketable: filled at once
                await asyncio.to_thread(wait, _report("Q1", "2"), "Q1 filled")
                qf.send(_order("Q2", "90000", "1"))   # rests
                await asyncio.to_thread(wait, _report("Q2", "0"), "Q2 new")
                qf.send(_cancel("Q3", "Q2"))
                await asyncio.to_thread(wait, _report("Q3", "4"), "Q2 cancelled")
                await asyncio.to_thread(qf.logout)
                qf.stop()

    run_async(body(), 60)
    log = workdir / "log" / "FIX.4.4-CLIENT1-GATEWAY.messages.current.log"
    assert log.exists(), sorted((workdir / "log").iterdir())
    return log


def test_a_quickfix_filelog_is_audited(tmp_path: Path) -> None:
    log = _quickfix_session(tmp_path)
    text = log.read_bytes()
    assert b" : 8=FIX.4.4\x01" in text and b"\x0135=D\x01" in text  # QuickFIX's own format

    out = tmp_path / "clean.json"
    code, summary, err = audit(log, "--json", out)
    assert code == 0, summary + err
    assert "findings: none" in summary and "FIX.4.4:CLIENT1->GATEWAY" in summary
    doc = json.loads(out.read_text())
    orders = {tuple(o["cl_ord_ids"]): o for o in doc["orders"]}
    assert orders[("Q1",)]["ord_status"] == "2" and orders[("Q1",)]["cum_qty"] == "0.01"
    assert orders[("Q2", "Q3")]["ord_status"] == "4"

    # a copy with the fill taken out: the gateway's MsgSeqNum skips, the order never fills
    lines = text.splitlines(keepends=True)
    fill = next(i for i, ln in enumerate(lines) if b"\x0135=8\x01" in ln
                and b"\x0111=Q1\x01" in ln and b"\x0139=2\x01" in ln)
    faulty = tmp_path / "faulty" / log.name
    faulty.parent.mkdir()
    faulty.write_bytes(b"".join(lines[:fill] + lines[fill + 1:]))
    code, summary, err = audit(faulty, "--json", out)
    assert code == 1, summary + err
    kinds = json.loads(out.read_text())["summary"]["findings_by_kind"]
    assert "sequence-gap" in kinds, kinds
