"""The package as ``pip install .`` builds it: everything ``fixgw run`` needs is inside it (the
data dictionaries, the embedded configuration, the migrations), whatever the directory."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel of this checkout, unpacked as site-packages would hold it."""
    tmp = tmp_path_factory.mktemp("pkg")
    # built from a copy: setuptools writes build/ and *.egg-info next to the sources
    source = tmp / "source"
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(
        ".venv", ".git", "build", "*.egg-info", "data", "__pycache__", ".*_cache"))
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(tmp / "wheel"), str(source)],
        check=True, timeout=300, capture_output=True, cwd=tmp,
    )
    (wheel,) = (tmp / "wheel").glob("fixgw-*.whl")
    site = tmp / "site"
    with zipfile.ZipFile(wheel) as z:
        z.extractall(site)
    return site


def _python(site: Path, code: str, cwd: Path) -> str:
    env = {**os.environ, "PYTHONPATH": str(site)}
    done = subprocess.run([sys.executable, "-c", code], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_package_carries_its_dictionaries_and_default_configuration(
    installed: Path, tmp_path: Path,
) -> None:
    where = _python(installed, "import gateway; print(gateway.__file__)", tmp_path)
    assert where.startswith(str(installed)), f"not the built package: {where}"
    out = _python(installed, "from gateway.cli import main; main(['--version'])", tmp_path)
    assert re.fullmatch(r"fixgw \d+\.\d+\.\d+\n", out), out
    out = _python(installed, "from gateway.config import load_config; "
                  "print(load_config().gateway.port)", tmp_path)
    assert out == "9876\n"
    out = _python(installed, "from gateway.fix.dictionary import standard; "
                  "print(len(standard('FIX.5.0SP2').messages) > 90)", tmp_path)
    assert out == "True\n"


def test_the_packaged_gateway_runs_from_any_directory(installed: Path, tmp_path: Path) -> None:
    """``fixgw run`` of the built package, started in an empty directory: the embedded
    configuration (on a free port here), its store and logs under that directory."""
    code = ("import sys; from gateway.config import DEFAULT_CONFIG; "
            "open('gw.toml', 'w').write(DEFAULT_CONFIG.read_text()"
            ".replace('port = 9876', 'port = 0'))")
    _python(installed, code, tmp_path)
    env = {**os.environ, "PYTHONPATH": str(installed)}
    proc = subprocess.Popen(
        [sys.executable, "-c", "import sys; from gateway.cli import main; sys.exit(main())",
         "run", "--config", "gw.toml"],
        env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        err = proc.stderr.read() if proc.stderr and not line else ""
        assert line.startswith("listening on 127.0.0.1:"), err
        assert (tmp_path / "data" / "fixgw.db").exists()
    finally:
        proc.terminate()
        assert proc.wait(30) == 0
