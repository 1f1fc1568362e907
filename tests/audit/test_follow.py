"""``fixgw audit --follow``: a writer appends to a log while the audit reads it; each finding
is printed as it is found; SIGTERM ends it with the summary and the exit code. No sleeps to
wait on: bounded polls of the audit's output."""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import time
from pathlib import Path

import pytest

from .support import find, lines_of, make_flow

pytestmark = pytest.mark.timeout(120)
FIXGW = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "fixgw"


def _read_until(proc: subprocess.Popen[bytes], text: bytes, within: float = 20.0) -> bytes:
    """What the audit printed, once ``text`` is in it (AssertionError after ``within``)."""
    assert proc.stdout is not None
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    got = b""
    deadline = time.monotonic() + within
    while text not in got:
        left = deadline - time.monotonic()
        assert left > 0, f"{text!r} not printed within {within}s: {got!r}"
        if sel.select(left):
            chunk = os.read(proc.stdout.fileno(), 65536)
            assert chunk, f"the audit ended: {got!r}"
            got += chunk
    return got


def test_follow_reports_findings_as_the_log_grows(tmp_path: Path) -> None:
    (tmp_path / "flow").mkdir()
    flow = make_flow(tmp_path / "flow")
    lines = lines_of(flow.fix44)
    gap = find(lines, (11, b"A3"), (150, b"6"))
    dup = find(lines, (11, b"S1"), (150, b"F"))
    log = tmp_path / flow.fix44.name
    log.write_bytes(b"".join(lines[:gap]))  # the first part: clean
    proc = subprocess.Popen([str(FIXGW), "audit", "--follow", str(log)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        with open(log, "ab") as writer:
            # a message goes missing (a gap: told at the end, it could still be resent)
            writer.write(b"".join(lines[gap + 1:dup + 1]))
            writer.flush()
            # the same fill again, without PossDupFlag: told at once
            writer.write(lines[dup])
            writer.flush()
            printed = _read_until(proc, b"[duplicate-exec-id]")
            assert b"ExecID 3.TT2 was reported before" in printed
            writer.write(b"".join(lines[dup + 1:]))
            writer.flush()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 1, err
        # the duplicate, its MsgSeqNum going back, and the gap
        assert b"findings: 3" in out and b"sequence-gap" in out, out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
