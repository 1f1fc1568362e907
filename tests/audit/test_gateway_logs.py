"""``fixgw audit`` on logs the gateway wrote in real flows (FIX 4.4 and FIXT 1.1 sessions:
orders, replaces, cancels, partial fills, a cancel too late, a refused order and Logon), then
on copies with one fault injected each, which must be found; the store compared and read."""

from __future__ import annotations

import gzip
import json
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from .support import SOH, Flow, audit, field, find, lines_of, make_flow, set_field

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def flow(tmp_path_factory: pytest.TempPathFactory) -> Flow:
    return make_flow(tmp_path_factory.mktemp("flow"))


def kinds(tmp: Path, *args: str | Path) -> tuple[int, dict[str, int]]:
    out = tmp / "audit.json"
    code, _, err = audit(*args, "--json", out)
    assert code in (0, 1), err
    return code, json.loads(out.read_text())["summary"]["findings_by_kind"]


def test_the_gateways_own_logs_are_clean(flow: Flow, tmp_path: Path) -> None:
    code, out, err = audit(flow.log_dir)
    assert code == 0, out + err
    assert "findings: none" in out
    assert "2 sessions" in out and "FIXT.1.1:GATEWAY->CLIENT50" in out
    # the refused Logon is part of the trail
    assert "[logon-rejected] Logon from CLIENT1 answered by a Logout: MsgSeqNum too low" in out
    doc = tmp_path / "a.json"
    assert audit(flow.log_dir, "--json", doc)[0] == 0
    report = json.loads(doc.read_text())
    assert report["summary"]["orders"] == 12 and report["summary"]["fills"] == 12
    by_cl = {tuple(o["cl_ord_ids"]): o for o in report["orders"]}
    replaced = by_cl[("A1", "A2", "A3")]
    assert replaced["ord_status"] == "4" and replaced["order_qty"] == "0.2"
    swept = by_cl[("S1",)]
    assert swept["fills"] == 5 and swept["cum_qty"] == "2.5" and swept["ord_status"] == "2"
    assert by_cl[("R1",)]["open"] is True


def test_the_store_agrees_and_its_message_log_reads_the_same(flow: Flow, tmp_path: Path
                                                            ) -> None:
    code, out, err = audit(flow.log_dir, "--store", flow.store_url)
    assert code == 0, out + err
    assert "compared with" in out
    # no PATH: the store's message_log is read instead of the files
    code, from_store, err = audit("--store", flow.store_url)
    assert code == 0, from_store + err
    assert "62 messages" in from_store and "2 sessions" in from_store


def test_a_store_that_differs_is_reported(flow: Flow, tmp_path: Path) -> None:
    db = tmp_path / "copy.db"
    shutil.copy(flow.store_url.removeprefix("sqlite:///"), db)
    with sqlite3.connect(db) as conn:
        (oid, snap), = conn.execute(
            "SELECT order_id, snapshot FROM orders WHERE cl_ord_id = 'S1'").fetchall()
        data = json.loads(snap)
        data["cum_qty"] = "2.4"
        conn.execute("UPDATE orders SET snapshot = ? WHERE order_id = ?",
                     (json.dumps(data), oid))
    code, out, _ = audit(flow.log_dir, "--store", f"sqlite:///{db}")
    assert code == 1
    assert "[store-difference]" in out and "CumQty 2.5 in the log, 2.4 in the store" in out


Fault = Callable[[list[bytes]], list[bytes]]


def _duplicate_exec_id(lines: list[bytes]) -> list[bytes]:
    first = find(lines, (11, b"S1"), (150, b"F"))
    second = find(lines, (11, b"S1"), (150, b"F"), start=first + 1)
    lines[second] = set_field(lines[second], 17, field(lines[first], 17) or b"")
    return lines


def _missing_fill(lines: list[bytes]) -> list[bytes]:
    first = find(lines, (11, b"S1"), (150, b"F"))
    del lines[find(lines, (11, b"S1"), (150, b"F"), start=first + 1)]
    return lines


def _sequence_gap(lines: list[bytes]) -> list[bytes]:
    del lines[find(lines, (11, b"A3"), (150, b"6"))]  # the PendingCancel: nothing else misses it
    return lines


def _illegal_transition(lines: list[bytes]) -> list[bytes]:
    i = find(lines, (11, b"B1"), (150, b"0"))  # New -> Canceled, then a fill of a done order
    lines[i] = set_field(set_field(set_field(lines[i], 150, b"4"), 39, b"4"), 151, b"0")
    return lines


def _unanswered_cancel(lines: list[bytes]) -> list[bytes]:
    del lines[find(lines, (35, b"9"), (11, b"B2"))]
    return lines


def _orphan(lines: list[bytes]) -> list[bytes]:
    del lines[find(lines, (35, b"D"), (11, b"B1"))]
    return lines


def _avg_px(lines: list[bytes]) -> list[bytes]:
    i = find(lines, (11, b"S1"), (39, b"2"))
    lines[i] = set_field(lines[i], 6, b"96000")
    return lines


