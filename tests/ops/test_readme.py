"""The README's first commands, run as a new user would: in a fresh directory, the gateway on
its embedded default (and on ``config/admin.toml`` for the kill switch), each command exactly as
the README writes it. In a private network namespace (``unshare -n``) where the README's fixed
ports 9876 and 9877 are free whatever else runs on the machine; without one, on the machine's
loopback when those ports are free, else skipped saying why."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
README = (REPO / "README.md").read_text()


def _block_after(marker: str) -> list[str]:
    """The ``.venv/bin/fixgw`` commands of the first sh block after ``marker``."""
    start = README.index(marker)
    block = README[README.index("```sh", start) + 5:README.index("```", README.index("```sh",
                                                                                    start) + 5)]
    return [line.split("  #")[0].strip() for line in block.splitlines()
            if line.startswith((".venv/bin/fixgw", "export "))]


def _namespace() -> list[str] | None:
    """The prefix that runs a command in a private network namespace (None: there is none)."""
    unshare = shutil.which("unshare")
    if unshare is None:
        return None
    probe = subprocess.run([unshare, "-n", "true"], capture_output=True)
    return [unshare, "-n"] if probe.returncode == 0 else None


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


SCRIPT = r"""
set -u
ip link set lo up 2>/dev/null || true
export FIXGW_ADMIN_TOKEN=readme-test-token
run() {  # the gateway in the background; waits (bounded) for its "listening" line
  "$@" > gw.out 2> gw.err &
  GW=$!
  for _ in $(seq 300); do grep -q '^listening' gw.out && return 0; sleep 0.1; done
  echo "gateway did not start" >&2; cat gw.err >&2; exit 3
}
stop() { kill -TERM "$GW"; wait "$GW"; echo "gateway exit $?" >> results; }
n=0
each() {  # one README command: its output in out.N, its exit status in results
  n=$((n+1)); echo "$1" > cmd.$n
  eval "$1" > out.$n 2>&1; echo "$n $?" >> results
}
"""


def test_the_readme_commands_work_as_written(tmp_path: Path) -> None:
    first = _block_after("## Ten lines of FIX")
    kill = [c for c in _block_after("### Kill switch and admin API")
            if c.startswith(".venv/bin/fixgw kill-switch")]
    assert len(first) >= 7 and len(kill) == 4, (first, kill)
    prefix = _namespace()
    if prefix is None and not (_free(9876) and _free(9877)):
        pytest.skip("no private network namespace (unshare -n) and 9876/9877 are in use")
    (tmp_path / ".venv").symlink_to(REPO / ".venv")
    (tmp_path / "config").symlink_to(REPO / "config")
    lines = [SCRIPT, "run .venv/bin/fixgw run"]
    lines += [f"each {shlex.quote(c)}" for c in first]
    lines += ["stop", "run .venv/bin/fixgw run --config config/admin.toml"]
    lines += [f"each {shlex.quote(c)}" for c in kill]
    lines += ["stop"]
    (tmp_path / "readme.sh").write_text("\n".join(lines) + "\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("FIXGW_")}
    subprocess.run([*(prefix or []), "bash", "readme.sh"], cwd=tmp_path, env=env,
                   timeout=240, check=True)
    results = (tmp_path / "results").read_text().splitlines()
    outs = {}
    for line in results:
        if line.startswith("gateway exit"):
            assert line == "gateway exit 0", (tmp_path / "gw.err").read_text()[-2000:]
            continue
        n, code = line.split()
        cmd = (tmp_path / f"cmd.{n}").read_text().strip()
        out = (tmp_path / f"out.{n}").read_text()
        assert code == "0", f"{cmd}\n{out}"
        assert "Traceback" not in out, out
        outs[cmd] = out
    assert len(outs) == len(first) + len(kill)
    sell = next(o for c, o in outs.items() if " sell ETH/USDT" in c)
    assert re.search(r"ExecType=0 OrdStatus=0", sell) and "OrdStatus=8" not in sell, sell
    buy = next(o for c, o in outs.items() if " buy BTC/USDT" in c)
    assert "OrdStatus=2" in buy, buy
    status = next(o for c, o in outs.items() if "--status" in c)
    assert "limit breach" in status and '"*"' in status, status
