"""Many sessions at once: ``sessions`` client connections (CLIENT1 ... CLIENT<n>), each a
:class:`~benchlib.client.LeanClient` in a thread of its own, spread over ``procs`` client
processes (one Python process cannot drive twenty connections at the server's pace under one
GIL). All log on, wait at a barrier, then run ``count`` orders each with ``window`` in flight;
the aggregate rate is every order over the time from the first start to the last end.
"""

from __future__ import annotations

import multiprocessing as mp
import threading
import time
from dataclasses import dataclass

from .client import LeanClient, OrderSpec


@dataclass
class MultiResult:
    sessions: int
    window: int
    count: int
    """Orders answered, all sessions."""
    elapsed: float
    latencies_ms: list[float]
    rejected: int

    @property
    def rate(self) -> float:
        return self.count / self.elapsed

    def pct(self, p: float) -> float:
        v = sorted(self.latencies_ms)
        return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))]


def _proc(host: str, port: int, targets: list[str], count: int, window: int,
          barrier: threading.Barrier, out: mp.Queue, deadline_s: float) -> None:  # type: ignore[type-arg]
    clients = [LeanClient(host, port, sender=t.encode()) for t in targets]
    for c in clients:
        c.logon()
    results: list[tuple[float, float, list[float], int, int] | str] = []

    def run(c: LeanClient) -> None:
        try:
            c.run_window(OrderSpec(), min(200, count), window, "w", deadline_s=deadline_s)
            barrier.wait()
            t0 = time.perf_counter()
            r = c.run_window(OrderSpec(), count, window, "m", deadline_s=deadline_s)
            results.append((t0, time.perf_counter(), r.latencies_ms, r.count, r.rejected))
        except Exception as exc:  # noqa: BLE001 - reported to the parent
            barrier.abort()
            results.append(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=run, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for c in clients:
        c.logout()
    out.put(results)


def run_sessions(host: str, port: int, *, sessions: int, count: int, window: int,
                 procs: int = 2, deadline_s: float = 600.0) -> MultiResult:
    ctx = mp.get_context("fork")
    barrier = ctx.Barrier(sessions)
    out: mp.Queue = ctx.Queue()  # type: ignore[type-arg]
    targets = [f"CLIENT{i}" for i in range(1, sessions + 1)]
    parts = [targets[i::procs] for i in range(procs)]
    ps = [ctx.Process(target=_proc, args=(host, port, part, count, window, barrier, out,
                                          deadline_s))
          for part in parts if part]
    for p in ps:
        p.start()
    got: list[tuple[float, float, list[float], int, int] | str] = []
    for _ in ps:
        got += out.get(timeout=deadline_s + 60)
    for p in ps:
        p.join(30)
    errors = [g for g in got if isinstance(g, str)]
    if errors:
        raise RuntimeError("; ".join(errors[:3]))
    runs = [g for g in got if not isinstance(g, str)]
    start = min(r[0] for r in runs)
    end = max(r[1] for r in runs)
    return MultiResult(sessions, window, sum(r[3] for r in runs), end - start,
                       [x for r in runs for x in r[2]], sum(r[4] for r in runs))
