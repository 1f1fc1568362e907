"""The compiled fast path (``_cscan.Engine``, gateway/audit/csrc/) must leave the audit as the
Python checks make it: the same JSON -- findings, events, sessions, every order -- and the same
Chains handed to sinks, with the fast path and without it, on the same inputs.

The inputs are the benchmark's logs with faults of every kind injected at random (lines lost,
repeated, resent, swapped; figures, statuses, ids and stamps changed; decimals written in forms
only Python reads; time jumps that make requests overdue and closed orders leave), and
hand-written logs for the paths a random fault rarely takes. Both runs are in this process,
with the checks compiled (the pure-Python checks are compared with the compiled ones in
test_native.py).

Skipped where ``_cscan`` is not built, unless ``REQUIRE_NATIVE=1``."""

from __future__ import annotations

import io
import json
import os
import random
import re
from pathlib import Path

import pytest

from gateway.audit import native
from gateway.audit.chains import Chain
from gateway.audit.checker import Auditor
from gateway.audit.findings import Findings
from gateway.audit.run import AuditOptions, run_audit
from gateway.audit.scan import CSCAN
from gateway.audit.sources import FileSource

from .synth import LogWriter, bench_module

pytestmark = pytest.mark.timeout(600)

if CSCAN is None:
    if os.environ.get("REQUIRE_NATIVE") == "1" and not native.PURE:
        pytest.fail("the audit's compiled parts are not built (REQUIRE_NATIVE=1)",
                    pytrace=False)
    pytest.skip("the audit's compiled parts are not built or not used here",
                allow_module_level=True)

SOH = b"\x01"
LOG = "FIX.4.4-GATEWAY-CLIENT1.messages.current.log"


def audit_json(paths: list[Path], out: Path, fast: bool, **opts: object
               ) -> tuple[int, dict[str, object], list[dict[str, object]]]:
    """``fixgw audit PATHS --json OUT``, with the fast path or without: the exit code, the
    JSON, and what a sink saw of each Chain handed on when ``opts`` asks for a sink."""
    seen: list[dict[str, object]] = []
    sinks = []
    if opts.pop("sink", False):
        def sink(chain: Chain) -> None:
            seen.append({**chain.summary(), "cum": str(chain.cum),
                         "notional": str(chain.notional), "exec_ids": list(chain.exec_ids),
                         "pending": len(chain.pending), "last_text": chain.last_text,
                         "closed_at": chain.closed_at})
        sinks.append(sink)
    code = run_audit(AuditOptions(paths=[str(p) for p in paths], json_path=out, fast=fast,
                                  extra_sinks=sinks, **opts),  # type: ignore[arg-type]
                     out=io.StringIO(), err=io.StringIO())
    doc = json.loads(out.read_text()) if out.exists() else {}
    doc.pop("elapsed_s", None)
    return code, doc, seen


def assert_same(paths: list[Path], tmp: Path, **opts: object) -> dict[str, object]:
    slow = audit_json(paths, tmp / "slow.json", False, **dict(opts))
    fast = audit_json(paths, tmp / "fast.json", True, **dict(opts))
    assert slow[0] == fast[0]
    for key in slow[1]:
        assert slow[1][key] == fast[1][key], key
    assert slow[1] == fast[1]
    assert slow[2] == fast[2]
    return slow[1]


# --- faults at random ---------------------------------------------------------------------------

_FIELD = re.compile(rb"\x01(\d+)=([^\x01]*)")
ODD_DECIMALS = [b"1e-2", b" 0.5", b"0.50", b"00.5", b"-0", b"1_0", b"NaN", b"", b"x",
                b"0.0300000000000000000000000001", b"99999999999999999999999999.9", b".5",
                b"5.", b"0", b"-1"]


def _set(line: bytes, tag: int, value: bytes) -> bytes:
    pat = re.compile(rb"\x01%d=[^\x01]*" % tag)
    if pat.search(line):
        return pat.sub(lambda _: b"\x01%d=" % tag + value, line, count=1)
    return line.replace(b"\x0110=", b"\x01%d=%s\x0110=" % (tag, value), 1)


