#!/usr/bin/env python3
"""Builds fixgw's compiled parts in place (run by ``scripts/setup.sh``), each a
:class:`connectors.native.NativeBuild`:

* ``orders`` -- what every order goes through (:data:`gateway.native.ORDER_PATH`: the FIX
  codec, dictionaries and validation, the orders' model, lifecycle and FIX mapping), compiled from
  their own Python source by mypyc (which comes with mypy) into one extension per module plus
  a shared library ``gateway/_compiled__mypyc*.so``;
* ``audit`` -- ``fixgw audit``'s (:mod:`gateway.audit.native`): ``gateway/audit/_cscan.c`` and
  ``gateway/audit/csrc/`` (the file-log reader, the field scanner and the fast path of the
  checks, hand-written C), and the checks compiled by mypyc (``gateway/audit/_compiled__mypyc``);
* ``paper`` -- the simulated venue (:mod:`connectors.paper.native`: its order book, market
  maker, exchange and connector), compiled by mypyc (``connectors/paper/_compiled__mypyc``);
* ``events`` -- the connector contract's values (:data:`connectors.native.EVENTS`: the enums,
  order events, requests and balances of ``connectors/events.py``), compiled by mypyc
  (``connectors/_compiled__mypyc``).

The pure-Python modules stay the source and the fallback: without a C compiler, mypy or
Python's headers this prints why and exits 0, and fixgw runs as Python (``FIXGW_PURE=1``, for
the order path and the paper venue, and ``FIXGW_AUDIT_PURE=1`` force that where the build
exists; ``tests/orders/test_native.py`` and ``tests/audit/test_native.py`` compare the two).
Each build is stamped with the hash of its sources: one whose sources changed since is built
again here, and is not used until then.

    .venv/bin/python scripts/build_native.py                # build all four (idempotent)
    .venv/bin/python scripts/build_native.py --only audit   # one of them
    .venv/bin/python scripts/build_native.py --clean        # remove what it built
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import os
import selectors
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ["FIXGW_PURE"] = "1"  # this process needs none of it (and may replace it)
os.environ["FIXGW_AUDIT_PURE"] = "1"

from connectors.native import EVENTS, TRAINING  # noqa: E402
from connectors.paper.native import BUILD as PAPER  # noqa: E402
from gateway.audit.native import BUILD as AUDIT  # noqa: E402
from gateway.native import ORDER_PATH, NativeBuild  # noqa: E402

BUILDS = {"events": EVENTS, "audit": AUDIT, "paper": PAPER, "orders": ORDER_PATH}

PGO_BUILDS = (ORDER_PATH, PAPER)
"""The builds compiled twice, the second time guided by the profile of a training run
(``--no-pgo``: once, as the others). An order at 1 in flight goes once through every stage, and
their code, larger than the core's caches together, is fetched again each time: with the
profile GCC lays the code that runs out together and moves what does not run (mypyc's error
paths, interleaved with every call) out of the way (docs/performance.md, "Eleventh sitting")."""
BOUND = ("-fno-semantic-interposition",)
"""Calls between the functions of one build bound at compile time, not through its procedure
linkage table (and so open to inlining): nothing replaces them from another library."""
PGO_GENERATE = ("-fprofile-generate", "-fprofile-update=prefer-atomic", *BOUND)
PGO_USE = ("-fprofile-use", "-fprofile-partial-training", "-fprofile-correction",
           "-Wno-missing-profile", *BOUND)
"""(Partial training: a function the training did not run is optimised as without a profile,
not for size. The same code generation flags in both passes: the counts are matched to the
code the first made.)"""
TRAIN_ORDERS = ((1, 1500), (100, 6000))
"""(orders in flight, orders) of the training run, in that order."""
TRAIN_START_S = 120.0
"""How long the training's gateway may take to say it listens."""


def _script(build: NativeBuild) -> Path:
    """Beside the stamp: the stamp and the hash of this script (its flags) of the last build."""
    return build.stamp.with_suffix(".script")


def clean(build: NativeBuild) -> None:
    for p in build.built():
        p.unlink()
    build.stamp.unlink(missing_ok=True)
    _script(build).unlink(missing_ok=True)


def _setup(tmp: Path, name: str, ext_modules: str, flags: Sequence[str] = ()) -> None:
    """``setup.py build_ext --inplace`` for ``ext_modules`` (Python source) in a process of
    its own, its output kept unless it fails; ``flags`` are added to the compiler's and the
    linker's (after the environment's ``CFLAGS`` and ``LDFLAGS``)."""
    code = (
        "from setuptools import Extension, setup\n"
        "from mypyc.build import mypycify\n"
        f"setup(name={name!r}, script_args=['build_ext', '--inplace', '--force',"
        f" '--build-temp', {str(tmp / 'temp')!r}, '--build-lib', {str(tmp / 'lib')!r}],\n"
        f"      ext_modules={ext_modules})\n"
    )
    env = dict(os.environ)
    if flags:
        # (setuptools takes CFLAGS from the environment *in place of* Python's own -- -DNDEBUG,
        # -fwrapv, ... -- and adds LDFLAGS to its link flags: both start from what they were)
        cflags = env.get("CFLAGS", sysconfig.get_config_var("CFLAGS") or "")
        env["CFLAGS"] = " ".join([cflags, *flags]).strip()
        env["LDFLAGS"] = " ".join([env.get("LDFLAGS", ""), *flags]).strip()
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                          text=True, check=False, env=env)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        raise RuntimeError(tail)


