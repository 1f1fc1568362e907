"""Processes of the crash-recovery test: ``fixgw venue-sim`` and ``fixgw run``, on free ports.

Each is started with port 0 and waited for on its ``listening on HOST:PORT`` line (no sleeping,
no port guessing); stderr goes to a file the test quotes when something fails.
"""

# ruff: noqa: ASYNC109, ASYNC240 - a ``timeout`` parameter; reading a log file to report failure

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

FIXGW = Path(sys.executable).with_name("fixgw")


@dataclass
class Proc:
    proc: asyncio.subprocess.Process
    port: int
    stderr: Path

    def sigkill(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)

    def log_tail(self, lines: int = 40) -> str:
        text = self.stderr.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])


async def _start(args: list[str], stderr: Path, cwd: Path, timeout: float = 20.0) -> Proc:
    with stderr.open("ab") as err:
        proc = await asyncio.create_subprocess_exec(
            str(FIXGW), *args, stdout=asyncio.subprocess.PIPE, stderr=err, cwd=cwd,
        )
    assert proc.stdout is not None
    try:
        line = (await asyncio.wait_for(proc.stdout.readline(), timeout)).decode()
    except TimeoutError:
        line = ""
    m = re.match(r"listening on [\d.]+:(\d+)", line)
    if m is None:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()
        raise AssertionError(f"fixgw {args[0]} did not start: {line!r}\n"
                             f"{stderr.read_text(errors='replace')}")
    return Proc(proc, int(m.group(1)), stderr)


async def _stop(p: Proc) -> None:
    if p.proc.returncode is None:
        p.proc.kill()
    await p.proc.wait()


@asynccontextmanager
async def venue_sim(tmp: Path, seed: int) -> AsyncIterator[Proc]:
    """The venue simulator; its market moves only when told (``--tick-interval 0``)."""
    p = await _start(["venue-sim", "--port", "0", "--seed", str(seed), "--tick-interval", "0"],
                     tmp / "venue-sim.stderr", tmp)
    try:
        yield p
    finally:
        await _stop(p)


def write_gateway_config(
    tmp: Path, venue_port: int, *, store: str | None = None, log_dir: Path | None = None,
    name: str = "gateway.toml", gateway_extra: str = "", session_extra: str = "",
) -> Path:
    """``fixgw run``'s configuration: SQLite in ``tmp`` unless ``store`` names another."""
    store = store or f"sqlite:///{tmp / 'fixgw.db'}"
    path = tmp / name
    path.write_text(
        "[gateway]\n"
        'host = "127.0.0.1"\nport = 0\nsender_comp_id = "GATEWAY"\n'
        f'store = "{store}"\n'
        f'log_dir = "{log_dir or tmp / "log"}"\n'
        f"{gateway_extra}\n"
        "\n[[venue]]\n"
        'name = "sim"\nkind = "paper-remote"\nhost = "127.0.0.1"\n'
        f"port = {venue_port}\n"
        "\n[[session]]\n"
        'target_comp_id = "CLIENT1"\nbegin_string = "FIX.4.4"\ndefault_venue = "sim"\n'
        f"{session_extra}\n"
    )
    return path


@asynccontextmanager
async def gateway(config: Path, stderr: Path) -> AsyncIterator[Proc]:
    """``fixgw run --config``; killed on exit unless it already ended."""
    p = await _start(["run", "--config", str(config)], stderr, config.parent)
    try:
        yield p
    finally:
        await _stop(p)
