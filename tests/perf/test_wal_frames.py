"""scripts/wal_frames.py: the WAL's growth per order, and an index dropped shows in it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_frames_per_order_fall_when_an_index_the_orders_touch_is_dropped() -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "wal_frames.py"), "--orders", "150",
         "--drop", "ix_order_events_order_id"],
        capture_output=True, text=True, check=True, timeout=300).stdout
    figures = [float(line.split()[0]) for line in out.splitlines() if "frames/order" in line]
    assert len(figures) == 2, out
    whole, fewer = figures
    # two commits an order, each writing a page of several tables and indexes at least
    assert 10 < whole < 60, out
    # the index takes a page in each of an order's two commits
    assert fewer < whole - 1, out


def test_the_journal_bench_runs_the_captured_transactions_again() -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "wal_frames.py"), "--orders", "150",
         "--journal-bench"],
        capture_output=True, text=True, check=True, timeout=300).stdout
    lines = {line.split(":")[0].strip().split(" (")[0]: line for line in out.splitlines()
             if "us an order" in line}
    now = lines["as the gateway runs them"]
    # what the gateway ran was captured: an order's intent, then its ack and fill
    per_order = float(now.split("(")[1].split()[0])
    assert abs(per_order - 2) < 0.05, out

    def median(line: str) -> float:
        return float(line.split("us an order")[0].rsplit(":", 1)[1])

    # one row into one table a commit, against two tables and their indexes and more
    assert median(lines["as journal rows"]) < median(now), out
    assert median(lines["the journal's apply"]) > 0, out
