"""The compiled audit (``_cscan`` in C, the checks compiled by mypyc: gateway/audit/native.py)
must give what the pure-Python audit gives, on the same inputs: the field scanner message by
message, the chunked file-log reader record by record, and ``fixgw audit`` whole (its JSON).

Skipped where the compiled parts are not built (``scripts/build_audit_native.py``, run by
``scripts/setup.sh``), unless ``REQUIRE_NATIVE=1``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.audit import native
from gateway.audit.scan import CSCAN, Scanner
from gateway.audit.sources import (
    InputError,
    Origin,
    _filelog_chunks,
    _filelog_fast,
    _Lines,
    _sniff,
)

from .synth import REPO, LogWriter, bench_module

pytestmark = pytest.mark.timeout(300)

if CSCAN is None:
    _PURE = os.environ.get("FIXGW_AUDIT_PURE")
    _WHY = ("the audit's compiled parts are not built or not used here "
            f"(scripts/build_audit_native.py; FIXGW_AUDIT_PURE={_PURE})")
    if os.environ.get("REQUIRE_NATIVE") == "1" and not native.PURE:
        pytest.fail(f"{_WHY} (REQUIRE_NATIVE=1)", pytrace=False)
    pytest.skip(_WHY, allow_module_level=True)

python_fields = Scanner().python_fields

EDGE_CASES = [
    b"8=FIX.4.4\x019=5\x0135=0\x0110=000\x01",
    b"8=FIX.4.4\x0135=8\x0111=A\x0111=B\x0117=\x0110=1\x01",       # repeated tag, empty value
    b"8=FIX.4.4\x01035=D\x0111=X\x01",                               # leading zero
    b"8=FIX.4.4\x01-5=1\x0135=D\x01",                                # negative tag
    b"8=FIX.4.4\x0135=D\x0111=a=b\x01",                              # '=' in a value
    b"8=FIX.4.4\x0135=D\x0111=X",                                    # no SOH at the end
    b"8=FIX.4.4\x0135=D\x01\x0111=X\x01",                            # an empty field
    b"8=FIX.4.4\x0135=D\x01abc\x0111=X\x01",                         # no '='
    b"8=FIX.4.4\x0135=D\x01x1=2\x0111=X\x01",                        # tag not a number
    b"8=FIX.4.4\x0135=D\x0112345678901234567=1\x0111=X\x01",         # tag of 17 digits
    b"8=FIX.4.4\x0135=D\x011234567890123456=1\x0111=X\x01",          # 16 digits
    b"8=FIX.4.4\x0135=D\x0195=3\x0196=a\x01b\x0111=X\x01",           # RawData holding SOH
    b"8=FIX.4.4\x0135=D\x0195=1\x0196=a\x0111=X\x01",                # a DATA field, clean
    b"8=FIX.4.4\x0149=A\x0156=B\x01",                                # no MsgType
    b"",
    b"\x01",
    b"35=8\x01",
    b"8=FIX.4.4\x0135=D\x0111=X\x01\n",                              # a line end kept
    b"8=FIX.4.4\x0135=D\x0155=BTC/USDT\x0149=" + b"C" * 80 + b"\x0111=X\x01",  # long CompID
]


def test_native_is_in_use() -> None:
    assert all(native.compiled().values()), native.compiled()


@pytest.mark.parametrize("raw", EDGE_CASES)
def test_fields_equal_on_edge_cases(raw: bytes) -> None:
    got = CSCAN.fields(raw)
    assert got is None or got == python_fields(raw)
    assert Scanner().fields(raw) == python_fields(raw)


_piece = st.one_of(
    st.sampled_from([b"35=8", b"35=D", b"11=C1", b"41=C0", b"17=E1", b"14=0.5", b"49=GW",
                     b"56=CL", b"55=BTC/USDT", b"95=2", b"96=ab", b"=", b"", b"x", b"-3=1",
                     b"0035=9", b"150=F", b"39=2"]),
    st.binary(max_size=12),
)


@given(st.lists(_piece, max_size=14), st.booleans())
@settings(max_examples=400, deadline=None)
def test_fields_equal_on_random_messages(parts: list[bytes], end: bool) -> None:
    raw = b"\x01".join(parts) + (b"\x01" if end else b"")
    got = CSCAN.fields(raw)
    assert got is None or got == python_fields(raw)
    assert Scanner().fields(raw) == python_fields(raw)


def test_fields_equal_on_a_generated_log(tmp_path: Path) -> None:
    path = tmp_path / "FIX.4.4-GATEWAY-CLIENT1.messages.current.log"
    bench_module().generate(path, 5_000)
    for line in path.read_bytes().splitlines():
        raw = line.split(b" : ", 1)[1]
        assert CSCAN.fields(raw) == python_fields(raw)


def _read(path: Path, chunk: int | None) -> list[tuple[bytes, bytes, int]]:
    origin = Origin(str(path))
    with open(path, "rb") as handle:
        lines = _Lines(handle, str(path))
        if _sniff(lines, str(path)) != "filelog":
            return []
        gen = (_filelog_fast(handle, lines, origin) if chunk is None
               else _filelog_chunks(handle, lines, origin, chunk))
        return [(s, r, n) for s, r, n, _ in gen]


FILES = {
    "plain": b"20260105-09:00:00.000001 : 8=FIX.4.4\x0135=0\x01\n" * 5,
    "crlf and precisions": (b"20260105-09:00:00 : 8=FIX.4.4\x0135=0\x01\r\n"
                            b"20260105-09:00:00.123456789 : 8=FIX.4.4\x0135=1\x01\r\n"),
    "continuations": (b"\n\n20260105-09:00:00.1 : 8=FIX.4.4\x0135=D\x0158=two\n"
                      b"lines\x01\n\n20260105-09:00:00.2 : 8=FIX.4.4\x0135=0\x01\n"
                      b"more\nand more\n20260105-09:00:01.3 : last\x01"),
    "no newline at the end": b"20260105-09:00:00 : 8=FIX.4.4\x0135=0\x01",
    "blank lines": b"\n \n\t\n20260105-09:00:00 : 8=FIX.4.4\x0135=0\x01\n\n",
    "a separator too far": (b"20260105-09:00:00 : a\x01\n"
                            b"20260105-09:00:00.000000000000000000 : b\x01\n"),
}


@pytest.mark.parametrize("name", sorted(FILES))
@pytest.mark.parametrize("chunk", [1, 3, 17, 64, 1 << 20])
def test_chunked_reader_equals_the_line_reader(tmp_path: Path, name: str, chunk: int) -> None:
    path = tmp_path / "x.log"
    path.write_bytes(FILES[name])
    assert _read(path, chunk) == _read(path, None)


@pytest.mark.parametrize("chunk", [5, 1 << 20])
def test_chunked_reader_names_a_bad_line_as_the_line_reader(tmp_path: Path, chunk: int) -> None:
    path = tmp_path / "bad.log"
    path.write_bytes(b"\n20260105-09:00:00 x\n")
    with pytest.raises(InputError) as fast:
        _read(path, None)
    path.write_bytes(b"\n\n20260105-09:00:00 : 8=FIX\x01\n")
    assert _read(path, chunk) == _read(path, None) and _read(path, chunk)[0][2] == 3
    assert "bad.log:2: not a FIX log" in str(fast.value)


def _audit_json(log: Path, out: Path, pure: bool) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if k != "FIXGW_AUDIT_PURE"}
    if pure:
        env["FIXGW_AUDIT_PURE"] = "1"
    proc = subprocess.run([sys.executable, "-c", "import sys; from gateway.cli import main; "
                           "sys.exit(main(sys.argv[1:]))", "audit", str(log), "--json",
                           str(out)], cwd=REPO, env=env, capture_output=True, text=True,
                          check=False, timeout=240)
    assert proc.returncode in (0, 1), proc.stderr
    doc = json.loads(out.read_text())
    doc.pop("elapsed_s")
    return doc


def test_the_whole_audit_is_the_same_compiled_and_pure(tmp_path: Path) -> None:
    """A generated log with faults injected (a duplicated ExecID, a missing fill, a gap), plus
    hand-written messages that take the rare paths (orphans, a trade correction, a garbled
    report, a rejected Logon): the same JSON, findings, orders and all."""
    bench = bench_module()
    log = tmp_path / "FIX.4.4-GATEWAY-CLIENT1.messages.current.log"
    bench.generate(log, 30_000)
    bench.inject_faults(log)
    w = LogWriter(client=b"CLIENT2")
    w.logon()
    w.gateway_sends(b"8", (6, b"0"), (11, b"Z1"), (14, b"0"), (17, b"z1"), (37, b"Z"),
                    (39, b"0"), (150, b"0"), (151, b"1"), (38, b"1"))
    w.gateway_sends(b"8", (6, b"10"), (11, b"Z1"), (14, b"1"), (17, b"z2"), (31, b"10"),
                    (32, b"1"), (37, b"Z"), (39, b"2"), (150, b"F"), (151, b"0"), (38, b"1"))
    w.gateway_sends(b"8", (6, b"11"), (11, b"Z1"), (14, b"1"), (17, b"z3"), (19, b"z2"),
                    (31, b"11"), (32, b"1"), (37, b"Z"), (39, b"2"), (150, b"G"), (151, b"0"),
                    (38, b"1"))
    w.gateway_sends(b"8", (11, b"Z1"), (14, b"x"), (17, b"z4"), (37, b"Z"), (39, b"2"),
                    (150, b"D"), (151, b"0"))
    w.client_sends(b"D", (11, b"N1"), (38, b"2"), (44, b"5"), (54, b"1"), (55, b"ETH/USDT"))
    w.gateway_sends(b"9", (11, b"Q2"), (41, b"Q1"), (37, b"NONE"), (39, b"8"), (434, b"1"))
    w.gateway_sends(b"5", (58, b"bye"))
    other = w.write(tmp_path)
    out = tmp_path / "a.json"
    pure = _audit_json(tmp_path, out, pure=True)
    compiled = _audit_json(tmp_path, out, pure=False)
    assert pure == compiled
    kinds = pure["summary"]["findings_by_kind"]  # type: ignore[index]
    assert {"duplicate-exec-id", "cum-qty", "sequence-gap", "orphan-report", "garbled",
            "order-unanswered"} <= set(kinds), kinds
    assert other.exists()


def test_a_stale_build_is_not_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A module edited since the build (its hash no longer the build's): the build is stale,
    and a stale build is not used (native.PURE), so the audit runs the edited source."""
    assert native.BUILD.stale() is False
    stamp = tmp_path / ".native-build"
    stamp.write_text("the hash of other sources")
    monkeypatch.setattr(native.BUILD, "stamp", stamp)
    assert native.BUILD.stale() is True
    stamp.write_text(native.sources_hash())
    assert native.BUILD.stale() is False
