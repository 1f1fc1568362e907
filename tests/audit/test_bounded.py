"""The audit's memory holds the open orders (and the closed ones' window), not the log: fed N
and then 4N messages of the benchmark's log (~200 orders in flight throughout), every container
of its state holds about as much at 4N as at N."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from gateway.audit.checker import Auditor
from gateway.audit.findings import Findings
from gateway.audit.sources import CLOCK_MINUTES, FileSource

from .synth import bench_module

pytestmark = pytest.mark.timeout(300)

N = 50_000


def test_state_does_not_grow_with_the_log(tmp_path: Path) -> None:
    path = tmp_path / "FIX.4.4-GATEWAY-CLIENT1.messages.current.log"
    bench_module().generate(path, 4 * N)
    handed_on = []
    auditor = Auditor(Findings(), lambda chain: handed_on.append(chain.number))
    records = FileSource(path).records()
    auditor.feed(itertools.islice(records, N))
    at_n = auditor.state_sizes()
    orders_at_n = len(handed_on)
    auditor.feed(records)
    at_4n = auditor.state_sizes()
    assert auditor.messages >= 4 * N - 10
    # the log kept going: four times the orders went through and were let go
    assert len(handed_on) > 3 * orders_at_n > 0
    grew = {k: (at_n.get(k, 0), v) for k, v in at_4n.items()
            if v > 1.3 * at_n.get(k, 0) + 50}
    assert not grew, f"grows with the log (at N, at 4N): {grew}"
    assert at_4n["clock"] <= CLOCK_MINUTES
    # the open orders are what is held: a few hundred chains, thousands of closed ones at most
    assert at_4n["chains"] < 20_000 and at_4n["findings"] == 0
    auditor.finish()
    assert auditor.state_sizes()["chains"] == 0
