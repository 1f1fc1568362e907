"""Which parts of the audit run compiled, and the switch back to pure Python.

``scripts/build_native.py`` (run by ``scripts/setup.sh``) builds two things in place:
``_cscan`` (hand-written C: the file-log reader and the field scanner, :mod:`.sources` and
:mod:`.scan` hold the Python they must equal) and the modules of :data:`COMPILED` compiled from
their own source by mypyc (:class:`connectors.native.NativeBuild`). Where the build is absent, or
stale, the audit is the Python of this package; ``FIXGW_AUDIT_PURE=1`` in the environment makes
it so where the build is present (the tests compare the two; the benchmark measures both).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from gateway.native import NativeBuild

COMPILED = ("states", "findings", "scan", "sources", "waiting", "chains", "checker")
"""The modules mypyc compiles (the checks and what they call on every message)."""
GROUP = "gateway.audit._compiled"
"""mypyc's name for their shared library (``gateway/audit/_compiled__mypyc*.so``)."""

_HERE = Path(__file__).resolve().parent

C_SOURCES = (_HERE / "_cscan.c", *sorted((_HERE / "csrc").glob("*.[ch]")))
"""The C of ``_cscan``: the module, and the fast path in ``csrc/`` (``csrc/cscan.h``)."""

BUILD = NativeBuild("fixgw audit", [f"{__package__}.{m}" for m in COMPILED], GROUP,
                    "FIXGW_AUDIT_PURE", c_module=f"{__package__}._cscan", c_sources=C_SOURCES)
STAMP = BUILD.stamp
"""Written by the build: the hash of the sources it compiled (:func:`sources_hash`)."""

PURE = BUILD.pure
"""True: the compiled parts are not used even where built (``FIXGW_AUDIT_PURE=1``, or a stale
build)."""


def sources_hash() -> str:
    """The hash of what the build compiles: the C of :data:`C_SOURCES` and the modules of
    :data:`COMPILED`."""
    return BUILD.sources_hash()


def install() -> None:
    """With :data:`PURE`, make the compiled modules import as Python (called by the package's
    ``__init__`` before any of them is imported)."""
    BUILD.install()


def compiled() -> dict[str, bool]:
    """What runs compiled in this process: ``_cscan`` and each module of :data:`COMPILED`
    (loaded from an extension module)."""
    out = {"_cscan": importlib.util.find_spec(f"{__package__}._cscan") is not None
           and not PURE}
    out.update((name.rpartition(".")[2], v) for name, v in BUILD.compiled().items())
    return out
