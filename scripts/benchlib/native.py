"""Whether the fixgw a benchmark starts runs compiled.

A compiled build older than its source is not used: the gateway runs those modules as Python and
says so on its own stderr (:class:`connectors.native.NativeBuild`), which a benchmark does not
show: its figures would be labelled fixgw and be the slower interpreted order path's. A
benchmark asks :func:`ask` first, prints its line and refuses to measure a stale build.

The question is put to a child process with the gateway's own source first on its path and the
gateway's environment (``FIXGW_PURE=1`` asks for Python), as the gateway would see them --
another checkout's too (``scripts/bench_ab.py``'s base) -- and without importing the gateway
into the benchmark itself.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Protocol

SCRIPTS = Path(__file__).resolve().parents[1]


class Build(Protocol):
    label: str

    @property
    def asked_pure(self) -> bool: ...

    def built(self) -> Sequence[object]: ...

    def stale(self) -> bool: ...


def fixgw_builds() -> tuple[Build, ...]:
    """The builds a ``fixgw run`` of the paper venue loads: the order path, the paper venue and
    the connector contract's values (the audit's is not on the order path)."""
    from connectors.native import EVENTS
    from connectors.paper.native import BUILD as PAPER
    from gateway.native import ORDER_PATH

    return (ORDER_PATH, PAPER, EVENTS)


def how_fixgw_runs(builds: Iterable[Build] | None = None) -> tuple[str, list[str]]:
    """A line saying how fixgw's builds run, and the labels of those that are stale (none
    where the environment asks for Python: ``FIXGW_PURE=1`` is measuring Python knowingly)."""
    parts: list[str] = []
    stale: list[str] = []
    for b in fixgw_builds() if builds is None else builds:
        if b.asked_pure:
            parts.append(f"{b.label}: as Python (asked)")
        elif not b.built():
            parts.append(f"{b.label}: as Python (not built)")
        elif b.stale():
            parts.append(f"{b.label}: STALE (would run as Python)")
            stale.append(b.label)
        else:
            parts.append(f"{b.label}: compiled")
    return "fixgw: " + "; ".join(parts), stale


_CHILD = (
    "import json, sys\n"
    f"sys.path.append({str(SCRIPTS)!r})\n"
    "from benchlib.native import how_fixgw_runs\n"
    "print(json.dumps(how_fixgw_runs()))\n"
)


def ask(source: Path, env: Mapping[str, str] | None = None) -> tuple[str, list[str]]:
    """:func:`how_fixgw_runs` for the fixgw of ``source`` (a checkout) run with ``env`` added
    to this environment; a line saying so where that checkout's builds cannot be asked (one
    older than this question), and no stale build then."""
    done = subprocess.run([sys.executable, "-c", _CHILD], capture_output=True, text=True,
                          cwd=source, check=False,
                          env={**os.environ, **(env or {}), "PYTHONPATH": str(source)})
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return f"fixgw: how its builds run is not known ({last})", []
    line, stale = json.loads(done.stdout)
    return str(line), [str(s) for s in stale]


def refusal(stale: list[str]) -> str:
    return (f"{', '.join(stale)}: the compiled modules are older than their source, and fixgw "
            "would run them as Python -- .venv/bin/python scripts/build_native.py builds them "
            "again (FIXGW_PURE=1 measures fixgw as Python knowingly)")


def refuse_stale(env: Mapping[str, str] | None = None, say: bool = False) -> None:
    """Exit with 2 where a build of this checkout's fixgw is stale (:func:`ask`); with ``say``,
    print how they run first."""
    line, stale = ask(SCRIPTS.parent, env)
    if say:
        print(line, flush=True)
    if stale:
        print(refusal(stale), file=sys.stderr)
        raise SystemExit(2)
