"""Whether the fixgw a benchmark starts runs compiled.

A compiled build older than its source is not used: the gateway runs those modules as Python and
says so on its own stderr (:class:`connectors.native.NativeBuild`), which a benchmark does not
show: its figures would be labelled fixgw and be the slower interpreted order path's. Every
benchmark that runs fixgw asks first (:func:`refuse_stale`; ``bench_orders.py`` and
``bench_ab.py`` print the answer) and refuses to measure a stale build.

The question is put to a child process with the gateway's own source first on its path and the
gateway's environment (``FIXGW_PURE=1`` asks for Python), as the gateway would see them --
another checkout's too (``scripts/bench_ab.py``'s base) -- and without importing the gateway
into the benchmark itself.
"""

from __future__ import annotations

import importlib
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


BUILDS = (("gateway.native", "ORDER_PATH"), ("connectors.paper.native", "BUILD"),
          ("connectors.native", "EVENTS"))
"""The builds a ``fixgw run`` of the paper venue loads, by module and name: the order path, the
paper venue and the connector contract's values (the audit's is not on the order path)."""


def fixgw_builds() -> tuple[Build, ...]:
    """:data:`BUILDS`, imported."""
    return tuple(getattr(importlib.import_module(m), name) for m, name in BUILDS)


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


_CHILD = f"""
import importlib, json, sys
from pathlib import Path
sys.path.append({str(SCRIPTS)!r})
from benchlib.native import BUILDS, how_fixgw_runs
source = Path(sys.argv[1]).resolve()
builds, absent = [], []
for module, name in BUILDS:
    try:
        m = importlib.import_module(module)
        # (an editable install fills in a module the checkout lacks from its own tree)
        if not Path(m.__file__).resolve().is_relative_to(source):
            raise ImportError(module)
        builds.append(getattr(m, name))
    except (ImportError, AttributeError):
        absent.append(module + ": no such build in this revision (runs as Python)")
line, stale = how_fixgw_runs(builds)
parts = [line.removeprefix("fixgw: ")] * bool(builds) + absent
print(json.dumps(["fixgw: " + "; ".join(parts), stale]))
"""

UNKNOWN = "fixgw: how its builds run is not known"
"""How :func:`ask`'s line begins where the child could not answer."""


def ask(source: Path, env: Mapping[str, str] | None = None,
        timeout: float = 120.0) -> tuple[str, list[str]]:
    """:func:`how_fixgw_runs` for the fixgw of ``source`` (a checkout) run with ``env`` added
    to this environment: a child process with ``source`` first on its path, each build its own
    (one the revision does not have is said to run as Python). A line beginning ``fixgw: how
    its builds run is not known`` (:data:`UNKNOWN`) where the child fails, and no stale build
    then."""
    try:
        done = subprocess.run([sys.executable, "-c", _CHILD, str(source)], capture_output=True,
                              text=True, cwd=source, check=False, timeout=timeout,
                              env={**os.environ, **(env or {}), "PYTHONPATH": str(source)})
    except subprocess.TimeoutExpired:
        return f"{UNKNOWN} (no answer in {timeout:g} s)", []
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return f"{UNKNOWN} ({last})", []
    line, stale = json.loads(done.stdout)
    return str(line), [str(s) for s in stale]


def refusal(stale: list[str]) -> str:
    return (f"{', '.join(stale)}: the compiled modules are older than their source, and fixgw "
            "would run them as Python -- .venv/bin/python scripts/build_native.py builds them "
            "again (FIXGW_PURE=1 measures fixgw as Python knowingly)")


def refuse_stale(env: Mapping[str, str] | None = None, say: bool = False,
                 source: Path | None = None, name: str = "fixgw") -> None:
    """Exit with 2 where a build of ``source``'s fixgw (this checkout's by default) is stale
    (:func:`ask`); with ``say``, print how they run first, the line beginning with ``name`` --
    and also without it where that cannot be known (the question itself failed: worth a
    word)."""
    line, stale = ask(SCRIPTS.parent if source is None else source, env)
    if say or line.startswith(UNKNOWN):
        print(name + line.removeprefix("fixgw"), flush=True)
    if stale:
        print(refusal(stale), file=sys.stderr)
        raise SystemExit(2)
