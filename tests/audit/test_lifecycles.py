"""Order lifecycles that real counterparties produce and FIX allows, which the audit must
accept, and a FIX 4.2 log (ExecTransType, ExecType 1/2 for fills).

* parity #70: fills keep arriving under the original ClOrdID until a cancel/replace is
  confirmed (and the replace's own reports then come under the new one);
* roq-rencap #47: a PendingCancel and its Canceled carry different ClOrdIDs of the chain.
"""

from __future__ import annotations

import json
from pathlib import Path

from .support import audit
from .synth import LogWriter


def _er(cl: bytes, exec_id: bytes, exec_type: bytes, status: bytes, qty: bytes, cum: bytes,
        leaves: bytes, avg: bytes, *extra: tuple[int, bytes], oid: bytes = b"O1"
        ) -> tuple[tuple[int, bytes], ...]:
    return ((6, avg), (11, cl), (14, cum), (17, exec_id), (37, oid), (38, qty), (39, status),
            (54, b"1"), (55, b"BTC/USDT"), (150, exec_type), (151, leaves), *extra)


def _run(tmp: Path, w: LogWriter) -> tuple[int, dict[str, object], str]:
    path = w.write(tmp)
    out = tmp / "a.json"
    code, text, err = audit(path, "--json", out)
    assert code in (0, 1), err
    return code, json.loads(out.read_text()), text


def test_fills_under_the_original_clordid_until_the_replace_is_confirmed(tmp_path: Path
                                                                          ) -> None:
    w = LogWriter()
    w.logon()
    w.client_sends(b"D", (11, b"C1"), (38, b"3"), (40, b"2"), (44, b"100"), (54, b"1"),
                   (55, b"BTC/USDT"))
    w.gateway_sends(b"8", *_er(b"C1", b"e1", b"0", b"0", b"3", b"0", b"3", b"0"))
    w.client_sends(b"G", (11, b"C2"), (41, b"C1"), (38, b"4"), (40, b"2"), (44, b"101"),
                   (54, b"1"), (55, b"BTC/USDT"))
    w.gateway_sends(b"8", *_er(b"C2", b"e2", b"E", b"E", b"3", b"0", b"3", b"0", (41, b"C1")))
    # the replace is pending: fills still come under C1, the order's size still 3
    w.gateway_sends(b"8", *_er(b"C1", b"e3", b"F", b"1", b"3", b"1", b"2", b"100",
                               (31, b"100"), (32, b"1")))
    w.gateway_sends(b"8", *_er(b"C1", b"e4", b"F", b"1", b"3", b"2", b"1", b"100",
                               (31, b"100"), (32, b"1")))
    # confirmed: the new size, under C2 from here on
    w.gateway_sends(b"8", *_er(b"C2", b"e5", b"5", b"1", b"4", b"2", b"2", b"100",
                               (41, b"C1"), (44, b"101")))
    w.gateway_sends(b"8", *_er(b"C2", b"e6", b"F", b"2", b"4", b"4", b"0", b"100.5",
                               (31, b"101"), (32, b"2")))
    code, doc, text = _run(tmp_path, w)
    assert code == 0, text
    (order,) = doc["orders"]  # type: ignore[misc]
    assert order["cl_ord_ids"] == ["C1", "C2"] and order["cum_qty"] == "4"
    assert order["ord_status"] == "2" and order["fills"] == 3

    # the same, with one more fill under C1 after the replace was confirmed: that is stale
    w.gateway_sends(b"8", *_er(b"C1", b"e7", b"F", b"2", b"4", b"4", b"0", b"100.5",
                               (31, b"101"), (32, b"0.5")))
    code, doc, text = _run(tmp_path, w)
    assert code == 1 and "stale-clordid" in doc["summary"]["findings_by_kind"], text  # type: ignore[index]


