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
