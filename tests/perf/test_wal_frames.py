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
