"""The compiled order path (the FIX codec, dictionaries and validation, the orders' model,
lifecycle and FIX mapping compiled by mypyc: gateway/native.py) and the compiled paper venue
(its book, market maker, exchange and connector: connectors/paper/native.py) and the connector
contract's values (connectors/events.py: connectors.native.EVENTS) must do what their
pure-Python source does: the same small order flow (tests/orders/native_flow.py) run both ways
gives the same messages and the same orders.

Skipped where the compiled modules are not built (``scripts/build_native.py``, run by
``scripts/setup.sh``), unless ``REQUIRE_NATIVE=1``."""

from __future__ import annotations

import ast
import dataclasses
import importlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import FunctionType
from typing import Any

import pytest

from connectors.native import EVENTS, ROOT, TRAINING, NativeBuild
from connectors.paper.native import BUILD as PAPER
from gateway.native import ORDER_PATH

FLOW = Path(__file__).with_name("native_flow.py")
BUILDS = (ORDER_PATH, PAPER, EVENTS)

if not all(b.built() and not b.stale() for b in BUILDS):
    _WHY = ("the order path's, the paper venue's or the connector contract's compiled modules "
            "are not built, or stale (scripts/build_native.py)")
    if os.environ.get("REQUIRE_NATIVE") == "1":
        pytest.fail(f"{_WHY} (REQUIRE_NATIVE=1)", pytrace=False)
    pytest.skip(_WHY, allow_module_level=True)


def test_native_is_in_use() -> None:
    if ORDER_PATH.asked_pure:
        pytest.skip("FIXGW_PURE=1: this process runs the order path and the paper venue as Python")
    for build in BUILDS:
        assert all(build.compiled().values()), build.compiled()


def _flow(tmp: Path, pure: bool) -> dict[str, object]:
    tmp.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "FIXGW_PURE"}
    if pure:
        env["FIXGW_PURE"] = "1"
    out = tmp / "flow.json"
    proc = subprocess.run([sys.executable, str(FLOW), str(out)], env=env, capture_output=True,
                          text=True, check=False, timeout=120)
    assert proc.returncode == 0, proc.stderr
    doc: dict[str, object] = json.loads(out.read_text())
    compiled = doc.pop("compiled")
    assert isinstance(compiled, dict)
    assert set(compiled) == {*ORDER_PATH.modules, *PAPER.modules, *EVENTS.modules}
    assert set(compiled.values()) == {not pure}, compiled
    return doc


def test_an_order_flow_is_the_same_compiled_and_pure(tmp_path: Path) -> None:
    pure = _flow(tmp_path / "pure", pure=True)
    compiled = _flow(tmp_path / "compiled", pure=False)
    assert pure == compiled
    types = [dict(m)[35] for m in pure["received"]["C1"]]  # type: ignore[index]
    assert {"A", "8", "9", "3", "N", "5"} <= set(types), types
    assert len(pure["orders"]) == 8  # type: ignore[arg-type]


