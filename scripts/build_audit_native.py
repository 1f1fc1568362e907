#!/usr/bin/env python3
"""Builds the compiled parts of ``fixgw audit`` in place (run by ``scripts/setup.sh``):

* ``gateway/audit/_cscan.c`` and ``gateway/audit/csrc/`` -- the file-log reader, the field
  scanner and the fast path of the checks, hand-written C;
* the audit's checks (:data:`gateway.audit.native.COMPILED`) compiled from their own Python
  source by mypyc (which comes with mypy), into one extension per module plus a shared
  library ``gateway/audit/_compiled__mypyc*.so``.

The pure-Python modules stay the source and the fallback: without a C compiler, mypy or
Python's headers this prints why and exits 0, and the audit runs as Python (``FIXGW_AUDIT_PURE=1``
forces that where the build exists; ``tests/audit/test_native.py`` compares the two).

    .venv/bin/python scripts/build_audit_native.py          # build (idempotent)
    .venv/bin/python scripts/build_audit_native.py --clean  # remove what it built
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
AUDIT = REPO / "gateway" / "audit"
sys.path.insert(0, str(REPO))
os.environ["FIXGW_AUDIT_PURE"] = "1"  # this process needs none of it (and may replace it)

from gateway.audit.native import C_SOURCES, COMPILED, GROUP, STAMP, sources_hash  # noqa: E402

SUFFIX = sysconfig.get_config_var("EXT_SUFFIX") or ".so"
def built() -> list[Path]:
    return [p for p in AUDIT.iterdir() if p.name.endswith(SUFFIX)]


def clean() -> None:
    for p in built():
        p.unlink()
    STAMP.unlink(missing_ok=True)
    STAMP.with_suffix(".script").unlink(missing_ok=True)


def _setup(tmp: Path, ext_modules: str) -> None:
    """``setup.py build_ext --inplace`` for ``ext_modules`` (Python source) in a process of
    its own, its output kept unless it fails."""
    code = (
        "from setuptools import Extension, setup\n"
        "from mypyc.build import mypycify\n"
        f"setup(name='fixgw-audit-native', script_args=['build_ext', '--inplace',"
        f" '--build-temp', {str(tmp / 'temp')!r}, '--build-lib', {str(tmp / 'lib')!r}],\n"
        f"      ext_modules={ext_modules})\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                          text=True, check=False)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        raise RuntimeError(tail)


def build_c(tmp: Path) -> None:
    sources = [str(p.relative_to(REPO)) for p in C_SOURCES if p.suffix == ".c"]
    _setup(tmp, f"[Extension('gateway.audit._cscan', {sources!r},"
                " extra_compile_args=['-O2', '-std=gnu11'])]")


def build_mypyc(tmp: Path) -> None:
    paths = [f"gateway/audit/{m}.py" for m in COMPILED]
    _setup(tmp, f"mypycify({paths!r}, opt_level='3', group_name={GROUP!r},"
                f" target_dir={str(tmp / 'mypyc')!r})")


def skip(why: str) -> int:
    print(f"build_audit_native: {why}: fixgw audit runs as pure Python", file=sys.stderr)
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clean", action="store_true", help="remove the compiled modules")
    ap.add_argument("--force", action="store_true", help="build even if up to date")
    args = ap.parse_args()
    if args.clean:
        clean()
        return 0
    digest = sources_hash() + "\n" + hashlib.sha1(Path(__file__).read_bytes()).hexdigest()
    done = STAMP.with_suffix(".script")
    if not args.force and done.exists() and done.read_text() == digest and built():
        return 0
    clean()
    cc = (sysconfig.get_config_var("CC") or "cc").split()[0]
    if shutil.which(cc) is None:
        return skip(f"no C compiler ({cc})")
    if not Path(sysconfig.get_paths()["include"], "Python.h").exists():
        return skip("no Python headers (Python.h)")
    try:
        import mypyc  # noqa: F401
    except ImportError:
        return skip("mypy (mypyc) is not installed")
    with tempfile.TemporaryDirectory(prefix="fixgw-native-") as tmp:
        try:
            build_c(Path(tmp))
            build_mypyc(Path(tmp))
        except (SystemExit, Exception) as exc:  # noqa: BLE001 - any failure: pure Python
            clean()
            return skip(f"the build failed ({exc})")
    STAMP.write_text(sources_hash())
    STAMP.with_suffix(".script").write_text(digest)
    print(f"build_audit_native: built {', '.join(sorted(p.name for p in built()))}",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
