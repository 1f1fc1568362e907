"""The compiled order path (the FIX codec, dictionaries and validation, the orders' model,
lifecycle and FIX mapping compiled by mypyc: gateway/native.py) must do what its pure-Python
source does: the same small order flow (tests/orders/native_flow.py) run both ways gives the
same messages and the same orders.

Skipped where the compiled modules are not built (``scripts/build_native.py``, run by
``scripts/setup.sh``), unless ``REQUIRE_NATIVE=1``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.native import ORDER_PATH

FLOW = Path(__file__).with_name("native_flow.py")

if not ORDER_PATH.built() or ORDER_PATH.stale():
    _WHY = "the order path's compiled modules are not built, or stale (scripts/build_native.py)"
    if os.environ.get("REQUIRE_NATIVE") == "1":
        pytest.fail(f"{_WHY} (REQUIRE_NATIVE=1)", pytrace=False)
    pytest.skip(_WHY, allow_module_level=True)


def test_native_is_in_use() -> None:
    if ORDER_PATH.asked_pure:
        pytest.skip("FIXGW_PURE=1: this process runs the order path as Python")
    assert all(ORDER_PATH.compiled().values()), ORDER_PATH.compiled()


def _flow(tmp: Path, pure: bool) -> dict[str, object]:
    tmp.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "FIXGW_PURE"}
    if pure:
        env["FIXGW_PURE"] = "1"
    out = tmp / "flow.json"
    proc = subprocess.run([sys.executable, str(FLOW), str(out)], env=env, capture_output=True,
                          text=True, check=False, timeout=120)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(out.read_text())
    assert set(doc.pop("compiled").values()) == {not pure}
    return doc


def test_an_order_flow_is_the_same_compiled_and_pure(tmp_path: Path) -> None:
    pure = _flow(tmp_path / "pure", pure=True)
    compiled = _flow(tmp_path / "compiled", pure=False)
    assert pure == compiled
    types = [dict(m)[35] for m in pure["received"]["C1"]]  # type: ignore[index]
    assert {"A", "8", "9", "3", "N", "5"} <= set(types), types
    assert len(pure["orders"]) == 8  # type: ignore[arg-type]


def test_a_stale_build_is_not_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A module edited since the build (its hash no longer the build's): the build is stale,
    and a stale build is not used (``ORDER_PATH.pure``), so fixgw runs the edited source."""
    assert ORDER_PATH.stale() is False
    stamp = tmp_path / ".native-build"
    stamp.write_text("the hash of other sources")
    monkeypatch.setattr(ORDER_PATH, "stamp", stamp)
    assert ORDER_PATH.stale() is True
    stamp.write_text(ORDER_PATH.sources_hash())
    assert ORDER_PATH.stale() is False
