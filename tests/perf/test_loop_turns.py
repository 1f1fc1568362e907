"""scripts/loop_turns.py: the event loop's turns and callbacks per order, by kind."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_an_order_at_one_in_flight_is_told_by_its_callbacks() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "loop_turns.py"), "--orders", "60",
         "--warmup", "20"],
        capture_output=True, text=True, check=False, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]  # (a stale build is refused: why)
    out = done.stdout
    lines = out.splitlines()
    assert lines[0].startswith("60 orders at 1 in flight:"), out
    per_order = lines[1]
    turns = float(per_order.split("per order: ")[1].split()[0])
    # an order is a read, its handling, a commit of its intent, the venue's answer and a
    # commit of its reports, each in a turn of its own at least
    assert 4 <= turns <= 20, out
    kinds = {line.split(maxsplit=2)[2]: float(line.split()[0]) for line in lines[3:]}
    # at 1 in flight the writer thread is idle: both commits of an order run on the loop
    assert abs(kinds["Writer._commit_inline"] - 2) < 0.2, out
    assert abs(kinds["task Acceptor._on_client"] - 2) < 0.5, out
    # (a compiled coroutine named as in Python)
    assert kinds["task VenueSide.place"] == 1, out
