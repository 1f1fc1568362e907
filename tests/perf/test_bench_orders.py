"""scripts/bench_orders.py: a round measures its servers at 1 in flight in slices, taking turns."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

from benchlib.client import RunResult  # noqa: E402


def test_slices_together_are_their_orders_over_their_times() -> None:
    merged = RunResult.merged([RunResult(100, 1, 0.5, [1.0] * 100, 1, 200),
                               RunResult(50, 1, 0.5, [3.0] * 50, 0, 100)])
    assert (merged.count, merged.window, merged.elapsed) == (150, 1, 1.0)
    assert merged.rate == 150.0  # not the mean of the slices' rates (200 and 100)
    assert (merged.rejected, merged.reports) == (1, 300)
    assert merged.pct(50) == 1.0 and merged.pct(99) == 3.0


def test_every_server_of_a_round_is_measured_in_turns(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "bench_orders.py"), "--rounds", "1",
         "--engines", "fixgw,client", "--n1", "61", "--slices", "4", "--n100", "300",
         "--warmup", "50", "--no-sessions"],
        capture_output=True, text=True, check=True, timeout=300, cwd=tmp_path).stdout
    rows = re.findall(r"^  (\S+)\s+(\d+) in flight:.*\((\d+) orders, (\d+) rejected\)$", out,
                      re.MULTILINE)
    # each server's slices (16 + 15 + 15 + 15 orders) make one figure, then 100 in flight
    assert sorted(rows) == sorted([("fixgw", "1", "61", "0"), ("client", "1", "61", "0"),
                                   ("fixgw", "100", "300", "0"), ("client", "100", "300", "0")]), out
