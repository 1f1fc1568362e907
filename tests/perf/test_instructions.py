"""scripts/instructions.py: the instructions an order costs the gateway, counted by callgrind."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind is not installed")
def test_an_order_is_counted_in_instructions() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "instructions.py"), "--orders", "20",
         "--warmup", "20"],
        capture_output=True, text=True, check=False, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]  # (a stale build is refused: why)
    out = done.stdout
    lines = out.splitlines()
    assert lines[0] == "20 orders at 1 in flight, after 20, under callgrind:", out
    per_order = float(lines[1].split()[0])
    # an order is some two million instructions of the gateway's (a FIX read and parse, its
    # checks, two commits, the venue, two reports): not a count of an idle or a dead process
    assert 300 < per_order < 20_000, out
    assert Path(lines[1].rsplit("(", 1)[1].rstrip(")")).is_file(), out
