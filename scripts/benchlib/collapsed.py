"""Summarise a py-spy ``--format raw`` profile (collapsed stacks: ``frame;frame;... count``).

Prints, per thread, the share of samples and the top functions by self and by inclusive time.

    python scripts/benchlib/collapsed.py profile.txt [--top 25]
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


def _name(frame: str) -> str:
    m = _FRAME.match(frame)
    if not m:
        return frame
    f = m.group("file")
    for cut in ("site-packages/", "/work/main/", "lib/python3.11/"):
        if cut in f:
            f = f.split(cut, 1)[1]
    return f"{f}:{m.group('func')}"


def summarise(path: Path, top: int = 25) -> str:
    self_t: Counter[str] = Counter()
    incl: Counter[str] = Counter()
    threads: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if not stack or not n.isdigit():
            continue
        count = int(n)
        frames = stack.split(";")
        thread = frames[0] if frames and frames[0].startswith(("thread", "process")) else "?"
        body = [f for f in frames if not f.startswith(("thread (", "process "))]
        names = [_name(f) for f in body]
        total += count
        threads[thread] += count
        if names:
            self_t[names[-1]] += count
        for nm in set(names):
            incl[nm] += count
    out = [f"{total} samples"]
    for t, c in threads.most_common(6):
        out.append(f"  {100 * c / total:5.1f}%  {t}")
    out.append(f"top {top} by self time:")
    for nm, c in self_t.most_common(top):
        out.append(f"  {100 * c / total:5.1f}%  {nm}")
    out.append(f"top {top} by inclusive time:")
    for nm, c in incl.most_common(top):
        out.append(f"  {100 * c / total:5.1f}%  {nm}")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("path", type=Path)
    ap.add_argument("--top", type=int, default=25)
    args = ap.parse_args()
    print(summarise(args.path, args.top))


if __name__ == "__main__":
    main()