def build_c(build: NativeBuild, tmp: Path, flags: Sequence[str] = ()) -> None:
    sources = [str(p.relative_to(REPO)) for p in build.c_sources if p.suffix == ".c"]
    _setup(tmp, f"fixgw-{build.c_module}", f"[Extension({build.c_module!r}, {sources!r},"
           f" libraries={list(build.c_libraries)!r}, extra_compile_args=['-O2', '-std=gnu11'])]",
           flags)


def build_mypyc(build: NativeBuild, tmp: Path, flags: Sequence[str] = ()) -> None:
    paths = [str(build.source(m).relative_to(REPO)) for m in build.modules]
    _setup(tmp, f"fixgw-{build.group}", f"mypycify({paths!r}, opt_level='3',"
           f" group_name={build.group!r}, target_dir={str(tmp / 'mypyc')!r})", flags)


def compile_all(build: NativeBuild, tmp: Path, flags: Sequence[str] = ()) -> None:
    """Its C module (optional where the build says so) and its mypyc modules, in place (what
    an earlier pass put there removed first: an optional C module that fails leaves none)."""
    for built in build.built():
        built.unlink()
    if build.c_module:
        try:
            build_c(build, tmp, flags)
        except (SystemExit, Exception) as exc:  # noqa: BLE001 - said, then optional
            if not build.c_optional:
                raise
            print(f"build_native: {build.c_module} not built ({exc}): {build.label} "
                  "runs without it", file=sys.stderr)
    build_mypyc(build, tmp, flags)


def skip(build: NativeBuild, why: str) -> int:
    print(f"build_native: {why}: {build.label} runs as pure Python", file=sys.stderr)
    return 0


def _cc() -> list[str]:
    """The compiler's command as setuptools takes it: ``CC``, else Python's own."""
    return ((os.environ.get("CC") or "").split()
            or (sysconfig.get_config_var("CC") or "cc").split() or ["cc"])


def why_not() -> str | None:
    """Why nothing can be compiled here (None: it can)."""
    cc = _cc()[0]
    if shutil.which(cc) is None:
        return f"no C compiler ({cc})"
    if not Path(sysconfig.get_paths()["include"], "Python.h").exists():
        return "no Python headers (Python.h)"
    try:
        import mypyc  # noqa: F401
    except ImportError:
        return "mypy (mypyc) is not installed"
    return None


def make(build: NativeBuild, force: bool, pgo: bool = True) -> int:
    """Build ``build`` unless it is up to date (its sources and this script unchanged); those
    of :data:`PGO_BUILDS` guided by a profile (:func:`profiled`) where ``pgo`` and the
    compiler is GCC."""
    sources = build.sources_hash()  # (before the build: a source edited meanwhile is stale)
    digest = sources + "\n" + hashlib.sha1(Path(__file__).read_bytes()).hexdigest()
    profile = pgo and build in PGO_BUILDS and gcc()
    done = _script(build)
    # (the digest ends with how it was built: a build without the profile asked for -- its
    # training failed, or --no-pgo then -- is made again)
    if (not force and done.exists() and done.read_text() == f"{digest}\n{profile}"
            and build.built()):
        return 0
    why = why_not()
    if why is not None:
        if build.built() and not build.stale():
            print(f"build_native: {why}: {build.label} keeps the build it has (made from "
                  "these sources)", file=sys.stderr)
            return 0
        clean(build)
        return skip(build, why)
    clean(build)
    guided = False
    with tempfile.TemporaryDirectory(prefix="fixgw-native-") as tmp:
        try:
            if profile:
                guided = profiled(build, Path(tmp), sources)
            else:
                compile_all(build, Path(tmp))
        except (SystemExit, Exception) as exc:  # noqa: BLE001 - any failure: pure Python
            clean(build)
            return skip(build, f"the build failed ({exc})")
        except BaseException:  # (interrupted: nothing half made is left)
            clean(build)
            raise
    build.stamp.write_text(sources)
    done.write_text(f"{digest}\n{guided}")
    print(f"build_native: {build.label}: built{' (profile-guided)' if guided else ''} "
          f"{', '.join(sorted(p.name for p in build.built()))}",
          file=sys.stderr)
    return 0