@pytest.mark.parametrize("build", BUILDS, ids=lambda b: b.group)
def test_a_stale_build_is_not_used(build: NativeBuild, tmp_path: Path,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """A module edited since the build (its hash no longer the build's): the build is stale,
    and a stale build is not used (``NativeBuild.pure``), so fixgw runs the edited source."""
    assert build.stale() is False
    stamp = tmp_path / ".native-build"
    stamp.write_text("the hash of other sources")
    monkeypatch.setattr(build, "stamp", stamp)
    assert build.stale() is True
    stamp.write_text(build.sources_hash())
    assert build.stale() is False


@pytest.mark.parametrize("build", BUILDS, ids=lambda b: b.group)
def test_a_counting_build_is_used_by_its_own_training_only(
        build: NativeBuild, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The first compile of a profile-guided build (GCC's counters, scripts/build_native.py) is
    stamped as such: stale for every process but its own training run's, also if the build
    stopped before it was done (its counts would be written at every exit)."""
    stamp = tmp_path / ".native-build"
    stamp.write_text(f"{TRAINING}{build.group} {build.sources_hash()}")
    monkeypatch.setattr(build, "stamp", stamp)
    monkeypatch.delenv("FIXGW_NATIVE_TRAINING", raising=False)
    assert build.stale() is True
    monkeypatch.setenv("FIXGW_NATIVE_TRAINING", "another.group")
    assert build.stale() is True
    monkeypatch.setenv("FIXGW_NATIVE_TRAINING", build.group)
    assert build.stale() is False
    stamp.write_text(f"{TRAINING}{build.group} the hash of other sources")
    assert build.stale() is True


VENUE_FIRST = """
import json, sys
import connectors.paper.venue
from connectors.native import EVENTS
from connectors.paper.native import BUILD
print(json.dumps({"gateway": sorted(m for m in sys.modules if m.split(".")[0] == "gateway"),
                  "root": connectors.paper.__file__,
                  "compiled": {**BUILD.compiled(), **EVENTS.compiled()}}))
"""
"""A process that imports the paper venue and not the gateway (the emulators, ``fixgw
venue-sim``'s server, a test): which of its modules run compiled."""


def _venue_first(root: Path, pure: bool) -> tuple[dict[str, Any], str]:
    env = {k: v for k, v in os.environ.items() if k not in ("FIXGW_PURE", "PYTHONPATH")}
    env["PYTHONPATH"] = str(root)
    if pure:
        env["FIXGW_PURE"] = "1"
    proc = subprocess.run([sys.executable, "-c", VENUE_FIRST], cwd=root, env=env,
                          capture_output=True, text=True, check=False, timeout=60)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["gateway"] == [], doc["gateway"]  # the venue side imports no gateway
    assert Path(str(doc["root"])).is_relative_to(root), doc["root"]
    assert set(doc["compiled"]) == {*PAPER.modules, *EVENTS.modules}
    return doc, proc.stderr


def test_the_venue_imported_before_the_gateway_runs_compiled_or_as_python_as_asked() -> None:
    """The switch back to Python is the paper package's own (``connectors/paper/__init__.py``
    installs it) and the ``connectors`` package's (the contract's values), not the gateway's: a
    process importing the venue alone runs them compiled where the builds are fresh and as
    Python with ``FIXGW_PURE=1``."""
    doc, _ = _venue_first(ROOT, pure=False)
    assert set(doc["compiled"].values()) == {True}, doc
    doc, _ = _venue_first(ROOT, pure=True)
    assert set(doc["compiled"].values()) == {False}, doc


@pytest.mark.parametrize("build", (PAPER, EVENTS), ids=lambda b: b.group)
def test_the_venue_imported_before_the_gateway_does_not_run_a_stale_build(
        build: NativeBuild, tmp_path: Path) -> None:
    """The same with one of the venue side's builds stale (a copy of ``connectors``, its
    builds included, whose stamp is another source's): that build's modules run as Python, the
    other's compiled, and it says so."""
    shutil.copytree(ROOT / "connectors", tmp_path / "connectors",
                    ignore=shutil.ignore_patterns("__pycache__"))
    doc, _ = _venue_first(tmp_path, pure=False)  # the copy, fresh: compiled
    assert set(doc["compiled"].values()) == {True}, doc
    stamp = tmp_path / build.stamp.relative_to(ROOT)
    stamp.write_text("the hash of other sources")
    doc, stderr = _venue_first(tmp_path, pure=False)
    assert {m for m, on in doc["compiled"].items() if not on} == set(build.modules), doc
    assert f"{build.label}: the compiled modules are older than their source" in stderr, stderr


def _written_inits() -> list[tuple[type, ast.FunctionDef, dict[str, Any]]]:
    """The compiled dataclasses of both builds that write their own ``__init__`` (compiled, it
    is not a Python function), each with that ``__init__`` as its source declares it and its
    module's names."""
    found = []
    for build in BUILDS:
        for name in build.modules:
            module = importlib.import_module(name)
            tree = ast.parse(build.source(name).read_text())
            classes = {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}
            for value in vars(module).values():
                if (isinstance(value, type) and value.__module__ == name
                        and dataclasses.is_dataclass(value)
                        and not isinstance(value.__dict__.get("__init__"), FunctionType)):
                    init = next(n for n in classes[value.__name__].body
                                if isinstance(n, ast.FunctionDef) and n.name == "__init__")
                    found.append((value, init, vars(module)))
    return found


def test_a_written_init_sets_every_field_as_the_generated_one_would() -> None:
    """Each written ``__init__`` takes the dataclass's fields, in their order, and sets each,
    with the dataclass's defaults (a field with a default factory: None, for which the factory
    makes one). One left out, misordered or defaulted otherwise would pass as Python, where the
    generated ``__init__`` is used (gateway.native.dataclass_init_when_interpreted), and fail
    compiled."""
    if ORDER_PATH.asked_pure:
        pytest.skip("FIXGW_PURE=1: the generated __init__ is in use")
    written = _written_inits()
    names = {cls.__name__ for cls, _, _ in written}
    assert {"Execution", "Send", "OrderEvent", "Commit", "FillRecord", "Held", "Order",
            "NewOrder", "PaperOrder"} <= names, names
    for cls, init, namespace in written:
        fields = [f for f in dataclasses.fields(cls) if f.init]
        args = init.args.args[1:]
        assert [a.arg for a in args] == [f.name for f in fields], cls
        defaults = dict(zip([a.arg for a in args[len(args) - len(init.args.defaults):]],
                            init.args.defaults, strict=True))
        sets: dict[str, ast.expr] = {}
        for statement in init.body:  # self.<field> = <param> (or its factory's, when None)
            if isinstance(statement, ast.Expr):  # Base.__init__(self, <its fields' params>)
                call = statement.value
                assert isinstance(call, ast.Call) and ast.unparse(call.func).endswith(
                    ".__init__"), (cls, ast.unparse(statement))
                base = namespace[ast.unparse(call.func).removesuffix(".__init__")]
                assert base in cls.__mro__[1:], (cls, base)
                given = [ast.unparse(a) for a in call.args]
                assert given == ["self", *(f.name for f in dataclasses.fields(base))], cls
                sets.update((name, ast.Name(name)) for name in given[1:])
                continue
            assert isinstance(statement, ast.Assign), (cls, ast.unparse(statement))
            target = statement.targets[0]
            assert isinstance(target, ast.Attribute), (cls, ast.unparse(statement))
            sets[target.attr] = statement.value
        assert set(sets) == {f.name for f in fields}, cls
        for f in fields:
            value = sets[f.name]
            if f.default_factory is not dataclasses.MISSING:
                assert ast.literal_eval(defaults[f.name]) is None, (cls, f.name)
                assert isinstance(value, ast.IfExp), (cls, f.name)
                made = eval(ast.unparse(value.body), namespace)  # noqa: S307 - our source
                assert made == f.default_factory() and type(made) is type(f.default_factory())
                assert ast.unparse(value.test) == f"{f.name} is None", (cls, f.name)
                assert ast.unparse(value.orelse) == f.name, (cls, f.name)
                continue
            assert isinstance(value, ast.Name) and value.id == f.name, (cls, f.name)
            if f.default is dataclasses.MISSING:
                assert f.name not in defaults, (cls, f.name)
            else:
                given = eval(ast.unparse(defaults[f.name]), namespace)  # noqa: S307 - our source
                assert given == f.default, (cls, f.name)