def _leaves_qty(lines: list[bytes]) -> list[bytes]:
    i = find(lines, (11, b"S1"), (39, b"1"))
    lines[i] = set_field(lines[i], 151, b"2.5")
    return lines


def _unanswered_order(lines: list[bytes]) -> list[bytes]:
    for i in reversed(range(len(lines))):
        if field(lines[i], 11) == b"R1" and field(lines[i], 35) == b"8":
            del lines[i]
    return lines


def _possdup_resend_is_fine(lines: list[bytes]) -> list[bytes]:
    """Not a fault: a fill resent with PossDupFlag (as after a ResendRequest)."""
    i = find(lines, (11, b"S1"), (150, b"F"))
    copy = lines[i].replace(b"\x0149=GATEWAY", b"\x0143=Y\x0149=GATEWAY", 1)
    lines.insert(i + 1, copy)
    return lines


@pytest.mark.parametrize(("fault", "expected"), [
    (_duplicate_exec_id, "duplicate-exec-id"),
    (_missing_fill, "cum-qty"),
    (_missing_fill, "sequence-gap"),
    (_sequence_gap, "sequence-gap"),
    (_illegal_transition, "illegal-transition"),
    (_unanswered_cancel, "cancel-unanswered"),
    (_unanswered_order, "order-unanswered"),
    (_orphan, "orphan-report"),
    (_avg_px, "avg-px"),
    (_leaves_qty, "leaves-qty"),
])
def test_each_injected_fault_is_found(flow: Flow, tmp_path: Path, fault: Fault,
                                      expected: str) -> None:
    broken = tmp_path / flow.fix44.name
    broken.write_bytes(b"".join(fault(lines_of(flow.fix44))))
    code, found = kinds(tmp_path, broken)
    assert code == 1 and expected in found, found
    if fault is _sequence_gap:
        assert found == {"sequence-gap": 1}


def test_a_possdup_resend_is_not_a_duplicate(flow: Flow, tmp_path: Path) -> None:
    log = tmp_path / flow.fix44.name
    log.write_bytes(b"".join(_possdup_resend_is_fine(lines_of(flow.fix44))))
    assert kinds(tmp_path, log) == (0, {})


def test_captures_with_bars_and_gzip_read_the_same(flow: Flow, tmp_path: Path) -> None:
    """A plain capture with | delimiters (and a time at the start of each line), gzip'ed."""
    text = b""
    for line in lines_of(flow.fix44):
        stamp, _, msg = line.partition(b" : ")
        iso = b"%s-%s-%s %s" % (stamp[:4], stamp[4:6], stamp[6:8], stamp[9:])
        text += iso + b" INFO received " + msg.rstrip(b"\n").replace(SOH, b"|") + b"\n"
    capture = tmp_path / "capture.txt.gz"
    capture.write_bytes(gzip.compress(text))
    code, out, err = audit(capture)
    assert code == 0, out + err
    assert "32 messages" in out and "FIX.4.4:GATEWAY->CLIENT1" in out


def test_one_orders_story(flow: Flow) -> None:
    code, out, _ = audit(flow.log_dir, "--order", "A2")
    assert code == 0
    assert out.startswith("order #") and "ClOrdID A1 -> A2 -> A3" in out
    assert "OrderCancelReplaceRequest" in out and "ExecType=5 (replaced)" in out
    assert "   39 OrdStatus                4 (canceled)" in out
    code, only, _ = audit(flow.log_dir, "--order", "A2", "--message-types", "G")
    assert "OrderCancelReplaceRequest" in only and "NewOrderSingle" not in only
    assert audit(flow.log_dir, "--order", "NOPE")[0] == 2


def test_filters(flow: Flow) -> None:
    code, out, _ = audit(flow.log_dir, "--session", "CLIENT50")
    assert code == 0 and "1 session," in out and "CLIENT50" in out
    assert "30 messages of other sessions left out" not in out
    code, out, _ = audit(flow.log_dir, "--until", "2000-01-01")
    assert code == 0 and "0 messages" in out


def test_bad_usage_and_unreadable_input(tmp_path: Path) -> None:
    code, _, err = audit(tmp_path / "missing.log")
    assert code == 2 and "missing.log: no such file or directory" in err
    bad = tmp_path / "bad.log"
    bad.write_bytes(b"\nhello world\n")
    code, _, err = audit(bad)
    assert code == 2 and "bad.log:2: not a FIX log" in err
    broken = tmp_path / "broken.gz"
    broken.write_bytes(gzip.compress(b"20260101-00:00:00 : 8=FIX.4.4\x019=5\x0135=0\x01\n" * 99)
                       [:-30])
    code, _, err = audit(broken)
    assert code == 2 and "broken.gz:" in err and "unreadable" in err
    code, _, err = audit(bad, "--since", "yesterday")
    assert code == 2 and "not a time" in err
    assert audit()[0] == 2