def test_pending_cancel_and_canceled_under_different_clordids(tmp_path: Path) -> None:
    w = LogWriter()
    w.logon()
    w.client_sends(b"D", (11, b"K1"), (38, b"1"), (40, b"2"), (44, b"100"), (54, b"1"),
                   (55, b"BTC/USDT"))
    w.gateway_sends(b"8", *_er(b"K1", b"k1", b"0", b"0", b"1", b"0", b"1", b"0"))
    w.client_sends(b"F", (11, b"K2"), (41, b"K1"), (38, b"1"), (54, b"1"), (55, b"BTC/USDT"))
    # PendingCancel under the order's ClOrdID, Canceled under the cancel's (roq-rencap #47)
    w.gateway_sends(b"8", *_er(b"K1", b"k2", b"6", b"6", b"1", b"0", b"1", b"0"))
    w.gateway_sends(b"8", *_er(b"K2", b"k3", b"4", b"4", b"1", b"0", b"0", b"0", (41, b"K1")))
    # and the other way round on a second order
    w.client_sends(b"D", (11, b"L1"), (38, b"1"), (40, b"2"), (44, b"100"), (54, b"1"),
                   (55, b"BTC/USDT"))
    w.gateway_sends(b"8", *_er(b"L1", b"l1", b"0", b"0", b"1", b"0", b"1", b"0", oid=b"O2"))
    w.client_sends(b"F", (11, b"L2"), (41, b"L1"), (38, b"1"), (54, b"1"), (55, b"BTC/USDT"))
    w.gateway_sends(b"8", *_er(b"L2", b"l2", b"6", b"6", b"1", b"0", b"1", b"0", (41, b"L1"),
                               oid=b"O2"))
    w.gateway_sends(b"8", *_er(b"L1", b"l3", b"4", b"4", b"1", b"0", b"0", b"0", oid=b"O2"))
    code, doc, text = _run(tmp_path, w)
    assert code == 0, text
    orders = {tuple(o["cl_ord_ids"]): o for o in doc["orders"]}  # type: ignore[attr-defined]
    assert orders[("K1", "K2")]["ord_status"] == "4"
    assert orders[("L1", "L2")]["ord_status"] == "4"
    assert doc["summary"]["orders"] == 2  # type: ignore[index]


def _fix42_log() -> LogWriter:
    w = LogWriter(begin=b"FIX.4.2")
    w.logon()
    w.client_sends(b"D", (11, b"A1"), (21, b"1"), (38, b"2"), (40, b"2"), (44, b"50"),
                   (54, b"1"), (55, b"ETH/USDT"))
    # FIX 4.2: ExecTransType (20) 0 = new; fills are ExecType 1 (partial) and 2 (fill)
    w.gateway_sends(b"8", *_er(b"A1", b"x1", b"0", b"0", b"2", b"0", b"2", b"0", (20, b"0")))
    w.gateway_sends(b"8", *_er(b"A1", b"x2", b"1", b"1", b"2", b"1", b"1", b"50",
                               (20, b"0"), (31, b"50"), (32, b"1")))
    # a trade correction (ExecTransType 2) of that fill: 1 at 49
    w.gateway_sends(b"8", *_er(b"A1", b"x3", b"1", b"1", b"2", b"1", b"1", b"49",
                               (19, b"x2"), (20, b"2"), (31, b"49"), (32, b"1")))
    w.gateway_sends(b"8", *_er(b"A1", b"x4", b"2", b"2", b"2", b"2", b"0", b"49.5",
                               (20, b"0"), (31, b"50"), (32, b"1")))
    return w


def test_a_fix42_log_is_read_and_checked(tmp_path: Path) -> None:
    code, doc, text = _run(tmp_path, _fix42_log())
    assert code == 0, text
    assert "FIX.4.2:GATEWAY->CLIENT1" in text
    (order,) = doc["orders"]  # type: ignore[misc]
    assert order["cum_qty"] == "2" and order["avg_px"] == "49.5" and order["ord_status"] == "2"

    # a fault in it is found: the last fill's CumQty one short
    w = _fix42_log()
    w.lines[-1] = w.lines[-1].replace(b"\x0114=2\x01", b"\x0114=1.5\x01")
    (tmp_path / "bad").mkdir()
    code, doc, text = _run(tmp_path / "bad", w)
    assert code == 1 and "cum-qty" in doc["summary"]["findings_by_kind"], text  # type: ignore[index]