def _get(line: bytes, tag: int) -> bytes | None:
    m = re.search(rb"\x01%d=([^\x01]*)" % tag, line)
    return m.group(1) if m else None


def _shift(line: bytes, seconds: int) -> bytes:
    stamp, sep, rest = line.partition(b" : ")
    hms = stamp[9:17]
    h, m, s = int(hms[:2]), int(hms[3:5]), int(hms[6:8]) + seconds
    m, s = m + s // 60, s % 60
    h, m = h + m // 60, m % 60
    return stamp[:9] + b"%02d:%02d:%02d" % (h % 24, m, s) + stamp[17:] + sep + rest


def mutate(lines: list[bytes], rng: random.Random, faults: int) -> list[bytes]:
    out = list(lines)
    for _ in range(faults):
        i = rng.randrange(2, len(out) - 2)
        line = out[i]
        kind = rng.randrange(17)
        if kind == 0:
            del out[i]
        elif kind == 1:
            out.insert(i, line)
        elif kind == 2:
            out.insert(rng.randrange(i, min(len(out), i + 400)),
                       _set(line, 43, b"Y").replace(b"\x0152=", b"\x0143=Y\x0152=", 1)
                       if _get(line, 43) is None else line)
        elif kind == 3:
            out[i], out[i + 1] = out[i + 1], out[i]
        elif kind == 4 and b"\x0135=8\x01" in line:
            tag = rng.choice([14, 151, 6, 32, 31, 38, 44])
            value = _get(line, tag) or b"1"
            out[i] = _set(line, tag, rng.choice([value + b"0", value[:-1] or b"1", b"0",
                                                 rng.choice(ODD_DECIMALS)]))
        elif kind == 5 and b"\x0135=8\x01" in line:
            out[i] = _set(line, rng.choice([39, 150]), rng.choice(
                [b"0", b"1", b"2", b"4", b"5", b"6", b"8", b"A", b"C", b"E", b"F", b"G", b"H",
                 b"I", b"D", b"3", b"Z"]))
        elif kind == 6 and b"\x0135=8\x01" in line:
            other = out[rng.randrange(2, len(out) - 2)]
            tag = rng.choice([17, 37, 11, 41, 198])
            value = _get(other, tag)
            if value is not None:
                out[i] = _set(line, tag, value)
        elif kind == 7:
            out.insert(i, b"20260105-09:00:00.000000 : garbage\x01\n")
        elif kind == 8:
            out[i] = _set(line, 34, rng.choice([b"1", b"x", b"0", b"99999999", b"+5"]))
        elif kind == 9:  # a time jump: requests overdue, closed orders past their window
            jump = rng.choice([31, 61, 200])
            out[i:] = [_shift(x, jump) for x in out[i:]]
        elif kind == 10 and (b"\x0135=D\x01" in line or b"\x0135=F\x01" in line):
            out[i] = _set(line, 11, _get(out[rng.randrange(2, len(out) - 2)], 11) or b"C1")
        elif kind == 11 and b"\x0135=8\x01" in line:
            out[i] = _set(line, 20, rng.choice([b"0", b"1", b"2", b"3"]))
        elif kind == 12 and b"\x0135=8\x01" in line:
            out[i] = _set(line, 58, rng.choice([b"caf\xc3\xa9", b'a "quote"', b"back\\slash",
                                                b"\xff", b"plain text"]))
            out[i] = _set(out[i], 11, rng.choice([b"", b"caf\xc3\xa9", _get(line, 11) or b"",
                                                  b"x\x7f"]))
        elif kind == 13:
            out[i] = line.replace(b"\x0134=", b"\x0195=2\x0196=ab\x0134=", 1)  # a DATA field
        elif kind == 14 and b"\x0135=8\x01" in line:
            out[i] = _set(line, rng.choice([49, 56]), b"OTHER")
        elif kind == 15:
            out[i] = line.replace(b"\x0135=", b"\x0135=j\x0145=%s\x01379=%s\x0135=" % (
                _get(line, 34) or b"1", _get(line, 11) or b"C1"), 1) if rng.random() < 0.5 \
                else _set(_set(line, 35, b"3"), 45, str(rng.randrange(1, 5000)).encode())
        elif kind == 16 and b"\x0135=8\x01" in line:
            out[i] = _set(line, 37, rng.choice([b"NONE", b"X%d" % rng.randrange(9)]))
    return out


