"""Whether the fixgw a benchmark starts runs compiled.

A compiled build older than its source is not used: the gateway runs those modules as Python and
says so on its own stderr (:class:`connectors.native.NativeBuild`), which a benchmark does not
show: its figures would be labelled fixgw and be the slower interpreted order path's. A
benchmark asks :func:`how_fixgw_runs` first, prints its line and refuses to measure a stale
build.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol


class Build(Protocol):
    label: str

    @property
    def asked_pure(self) -> bool: ...

    def built(self) -> list[object]: ...

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


def refusal(stale: list[str]) -> str:
    return (f"{', '.join(stale)}: the compiled modules are older than their source, and fixgw "
            "would run them as Python -- .venv/bin/python scripts/build_native.py builds them "
            "again (FIXGW_PURE=1 measures fixgw as Python knowingly)")
