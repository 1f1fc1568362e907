"""scripts/bench_orders.py: a round measures its servers at 1 in flight in slices, taking turns."""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

import bench_orders  # noqa: E402
from benchlib.client import RunResult, Steady  # noqa: E402


def test_slices_together_are_their_orders_over_their_times() -> None:
    merged = RunResult.merged([RunResult(100, 1, 0.5, [1.0] * 100, 1, 200),
                               RunResult(50, 1, 0.5, [3.0] * 50, 0, 100)])
    assert (merged.count, merged.window, merged.elapsed) == (150, 1, 1.0)
    assert merged.rate == 150.0  # not the mean of the slices' rates (200 and 100)
    assert (merged.rejected, merged.reports) == (1, 300)
    assert merged.pct(50) == 1.0 and merged.pct(99) == 3.0
    steady = RunResult.merged([RunResult(1000, 100, 2.0, [1.0], steady_count=800, steady_s=1.0),
                               RunResult(1000, 100, 4.0, [1.0], steady_count=800, steady_s=3.0)],
                              steady=True)
    assert steady.rate == 400.0  # 1,600 steady orders in 4 s, not 2,000 in 6
    with pytest.raises(ValueError):
        RunResult.merged([])
    with pytest.raises(ValueError):
        RunResult.merged([RunResult(1, 1, 0.1, [1.0]), RunResult(1, 100, 0.1, [1.0])])


class _Server:
    """A server that only says what is done to it: running or paused, and the CPU it used
    (one second an order, counted only while it runs)."""

    def __init__(self, name: str, log: list[tuple[str, ...]]) -> None:
        self.name, self.log, self.running, self.cpu = name, log, False, 0.0

    def resume(self) -> None:
        self.log.append(("resume", self.name))
        self.running = True

    def pause(self) -> None:
        self.log.append(("pause", self.name))
        self.running = False

    def cpu_s(self) -> float:
        return self.cpu

    def ctx_switches(self) -> int:
        return int(self.cpu)


class _Client:
    def __init__(self, server: _Server) -> None:
        self.server = server

    def run_window(self, spec: Any, count: int, window: int, prefix: str,
                   deadline_s: float = 0.0) -> RunResult:
        assert self.server.running, f"{self.server.name} ran paused"
        self.server.log.append(("run", self.server.name, prefix, str(count), str(window)))
        self.server.cpu += count
        # 100 orders a second; at 100 in flight the window's filling and draining twice as slow
        steady = max(count - 2 * window, 0) if window > 1 else 0
        elapsed = count / 100 if window == 1 else steady / 100 + (count - steady) / 50
        return RunResult(count, window, elapsed, [1.0] * count, steady_count=steady,
                         steady_s=steady / 100)


def test_servers_take_turns_each_resumed_for_its_own_slice_only(
        capsys: pytest.CaptureFixture[str]) -> None:
    log: list[tuple[str, ...]] = []
    servers = [_Server(n, log) for n in ("a", "b", "c")]
    args = argparse.Namespace(slices=4, n1=10, slices100=2, n100=1000, deadline=1.0)
    rows = bench_orders.load([(s.name, s, _Client(s)) for s in servers],  # type: ignore[misc]
                             0, args)
    runs = [e for e in log if e[0] == "run"]
    timed = [e for e in runs if not e[2].startswith("p")]
    # every run of a server is between its resume and its pause, and nothing else runs then
    for k, event in enumerate(log):
        if event[0] == "resume":
            assert log[k + 1][:2] == ("run", event[1]) and log[k + 1][2].startswith("p")
            assert log[k + 2][:2] == ("run", event[1]) and log[k + 3] == ("pause", event[1])
    # before each timed run, PRIMER untimed orders of its own
    assert all(r[3] == str(bench_orders.PRIMER) for r in runs if r[2].startswith("p"))
    # the slices: 3 + 3 + 2 + 2 orders each, then 100 in flight in two slices of 500, every
    # server once a slice, in the turns of bench_orders.turns
    expected = [(s.name, f"r1x{i}-", str(n))
                for i, n in enumerate((3, 3, 2, 2)) for s in bench_orders.turns(servers, 0, i)]
    expected += [(s.name, f"r100x{i}-", "500")
                 for i in range(2) for s in bench_orders.turns(servers, 0, i)]
    assert [(r[1], r[2], r[3]) for r in timed] == expected
    assert all(r[4] == ("1" if r[2].startswith("r1x") else "100") for r in timed)
    # the primers' ClOrdIDs extend no other run's prefix
    assert all(r[2].startswith("p") for r in runs if r not in timed)
    # a server's figure at 1 in flight: its slices together, their CPU without the primers';
    # at 100 in flight the rate of the slices' steady parts (100 a second, not the 71 of the
    # whole slices with their filling and draining)
    by = {(r.engine, r.window): r for r in rows}
    assert [(by[n, 1].result.count, by[n, 1].result.elapsed, by[n, 1].cpu_s)
            for n in ("a", "b", "c")] == [(10, 0.1, 10.0)] * 3
    assert [(by[n, 100].result.count, round(by[n, 100].result.rate, 6), by[n, 100].cpu_s)
            for n in ("a", "b", "c")] == [(1000, 100.0, 1000.0)] * 3
    assert len(capsys.readouterr().out.splitlines()) == 6
    assert bench_orders.load([], 0, args) == []


