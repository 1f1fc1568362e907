"""scripts/syscall_cost.py: what the system calls of an order cost on this machine."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_each_call_an_order_makes_most_is_timed() -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "syscall_cost.py"), "--calls", "3000"],
        capture_output=True, text=True, check=True, timeout=120).stdout
    costs = {m["name"].strip(): int(m["ns"])
             for m in re.finditer(r"^  (?P<name>.+?)\s+(?P<ns>-?\d+) ns$", out, re.MULTILINE)}
    assert list(costs) == ["getpid", "fcntl F_SETLK (a lock or its release)",
                           "epoll_wait, nothing ready, no wait", "pwrite of 2 KiB"], out
    # copying 2 KiB into the page cache costs more than a call that makes no system call
    assert costs["pwrite of 2 KiB"] > 0, out
