"""``fixgw run`` as an operator starts and stops it: ``-v`` after the command, JSON logs,
a start line, SIGTERM said and a stop line, the admin API's address printed once."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.cli import main

CONFIG = """
[gateway]
port = 0
store = "sqlite:///data/fixgw.db"
log_dir = "data/log"
[admin]
port = 0
[[venue]]
name = "paper"
[[session]]
target_comp_id = "CLIENT1"
default_venue = "paper"
"""


def test_run_verbose_json_logs_start_and_sigterm(tmp_path: Path) -> None:
    (tmp_path / "gw.toml").write_text(CONFIG)
    proc = subprocess.Popen([sys.executable, "-m", "gateway.cli", "run", "-v", "--log-format",
                             "json", "--config", "gw.toml"], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        out = [proc.stdout.readline(), proc.stdout.readline()]
        assert out[0].startswith("listening on 127.0.0.1:"), out
        assert out[1].startswith("admin API on http://127.0.0.1:"), out
        proc.send_signal(signal.SIGTERM)
        rest, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    records = [json.loads(line) for line in err.splitlines()]  # every line is one object
    assert all(r["ts"].endswith("Z") and {"level", "logger", "message"} <= r.keys()
               for r in records)
    messages = [r["message"] for r in records]
    assert any(r["level"] == "DEBUG" for r in records)  # -v after the command counts
    started = [m for m in messages if m.startswith("fixgw ") and " started: FIX on " in m]
    assert len(started) == 1 and "sessions FIX.4.4:CLIENT1, venues paper" in started[0]
    assert "SIGTERM received: stopping" in messages
    assert messages[-1] == "stopped", messages[-3:]
    said = "".join(out) + rest + err
    assert said.count("admin API on") == 1, said


def test_version_and_logging_options_before_the_command(
        capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.startswith("fixgw ")
    assert main(["-v", "--log-format", "json", "hash-password", "x"]) == 0
    assert capsys.readouterr().out.startswith("$2b$")
