"""``fixgw run`` as an operator starts and stops it: ``-v`` after the command, JSON logs,
a start line, SIGTERM said and a stop line, the admin API's address printed once."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.cli import busy_poll_us, main
from gateway.config import load_config

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


def _run_and_stop(tmp_path: Path, config: str) -> tuple[list[str], str, str]:
    """``fixgw run -v --log-format json`` started, stopped by SIGTERM: its first two lines,
    the rest of stdout and stderr."""
    (tmp_path / "gw.toml").write_text(config)
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
    return out, rest, err


def test_run_verbose_json_logs_start_and_sigterm(tmp_path: Path) -> None:
    out, rest, err = _run_and_stop(tmp_path, CONFIG)
    records = [json.loads(line) for line in err.splitlines()]  # every line is one object
    assert all(r["ts"].endswith("Z") and {"level", "logger", "message"} <= r.keys()
               for r in records)
    messages = [r["message"] for r in records]
    assert any(r["level"] == "DEBUG" for r in records)  # -v after the command counts
    started = [m for m in messages if m.startswith("fixgw ") and " started: FIX on " in m]
    assert len(started) == 1 and "sessions FIX.4.4:CLIENT1, venues paper" in started[0]
    assert started[0].endswith(", busy polling up to 200 us"), started  # the default
    assert "SIGTERM received: stopping" in messages
    assert messages[-1] == "stopped", messages[-3:]
    said = "".join(out) + rest + err
    assert said.count("admin API on") == 1, said


@pytest.mark.parametrize(("setting", "said"), [("busy_poll_us = 50", "up to 50 us"),
                                                ("busy_poll_us = 0", "off"),
                                                ('store_commits = "thread"', "off")])
def test_run_polls_as_configured(tmp_path: Path, setting: str, said: str) -> None:
    """The event loop ``fixgw run`` runs on is the one its configuration asks for, or its
    default for the store (the start line reads the running loop's selector)."""
    _, _, err = _run_and_stop(tmp_path, CONFIG.replace("[gateway]\n", f"[gateway]\n{setting}\n"))
    started = [json.loads(line)["message"] for line in err.splitlines()
               if " started: FIX on " in line]
    assert len(started) == 1 and started[0].endswith(f", busy polling {said}"), started


@pytest.mark.parametrize(("gateway", "polls"), [
    ('store = "sqlite:///data/fixgw.db"', 200),  # commits inline: nothing handed to a thread
    ('store = "memory:"', 200),
    ('store = "sqlite:///data/fixgw.db"\nstore_commits = "thread"', 0),
    ('store = "postgresql+psycopg://u@127.0.0.1/db"', 0),  # always the writer thread
    ('store = "sqlite://"', 0),  # SQLite in memory: the writer thread
    ('store = "postgresql+psycopg://u@127.0.0.1/db"\nbusy_poll_us = 100', 100),
    ('store = "sqlite:///data/fixgw.db"\nbusy_poll_us = 0', 0),
])
def test_busy_polling_by_default_only_where_no_commit_is_handed_to_a_thread(
        tmp_path: Path, gateway: str, polls: int) -> None:
    (tmp_path / "gw.toml").write_text(CONFIG.replace('store = "sqlite:///data/fixgw.db"', gateway))
    assert busy_poll_us(load_config(tmp_path / "gw.toml")) == polls


def test_version_and_logging_options_before_the_command(
        capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.startswith("fixgw ")
    assert main(["-v", "--log-format", "json", "hash-password", "x"]) == 0
    assert capsys.readouterr().out.startswith("$2b$")
