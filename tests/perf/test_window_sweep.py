"""scripts/window_sweep.py: an order's own cost and a round trip's, from the CPU per order at
several windows."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

from window_sweep import fit  # noqa: E402


def test_the_fit_finds_what_an_order_and_a_round_trip_cost() -> None:
    points = [(w, 150.0 + 600.0 / w) for w in (1, 2, 4, 8, 100)]
    a, b = fit(points)
    assert abs(a - 150.0) < 1e-6 and abs(b - 600.0) < 1e-6
    # (noise moves the fit, not its sense)
    a, b = fit([(1, 760.0), (2, 480.0), (4, 340.0), (8, 250.0), (100, 160.0)])
    assert 120 < a < 200 and 550 < b < 650


def test_fixgw_is_swept() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "window_sweep.py"), "--engines", "fixgw",
         "--windows", "1,4", "--orders", "60", "--rounds", "1"],
        capture_output=True, text=True, check=False, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]  # (a stale build is refused: why)
    out = done.stdout
    lines = out.splitlines()
    assert [line.split()[3] for line in lines[:2]] == ["1", "4"], out
    for line in lines[:2]:
        cpu = float(line.split("us CPU/order")[0].split()[-1])
        assert 20 < cpu < 20_000, out  # (a served order's CPU, not an idle process's)
    commits = [float(line.split()[-2]) for line in lines[:2]]
    assert abs(commits[0] - 2.0) < 0.2 and commits[1] < 1.0, out  # (batched at 4 in flight)
    assert lines[2].startswith("fixgw       CPU an order ~ "), out
