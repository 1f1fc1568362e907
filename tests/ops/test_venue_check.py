"""``scripts/emulator.py all --config FILE`` (the venue emulators from one command, with a
gateway configuration that trades on them) and ``fixgw venue-check`` against them: a wrong
secret stops at the first refusal naming the step, an unreachable venue likewise, never a
traceback or an unclosed HTTP session, and every amount printed as a plain decimal."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FIXGW = [sys.executable, "-m", "gateway.cli"]


@pytest.fixture(scope="module")
def emulators(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The three emulators, started by the one documented command; the configuration it
    wrote."""
    where = tmp_path_factory.mktemp("emulators")
    cfg = where / "emulators.toml"
    proc = subprocess.Popen([sys.executable, str(REPO / "scripts" / "emulator.py"), "all",
                             "--config", str(cfg)], stdout=subprocess.PIPE, text=True,
                            cwd=where)
    try:
        assert proc.stdout is not None
        lines = []
        for line in proc.stdout:  # bounded: the script says "ready" or exits
            lines.append(line)
            if line.strip() == "ready":
                break
        assert lines and lines[-1].strip() == "ready", lines
        assert [ln.split()[0] for ln in lines[:3]] == ["binance", "okx", "bybit"], lines
        yield cfg
    finally:
        proc.terminate()
        assert proc.wait(10) == 0


def _check(cfg: Path, venue: str, *more: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*FIXGW, "venue-check", "--config", str(cfg), "--venue", venue,
                           *more], capture_output=True, text=True, timeout=120, cwd=cfg.parent)


@pytest.mark.parametrize("venue", ["binance", "okx", "bybit"])
def test_venue_check_round_trip_on_each_emulator(emulators: Path, venue: str) -> None:
    done = _check(emulators, venue, "--place")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert f"venue {venue}: OK" in out
    assert "canceled (seen on the private stream)" in out
    balances = next(line for line in out.splitlines() if "balances:" in line)
    assert " free / 0 locked" in balances and "BTC 1" in balances, balances
    assert "E-" not in out and "0.01000000" not in out, out  # plain decimals


def test_a_wrong_secret_stops_at_once_naming_the_step(emulators: Path) -> None:
    secrets = emulators.with_name("wrong-secrets.toml")
    secrets.write_text('api_key = "emulator-key"\napi_secret = "wrong"\n'
                       'passphrase = "emulator-passphrase"\n')
    cfg = emulators.with_name("wrong.toml")
    cfg.write_text(emulators.read_text().replace("emulators-secrets.toml", secrets.name))
    t0 = time.monotonic()
    done = _check(cfg, "binance")
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert time.monotonic() - t0 < 20  # not the stream's 40 s of patience
    assert ("fixgw: venue binance: start: private stream refused: binance: user data "
            "subscription refused: -1022") in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and "Unclosed" not in done.stderr, done.stderr


def test_an_unreachable_venue_is_named_without_a_traceback(tmp_path: Path) -> None:
    cfg = tmp_path / "gw.toml"
    (tmp_path / "s.toml").write_text('api_key = "k"\napi_secret = "s"\n')
    cfg.write_text('[[venue]]\nname = "bn"\nkind = "binance"\nsecrets_file = "s.toml"\n'
                   'urls = { rest = "http://127.0.0.1:1", ws_api = "ws://127.0.0.1:1/ws-api/v3" }'
                   '\n')
    done = _check(cfg, "bn")
    assert done.returncode == 1, done.stderr
    assert "fixgw: venue bn: start: VenueUnavailable: bn: cannot connect" in done.stderr
    assert "Traceback" not in done.stderr and "Unclosed" not in done.stderr, done.stderr
