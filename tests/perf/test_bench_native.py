"""The benchmarks refuse to measure a fixgw whose compiled build is older than its source (it
would run as Python under fixgw's name) and say how each build runs."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

import bench_orders  # noqa: E402
from benchlib import native  # noqa: E402


@dataclass
class StandIn:
    label: str
    asked_pure: bool = False
    modules: list[object] = field(default_factory=lambda: [object()])
    is_stale: bool = False

    def built(self) -> list[object]:
        return self.modules

    def stale(self) -> bool:
        return self.is_stale


def test_each_build_is_named_with_how_it_runs_and_only_stale_ones_are_refused() -> None:
    line, stale = native.how_fixgw_runs([
        StandIn("fresh"), StandIn("old", is_stale=True), StandIn("none", modules=[]),
        StandIn("asked", asked_pure=True, is_stale=True)])
    assert stale == ["old"]
    assert line == ("fixgw: fresh: compiled; old: STALE (would run as Python); "
                    "none: as Python (not built); asked: as Python (asked)")


def test_this_checkouts_builds_are_the_three_on_the_order_path() -> None:
    labels = [b.label for b in native.fixgw_builds()]
    assert labels == ["fixgw's order path", "the paper venue",
                      "the connector contract's values"]


def test_this_checkout_asked_in_a_child_as_the_gateway_sees_it() -> None:
    assert native.ask(ROOT) == native.how_fixgw_runs()  # this process imported the gateway
    line, stale = native.ask(ROOT, {"FIXGW_PURE": "1"})  # the gateway's environment applies
    assert line.count("as Python (asked)") == 3 and stale == []


def test_a_checkout_without_the_builds_is_said_to_run_them_as_python(tmp_path: Path) -> None:
    # (an editable install of this checkout fills in a package the other one lacks: not its)
    line, stale = native.ask(tmp_path)
    assert line == "fixgw: " + "; ".join(f"{m}: no such build in this revision (runs as Python)"
                                         for m, _ in native.BUILDS)
    assert stale == []


def test_the_child_finds_a_stale_build_of_another_checkout(tmp_path: Path) -> None:
    """A checkout whose order path was built, then edited: its gateway.native is its own."""
    for package in ("gateway", "connectors", "connectors/paper"):
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
    stand_in = (
        "class B:\n"
        "    def __init__(self, label, stale):\n"
        "        self.label, self.asked_pure, self._stale = label, False, stale\n"
        "    def built(self):\n"
        "        return ['x.so']\n"
        "    def stale(self):\n"
        "        return self._stale\n")
    (tmp_path / "gateway" / "native.py").write_text(
        stand_in + "ORDER_PATH = B('the order path', True)\n")
    (tmp_path / "connectors" / "paper" / "native.py").write_text(
        stand_in + "BUILD = B('the venue', False)\n")
    (tmp_path / "connectors" / "native.py").write_text(
        stand_in + "EVENTS = B('the values', False)\n")
    line, stale = native.ask(tmp_path)
    assert stale == ["the order path"]
    assert line == ("fixgw: the order path: STALE (would run as Python); the venue: compiled; "
                    "the values: compiled")


def _stale(source: Path, env: object = None) -> tuple[str, list[str]]:
    return "fixgw: the order path: STALE", ["the order path"]


@pytest.mark.parametrize("argv", [
    ["--engines", "fixgw", "--no-sessions"],
    ["--engines", "peer-group", "--sessions-engines", "fixgw"],
    ["--engines", "peer-group", "--no-sessions", "--only", "memory"],
    ["--engines", "fixgw-pg", "--no-sessions"],
])
def test_bench_orders_stops_before_starting_anything_when_a_build_is_stale(
        argv: list[str], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(native, "ask", _stale)
    started: list[str] = []
    monkeypatch.setattr(bench_orders, "one_round", lambda *a: started.append("round") or [])
    monkeypatch.setattr(bench_orders, "memory", lambda *a: started.append("memory"))
    monkeypatch.setattr(sys, "argv", ["bench_orders.py", "--quick", *argv])
    with pytest.raises(SystemExit) as exit_:
        bench_orders.main()
    assert exit_.value.code == 2 and not started
    assert "the order path: the compiled modules are older" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [
    ["--engines", "peer-group", "--sessions-engines", "peer-group"],
    ["--engines", "peer-group", "--no-sessions"],  # (the default sessions engines: fixgw's)
])
def test_bench_orders_of_peers_alone_does_not_ask(argv: list[str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(native, "ask", _stale)
    rounds: list[int] = []
    monkeypatch.setattr(bench_orders, "one_round",
                        lambda rnd, *a: rounds.append(rnd) or [])
    monkeypatch.setattr(bench_orders, "table", lambda rows: "")
    monkeypatch.setattr(bench_orders, "ratios", lambda rows, n: "")
    monkeypatch.setattr(sys, "argv", ["bench_orders.py", "--quick", *argv])
    bench_orders.main()
    assert rounds == [0, 1]