@pytest.fixture(scope="module")
def bench_lines(tmp_path_factory: pytest.TempPathFactory) -> list[bytes]:
    path = tmp_path_factory.mktemp("bench") / LOG
    bench_module().generate(path, 30_000, seed=11)
    return path.read_bytes().splitlines(keepends=True)


def test_the_clean_benchmark_log(tmp_path: Path, bench_lines: list[bytes]) -> None:
    log = tmp_path / LOG
    log.write_bytes(b"".join(bench_lines))
    doc = assert_same([log], tmp_path)
    assert doc["summary"]["findings"] == 0  # type: ignore[index]


@pytest.mark.parametrize("seed", range(24))
def test_faults_at_random(tmp_path: Path, bench_lines: list[bytes], seed: int) -> None:
    rng = random.Random(seed)
    start = rng.randrange(0, len(bench_lines) // 2)
    lines = bench_lines[:2] + bench_lines[2 + start:2 + start + 12_000]
    log = tmp_path / LOG
    log.write_bytes(b"".join(mutate(lines, rng, rng.choice([3, 30, 300]))))
    doc = assert_same([log], tmp_path, sink=seed % 3 == 0)
    assert doc["summary"]["findings"]  # type: ignore[index]


def test_every_kind_of_fault_was_met(tmp_path: Path, bench_lines: list[bytes]) -> None:
    """The random faults above reach the findings the audit makes (else they test little)."""
    kinds: set[str] = set()
    for seed in range(8):
        rng = random.Random(seed)
        log = tmp_path / LOG
        log.write_bytes(b"".join(mutate(bench_lines[:15_000], rng, 300)))
        _, doc, _ = audit_json([log], tmp_path / "a.json", True)
        kinds |= set(doc["summary"]["findings_by_kind"])  # type: ignore[index]
    assert {"illegal-transition", "cum-qty", "leaves-qty", "avg-px", "duplicate-exec-id",
            "duplicate-clordid", "sequence-gap", "sequence-reset", "orphan-report",
            "order-unanswered", "cancel-unanswered", "garbled"} <= kinds, kinds


# --- the paths random faults rarely take ------------------------------------------------------


def _er(w: LogWriter, cl: bytes, oid: bytes, exec_id: bytes, et: bytes, st: bytes, cum: bytes,
        leaves: bytes, avg: bytes, qty: bytes = b"1", *more: tuple[int, bytes]) -> None:
    w.gateway_sends(b"8", (6, avg), (11, cl), (14, cum), (17, exec_id), (37, oid), (38, qty),
                    (39, st), (54, b"1"), (55, b"BTC/USDT"), (150, et), (151, leaves), *more)


def scenario_log(directory: Path, client: bytes = b"CLIENT1") -> Path:
    w = LogWriter(client=client)
    w.logon()
    # a replace, fills under the new and the retired ClOrdID (stale), a late cancel
    w.client_sends(b"D", (11, b"A1"), (38, b"2"), (44, b"10"), (54, b"1"), (55, b"BTC/USDT"))
    _er(w, b"A1", b"OA", b"a1", b"0", b"0", b"0", b"2", b"0", b"2")
    w.client_sends(b"G", (11, b"A2"), (41, b"A1"), (38, b"3"), (44, b"11"), (54, b"1"),
                   (55, b"BTC/USDT"))
    _er(w, b"A2", b"OA", b"a2", b"E", b"E", b"0", b"2", b"0", b"2", (41, b"A1"))
    _er(w, b"A2", b"OA", b"a3", b"5", b"0", b"0", b"3", b"0", b"3", (41, b"A1"), (44, b"11"))
    _er(w, b"A2", b"OA", b"a4", b"F", b"1", b"1", b"2", b"11", b"3", (31, b"11"), (32, b"1"))
    _er(w, b"A1", b"OA", b"a5", b"F", b"1", b"2", b"1", b"11", b"3", (31, b"11"), (32, b"1"))
    # an order filled, then a cancel too late, answered by a cancel reject; a report after
    w.client_sends(b"D", (11, b"B1"), (38, b"1"), (44, b"5"), (54, b"2"), (55, b"ETH/USDT"))
    _er(w, b"B1", b"OB", b"b1", b"F", b"2", b"1", b"0", b"5", b"1", (31, b"5"), (32, b"1"))
    w.client_sends(b"F", (11, b"B2"), (41, b"B1"), (38, b"1"), (54, b"2"))
    w.gateway_sends(b"9", (11, b"B2"), (41, b"B1"), (37, b"OB"), (39, b"2"), (434, b"1"),
                    (58, b"too late"))
    _er(w, b"B1", b"OB", b"b2", b"I", b"2", b"1", b"0", b"5", b"1")
    # a fill before the acknowledgement; a restatement; a second OrderID
    w.client_sends(b"D", (11, b"C1"), (38, b"4"), (44, b"7.5"), (54, b"1"), (55, b"SOL/USDT"))
    _er(w, b"C1", b"OC", b"c1", b"F", b"1", b"1", b"3", b"7.5", b"4", (31, b"7.5"), (32, b"1"))
    _er(w, b"C1", b"OC", b"c2", b"D", b"1", b"1", b"3", b"7.5", b"4")
    _er(w, b"C1", b"OC2", b"c3", b"F", b"1", b"2", b"2", b"7.25", b"4", (31, b"7"), (32, b"1"))
    # a reject answers an order; a business reject answers another; a session reject a third
    w.client_sends(b"D", (11, b"D1"), (38, b"1"), (44, b"5"), (54, b"1"), (55, b"BTC/USDT"))
    _er(w, b"D1", b"NONE", b"d1", b"8", b"8", b"0", b"0", b"0", b"1", (58, b"no"))
    w.client_sends(b"D", (11, b"E1"), (38, b"1"), (44, b"5"), (54, b"1"), (55, b"BTC/USDT"))
    w.gateway_sends(b"j", (45, b"%d" % (w.seq[w.client] - 1)), (372, b"D"), (379, b"E1"),
                    (380, b"0"))
    w.client_sends(b"D", (11, b"F1"), (38, b"1"), (44, b"5"), (54, b"1"), (55, b"BTC/USDT"))
    w.gateway_sends(b"3", (45, b"%d" % (w.seq[w.client] - 1)), (373, b"1"))
    # FIX 4.2 style fills (ExecType 1/2, ExecTransType 0), a correction, a status
    w.client_sends(b"D", (11, b"G1"), (38, b"2"), (44, b"3"), (54, b"1"), (55, b"BTC/USDT"))
    _er(w, b"G1", b"OG", b"g1", b"1", b"1", b"1", b"1", b"3", b"2", (20, b"0"), (31, b"3"),
        (32, b"1"))
    _er(w, b"G1", b"OG", b"g2", b"2", b"2", b"2", b"0", b"3", b"2", (20, b"0"), (31, b"3"),
        (32, b"1"))
    _er(w, b"G1", b"OG", b"g3", b"2", b"2", b"2", b"0", b"3.5", b"2", (20, b"2"), (19, b"g2"),
        (31, b"4"), (32, b"1"))
    # many fills of one order; a price with many digits; leaves before a cancel
    w.client_sends(b"D", (11, b"H1"), (38, b"40"), (44, b"1.123456789"), (54, b"1"),
                   (55, b"BTC/USDT"))
    for k in range(40):
        _er(w, b"H1", b"OH", b"h%d" % k, b"F", b"2" if k == 39 else b"1", b"%d" % (k + 1),
            b"%d" % (39 - k), b"1.123456789", b"40", (31, b"1.123456789"), (32, b"1"))
    # a cancel that waits for ever, an order never answered
    w.client_sends(b"D", (11, b"J1"), (38, b"1"), (44, b"5"), (54, b"1"), (55, b"BTC/USDT"))
    _er(w, b"J1", b"OJ", b"j1", b"0", b"0", b"0", b"1", b"0")
    w.client_sends(b"F", (11, b"J2"), (41, b"J1"), (38, b"1"), (54, b"1"))
    w.client_sends(b"D", (11, b"K1"), (38, b"1"), (44, b"5"), (54, b"1"), (55, b"BTC/USDT"))
    w.send(w.client, b"0", step=45.0)  # past the answer's deadline (the clock reads it
    for _ in range(300):                 # every 256 messages)
        w.send(w.gateway, b"0", step=0.001)
    # the same ClOrdID again while its order is open; reused after it closed
    w.client_sends(b"D", (11, b"J1"), (38, b"1"), (44, b"5"), (54, b"1"), (55, b"BTC/USDT"))
    w.client_sends(b"D", (11, b"B1"), (38, b"1"), (44, b"5"), (54, b"1"), (55, b"BTC/USDT"))
    _er(w, b"B1", b"OB9", b"b9", b"0", b"0", b"0", b"1", b"0")
    w.send(w.client, b"0", step=70.0)  # closed orders past their window
    for _ in range(300):
        w.send(w.gateway, b"0", step=0.001)
    _er(w, b"A2", b"OA", b"a9", b"F", b"2", b"3", b"0", b"11", b"3", (31, b"11"), (32, b"1"))
    _er(w, b"G1", b"OG", b"g9", b"F", b"2", b"3", b"0", b"3", b"2", (31, b"3"), (32, b"1"))
    w.gateway_sends(b"5", (58, b"bye"))
    return w.write(directory)


def test_the_rare_paths(tmp_path: Path) -> None:
    log = scenario_log(tmp_path)
    doc = assert_same([log], tmp_path, sink=True)
    kinds = doc["summary"]["findings_by_kind"]  # type: ignore[index]
    assert {"stale-clordid", "orphan-report", "duplicate-clordid", "cancel-unanswered",
            "order-unanswered"} <= set(kinds), kinds
    assert_same([log], tmp_path)


def test_two_sessions_merged_by_time_and_filtered(tmp_path: Path,
                                                   bench_lines: list[bytes]) -> None:
    """Several inputs: the records come merged (no batches); --session, --since, --until."""
    one = tmp_path / "a"
    one.mkdir()
    scenario_log(one, client=b"CLIENT2")
    (one / LOG).write_bytes(b"".join(mutate(bench_lines[:6000], random.Random(5), 20)))
    assert_same([one], tmp_path)
    assert_same([one], tmp_path, session="CLIENT2")
    assert_same([one], tmp_path, since=b"20260105-09:00:05", until=b"20260105-09:00:09")
    assert_same([one / LOG], tmp_path, until=b"20260105-09:00:07.5", sink=True)


def test_the_state_is_handed_over_whole(tmp_path: Path, bench_lines: list[bytes]) -> None:
    """Mid-log, every order the fast path keeps is handed to Python and the audit goes on in
    Python: what it finds after is what Python alone finds (the handed-over state is
    complete)."""
    log = tmp_path / LOG
    log.write_bytes(b"".join(mutate(bench_lines[:20_000], random.Random(3), 40)))

    def run(fast: bool) -> tuple[list[object], list[object]]:
        findings = Findings()
        chains: list[object] = []
        auditor = Auditor(findings, lambda c: chains.append(c.summary()), fast=fast)
        records = FileSource(log).records()
        head = [next(records) for _ in range(9_000)]
        auditor.feed(iter(head))
        for s in auditor.sessions.values():
            if s.book.fast is not None:
                s.book.fast.promote_all()
                assert s.book.fast.sizes()["orders"] == 0
        auditor.feed(records)
        auditor.finish()
        return [f.to_json() for f in findings.kept], chains

    assert run(True) == run(False)
