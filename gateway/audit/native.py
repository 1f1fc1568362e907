"""Which parts of the audit run compiled, and the switch back to pure Python.

``scripts/build_audit_native.py`` (run by ``scripts/setup.sh``) builds two things in place:
``_cscan`` (hand-written C: the file-log reader and the field scanner, :mod:`.sources` and
:mod:`.scan` hold the Python they must equal) and the modules of :data:`COMPILED` compiled from
their own source by mypyc. Where the build is absent the audit is the Python of this package;
``FIXGW_AUDIT_PURE=1`` in the environment makes it so where the build is present (the tests
compare the two; the benchmark measures both).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

COMPILED = ("states", "findings", "scan", "sources", "waiting", "chains", "checker")
"""The modules mypyc compiles (the checks and what they call on every message)."""
GROUP = "gateway.audit._compiled"
"""mypyc's name for their shared library (``gateway/audit/_compiled__mypyc*.so``)."""

_HERE = Path(__file__).resolve().parent
STAMP = _HERE / ".native-build"
"""Written by the build: the hash of the sources it compiled (:func:`sources_hash`)."""


C_SOURCES = (_HERE / "_cscan.c", *sorted((_HERE / "csrc").glob("*.[ch]")))
"""The C of ``_cscan``: the module, and the fast path in ``csrc/`` (``csrc/cscan.h``)."""


def sources_hash() -> str:
    """The hash of what the build compiles: the C of :data:`C_SOURCES` and the modules of
    :data:`COMPILED`."""
    h = hashlib.sha256(sys.version.encode())
    for path in (*C_SOURCES, *(_HERE / f"{m}.py" for m in COMPILED)):
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def _stale() -> bool:
    """A build is there but was made from other sources (a module edited since): running it
    would run old code, so the audit runs as Python (and says so)."""
    if not any(p.suffix in (".so", ".pyd") for p in _HERE.iterdir()):
        return False
    try:
        return STAMP.read_text() != sources_hash()
    except OSError:
        return True


_ASKED = os.environ.get("FIXGW_AUDIT_PURE", "") not in ("", "0")
STALE = not _ASKED and _stale()
PURE = _ASKED or STALE
"""True: the compiled parts are not used even where built (``FIXGW_AUDIT_PURE=1``, or a stale
build)."""
if STALE:
    print("fixgw audit: the compiled audit is older than its source: running it as Python "
          "(scripts/build_audit_native.py builds it again)", file=sys.stderr)


class _PureFinder(importlib.abc.MetaPathFinder):
    """Finds the modules of :data:`COMPILED` as their ``.py`` source, not the extension
    modules built beside it (which the normal import prefers)."""

    def find_spec(self, fullname: str, path: Sequence[str] | None,
                  target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        package, _, name = fullname.rpartition(".")
        if package != __package__ or name not in COMPILED:
            return None
        return importlib.util.spec_from_file_location(fullname, _HERE / f"{name}.py")


def install() -> None:
    """With :data:`PURE`, make the compiled modules import as Python (called by the package's
    ``__init__`` before any of them is imported)."""
    if PURE and not any(isinstance(f, _PureFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _PureFinder())


def compiled() -> dict[str, bool]:
    """What runs compiled in this process: ``_cscan`` and each module of :data:`COMPILED`
    (loaded from an extension module)."""
    out = {"_cscan": importlib.util.find_spec(f"{__package__}._cscan") is not None
           and not PURE}
    for name in COMPILED:
        module = importlib.import_module(f"{__package__}.{name}")
        out[name] = not str(module.__file__).endswith(".py")
    return out
