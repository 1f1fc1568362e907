"""``fixgw report``: the report built from its source and written out (the command line parses
the arguments and wires in the store, :mod:`gateway.cli`).

Exit codes: 0 when the report was written, 2 on bad usage or a store that cannot be read.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from .html import write_html
from .output import summary_text, write_json
from .report import ReportSource, build_report

EXIT_OK = 0
EXIT_USAGE = 2


def parse_when(text: str) -> int:
    """A time given on the command line, in ns since the epoch: ISO 8601
    (``2026-01-02T03:04:05[.f][Z|+hh:mm]``, a space for the T), a date (midnight), or a FIX
    stamp (``20260102-03:04:05[.f]``). Without a zone: UTC. ValueError when it is none."""
    t = text.strip()
    try:
        if len(t) >= 17 and t[8:9] == "-" and t[:8].isdigit():  # a FIX UTCTimestamp
            when = datetime.strptime(t[:17], "%Y%m%d-%H:%M:%S").replace(tzinfo=UTC)
            frac = t[18:] if t[17:18] == "." else ""
            if t[17:] and not (frac.isdigit() and len(frac) <= 9):
                raise ValueError(t)
            return int(when.timestamp()) * 1_000_000_000 + int((frac or "0").ljust(9, "0"))
        when = datetime.fromisoformat(t.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"not a time: {text!r} (use 2026-01-02T03:04:05, 20260102-03:04:05 or "
                         "2026-01-02; UTC unless a zone is given)") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    delta = when - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000


@dataclass
class ReportOptions:
    since_ns: int = 0
    until_ns: int | None = None
    """None: now."""
    json_path: Path | None = None
    html_path: Path | None = None


def run_report(opts: ReportOptions, source: ReportSource, *, out: TextIO | None = None,
               err: TextIO | None = None, now_ns: int | None = None) -> int:
    out = out if out is not None else sys.stdout
    err = err if err is not None else sys.stderr
    now = now_ns if now_ns is not None else time.time_ns()
    until = opts.until_ns if opts.until_ns is not None else now + 1
    if until <= opts.since_ns:
        print("fixgw report: --until must be after --since", file=err)
        return EXIT_USAGE
    rep = build_report(source, opts.since_ns, until, now)
    if opts.json_path is not None:
        write_json(opts.json_path, rep)
    if opts.html_path is not None:
        write_html(opts.html_path, rep)
    print(summary_text(rep), file=out)
    for what, path in (("JSON", opts.json_path), ("HTML", opts.html_path)):
        if path is not None:
            print(f"{what}: {path}", file=out)
    return EXIT_OK
