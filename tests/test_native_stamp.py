"""The order path's build stamp (gateway/native.py; the machinery is connectors/native.py's) must
change when anything the compiled modules were compiled against changes, not only their own
sources: mypyc bakes the types of what they import (e.g. ``OrderEvent.data: dict`` of the
non-compiled gateway/store/records.py) into the compiled code, which then checks them at run
time. An edit of such a module alone left the build "fresh": the compiled model.py refused
(TypeError) an event the edited Python accepts. Runs without a build (only the stamp's hash is
compared)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import connectors.native as native
from connectors.paper.native import BUILD as PAPER
from gateway.native import ORDER_PATH


def test_the_stamp_covers_the_modules_the_compiled_ones_import(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    shutil.copytree(native.ROOT / "gateway", tmp_path / "gateway",
                    ignore=shutil.ignore_patterns("*.so", "__pycache__"))
    monkeypatch.setattr(native, "ROOT", tmp_path)
    before = ORDER_PATH.sources_hash()
    records = tmp_path / "gateway" / "store" / "records.py"  # imported by gateway.orders.model
    text = records.read_text()
    assert "    data: dict[str, Any]\n" in text
    records.write_text(text.replace("    data: dict[str, Any]\n", "    data: Mapping[str, Any]\n"))
    assert ORDER_PATH.sources_hash() != before, (
        "gateway/store/records.py changed, the build would still count as fresh")


def test_the_paper_venues_stamp_covers_what_it_imports_and_not_the_gateway(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The paper venue's build (connectors/paper/native.py) compiles against the connector
    contract (connectors/base.py's dataclasses): an edit there makes it stale. It imports
    nothing of the gateway: an edit there leaves it fresh (not built again for nothing)."""
    for package in ("gateway", "connectors"):
        shutil.copytree(native.ROOT / package, tmp_path / package,
                        ignore=shutil.ignore_patterns("*.so", "__pycache__"))
    monkeypatch.setattr(native, "ROOT", tmp_path)
    before = PAPER.sources_hash()
    model = tmp_path / "gateway" / "orders" / "model.py"
    model.write_text(model.read_text() + "\n# edited\n")
    assert PAPER.sources_hash() == before
    base = tmp_path / "connectors" / "base.py"
    base.write_text(base.read_text() + "\n# edited\n")
    assert PAPER.sources_hash() != before, (
        "connectors/base.py changed, the paper venue's build would still count as fresh")