@functools.cache
def gcc() -> bool:
    """Whether the compiler that builds extensions (``CC``, as setuptools takes it) is GCC 10
    or later (the profile-guided flags: ``-fprofile-partial-training`` is GCC 10's)."""
    cc = _cc()
    try:
        out = subprocess.run([*cc, "--version"], capture_output=True, text=True, check=False,
                             timeout=30).stdout
        version = subprocess.run([*cc, "-dumpversion"], capture_output=True, text=True,
                                 check=False, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return False
    if "Free Software Foundation" not in out and not out.lower().startswith("gcc"):
        return False
    major = version.split(".")[0]
    return major.isdigit() and int(major) >= 10


def profiled(build: NativeBuild, tmp: Path, sources: str) -> bool:
    """Build ``build`` guided by a profile of itself: compiled with GCC's counters, run under
    the training workload (:func:`train`: the gateway serving marketable orders), compiled again
    from the same sources in the same place (the counts are found by the objects' paths) with
    the counts. Returns whether it was; a training that fails, or a second compile that fails,
    leaves the build made as usual, without a profile, and says why. The counting build is
    stamped :data:`connectors.native.TRAINING`: stale for every process but the training run's,
    also if this one is stopped before it is done."""
    compile_all(build, tmp, PGO_GENERATE)
    build.stamp.write_text(f"{TRAINING}{build.group} {sources}")
    step = "the training run"
    try:
        train(build)
        if not any(tmp.rglob("*.gcda")):
            raise RuntimeError("it left no counts (did it run this checkout's build?)")
        step = "the build with the profile"
        compile_all(build, tmp, PGO_USE)  # (in place of the counting build: build_ext --force)
    except (SystemExit, Exception) as exc:  # noqa: BLE001 - said, then built without a profile
        print(f"build_native: {build.label}: {step} failed ({exc}): built without a profile",
              file=sys.stderr)
        compile_all(build, tmp)
        return False
    return True


def train(build: NativeBuild) -> None:
    """The training workload: the gateway (``scripts/benchlib/gw_inproc.py``, the benchmarks'
    configuration: SQLite, the paper venue, pre-trade checks on, in a temporary directory)
    serves :data:`TRAIN_ORDERS` marketable orders one at a time and then 100 at a time from the
    benchmarks' client over loopback, then stops (its counts are written as it exits); the
    counting build of ``build`` is fresh for it."""
    if str(REPO / "scripts") not in sys.path:
        sys.path.insert(0, str(REPO / "scripts"))
    from benchlib.client import LeanClient, OrderSpec
    from benchlib.gwconfig import write_config

    env = {k: v for k, v in os.environ.items() if k not in ("FIXGW_PURE", "FIXGW_AUDIT_PURE")}
    env["FIXGW_NATIVE_TRAINING"] = build.group  # (its counting build is fresh; no other one)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    with tempfile.TemporaryDirectory(prefix="fixgw-train-") as work:
        cfg = write_config(Path(work) / "gw.toml", store=f"sqlite:///{Path(work) / 'gw.db'}",
                           log_dir=Path(work) / "log")
        errors = Path(work) / "stderr"
        with errors.open("wb") as stderr:
            proc = subprocess.Popen(
                [sys.executable, str(REPO / "scripts" / "benchlib" / "gw_inproc.py"),
                 "--config", str(cfg)],
                cwd=work, env=env, stdout=subprocess.PIPE, stderr=stderr, text=True)
        try:
            assert proc.stdout is not None
            with selectors.DefaultSelector() as sel:
                sel.register(proc.stdout, selectors.EVENT_READ)
                line = proc.stdout.readline() if sel.select(TRAIN_START_S) else ""
            if not line.startswith("listening on "):
                raise RuntimeError(f"the gateway did not start ({line.strip() or 'no output'}; "
                                   f"{_tail(errors)})")
            host, port = line.split()[-1].rsplit(":", 1)
            client = LeanClient(host, int(port))
            client.logon()
            for window, count in TRAIN_ORDERS:
                done = client.run_window(OrderSpec(), count, window, f"t{window}-",
                                         deadline_s=120.0)
                if done.rejected:
                    raise RuntimeError(f"{done.rejected} of its orders were rejected")
            client.logout()
        finally:
            proc.terminate()
            try:
                code = proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                raise
            finally:
                if proc.stdout is not None:
                    proc.stdout.close()
        if code != 0:
            raise RuntimeError(f"the gateway exited with {code} ({_tail(errors)})")


def _tail(path: Path) -> str:
    lines = path.read_text(errors="replace").strip().splitlines()
    return " / ".join(lines[-3:]) if lines else "nothing on stderr"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", choices=sorted(BUILDS), action="append",
                    help="build (or clean) only this one (repeatable; default: all)")
    ap.add_argument("--clean", action="store_true", help="remove the compiled modules")
    ap.add_argument("--force", action="store_true", help="build even if up to date")
    ap.add_argument("--no-pgo", dest="pgo", action="store_false",
                    default=os.environ.get("FIXGW_NO_PGO", "") in ("", "0"),
                    help="compile the order path and the paper venue once, without a profile "
                         "(FIXGW_NO_PGO=1 too: scripts/setup.sh's builds)")
    args = ap.parse_args(argv)
    for name in args.only or BUILDS:  # (the profiled ones last: they train with the others
        # built -- but for each other, the order path trained with the paper venue built)
        if args.clean:
            clean(BUILDS[name])
        else:
            make(BUILDS[name], args.force, args.pgo)
    return 0


if __name__ == "__main__":
    sys.exit(main())