def test_every_server_of_a_round_is_measured_in_turns(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "bench_orders.py"), "--rounds", "1",
         "--engines", "fixgw,client", "--n1", "61", "--slices", "4", "--n100", "300",
         "--warmup", "50", "--no-sessions"],
        capture_output=True, text=True, check=True, timeout=300, cwd=tmp_path).stdout
    rows = re.findall(r"^  (\S+)\s+(\d+) in flight:.*\((\d+) orders, (\d+) rejected\)$", out,
                      re.MULTILINE)
    # each server's slices (16 + 15 + 15 + 15 orders) make one figure, then 100 in flight
    expected = [("fixgw", "1", "61", "0"), ("client", "1", "61", "0"),
                ("fixgw", "100", "300", "0"), ("client", "100", "300", "0")]
    assert sorted(rows) == sorted(expected), out


def test_no_server_follows_the_same_one_slice_after_slice() -> None:
    servers = ["fixgw", "peer-order", "peer-group", "qf-echo", "qf-echo-py", "fixgw-pg"]
    before: dict[str, set[str]] = {s: set() for s in servers}
    for rnd in range(5):
        for i in range(10):
            order = bench_orders.turns(servers, rnd, i)
            assert sorted(order) == sorted(servers)
            assert order == bench_orders.turns(servers, rnd, i)  # the same in every run
            for a, b in zip(order, order[1:], strict=False):
                before[b].add(a)
    assert all(len(b) >= 4 for b in before.values()), before


def test_the_steady_part_counts_answers_read_by_read() -> None:
    # a server answering 100 at a time and one answering one by one, both 1,000 a second:
    # 1,250 orders at 100 in flight, the same steady rate
    batched, single = Steady(1250, 100), Steady(1250, 100)
    for n in range(1, 1251):
        single.read(n, n * 1_000_000)
        if n % 100 == 0 or n == 1250:
            batched.read(n, n * 1_000_000)
    for steady in (batched, single):
        answers, seconds = steady.part()
        assert answers / seconds == pytest.approx(1000.0)
    # (the first read at or past answer 100, up to the first at or past answer 1,150)
    assert batched.part() == (1100, pytest.approx(1.1))
    assert single.part() == (1050, pytest.approx(1.05))
    assert Steady(200, 100).part() == (0, 0.0)  # no steady part: two windows


def test_a_ratio_just_under_a_bound_is_not_printed_as_the_bound() -> None:
    assert bench_orders._ratio_format([1.04, 0.9985], (1.0, 2.0)) == "{:.3f}"
    assert bench_orders._ratio_format([1.04, 1.001], (1.0, 2.0)) == "{:.2f}"
    assert bench_orders._ratio_format([1.996, 2.2], (1.5, 2.0)) == "{:.3f}"
