"""The benchmarks' gateway configuration (scripts/benchlib/gwconfig.py) loads, and sets the
event loop's busy polling only when asked (``instructions.py`` asks for none)."""

from __future__ import annotations

import sys
from pathlib import Path

from gateway.cli import busy_poll_us
from gateway.config import load_config

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts"))

from benchlib.gwconfig import write_config  # noqa: E402


def test_busy_polling_as_asked_else_the_gateway_default(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'gw.db'}"
    default = load_config(write_config(tmp_path / "a.toml", store=store, log_dir=None))
    off = load_config(write_config(tmp_path / "b.toml", store=store, log_dir=tmp_path / "log",
                                   busy_poll_us=0))
    assert (default.gateway.busy_poll_us, busy_poll_us(default)) == (None, 200)
    assert (off.gateway.busy_poll_us, busy_poll_us(off)) == (0, 0)
    assert off.gateway.log_dir == tmp_path / "log"
