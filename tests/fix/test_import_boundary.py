"""The protocol core does no I/O (STYLE 1): gateway.fix imports no asyncio, socket, sqlalchemy
or aiohttp. Checked in a fresh interpreter, where nothing else has imported them first."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import gateway.fix

FORBIDDEN = ["asyncio", "socket", "sqlalchemy", "aiohttp"]
FIX_DIR = Path(gateway.fix.__file__).resolve().parent
MODULES = sorted(
    f"gateway.fix.{p.stem}" for p in FIX_DIR.glob("*.py") if p.stem != "__init__"
)


def test_every_module_is_covered() -> None:
    assert {"gateway.fix.codec", "gateway.fix.session", "gateway.fix.validation"} <= set(MODULES)


def test_gateway_fix_imports_no_io_modules() -> None:
    code = (
        f"import {', '.join(MODULES)}; import sys; "
        f"bad = sorted(m for m in {FORBIDDEN!r} if m in sys.modules); "
        "assert not bad, bad"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=FIX_DIR.parent.parent,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_the_check_itself_detects_an_io_import() -> None:
    """Guard against a vacuous check: the same probe fails when asyncio is imported."""
    code = (
        "import gateway.fix.codec, asyncio; import sys; "
        f"assert not any(m in sys.modules for m in {FORBIDDEN!r})"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=FIX_DIR.parent.parent, capture_output=True, check=False
    )
    assert result.returncode != 0


PRODUCTION_PROBE = """
import asyncio, sys
from pathlib import Path
from gateway.app import build_gateway
from gateway.config import DEFAULT_CONFIG, load_config
from gateway.store.store import SessionStore
import gateway.cli, connectors.registry

async def main():
    cfg = load_config(DEFAULT_CONFIG)
    cfg = cfg.model_copy(update={"gateway": cfg.gateway.model_copy(
        update={"port": 0, "log_dir": None})})
    async with SessionStore(f"sqlite:///{sys.argv[1]}/fixgw.db") as store:
        gw = build_gateway(cfg, store)
        await gw.start()
        await gw.stop()

asyncio.run(main())
bad = sorted(m for m in sys.modules if m.split(".")[0] == "emulators"
             or m.startswith("aiohttp.web") or m.startswith(("aiohttp.test_utils",)))
assert not bad, bad
"""


def test_the_production_path_loads_no_test_double_and_no_web_server(tmp_path: Path) -> None:
    """STYLE 17: the gateway as ``fixgw run`` starts it (the embedded configuration, the
    simulated venue) never imports a venue emulator nor aiohttp's web server (the emulators'
    base; the admin API's only when it is configured)."""
    result = subprocess.run(
        [sys.executable, "-c", PRODUCTION_PROBE, str(tmp_path)],
        cwd=FIX_DIR.parent.parent, capture_output=True, text=True, check=False,
    )
    assert result.returncode == 0, result.stderr


def test_the_production_probe_detects_a_test_double(tmp_path: Path) -> None:
    probe = PRODUCTION_PROBE.replace("import gateway.cli, connectors.registry",
                                     "import gateway.cli, connectors.registry, emulators.binance")
    result = subprocess.run(
        [sys.executable, "-c", probe, str(tmp_path)], cwd=FIX_DIR.parent.parent,
        capture_output=True, check=False,
    )
    assert result.returncode != 0
