"""Modules compiled from their own Python source by mypyc, and the switch back to Python.

``scripts/build_native.py`` (run by ``scripts/setup.sh``) compiles the modules a
:class:`NativeBuild` names, in place: an extension module beside each ``.py`` (which the normal
import prefers to it) and one shared library for the group. Where the build is absent the
modules are the Python they are compiled from, with the same results, more slowly. Where it is
present but was made from other sources (a module edited since: the hash of the sources it was
made from, kept in :attr:`NativeBuild.stamp`, differs) it is stale, and a stale build is not
used: running it would run old code. Its environment variable (:attr:`NativeBuild.env`, ``=1``)
makes a present build unused too; the tests compare the two, the benchmarks measure both.

A build is installed by the package of its modules, in its ``__init__``, before any of them is
imported: only then does the switch see every import of them, whichever package a process
imports first. Here, a leaf that imports nothing of fixgw, so that the venue side (which must
not import ``gateway``) can declare and install a build of its own. Four builds:
:data:`gateway.native.ORDER_PATH` (installed by the ``gateway`` package), the audit's
(:mod:`gateway.audit.native`, with C of its own), the paper venue's
(:mod:`connectors.paper.native`, installed by ``connectors.paper``) and the connector contract's
values (:data:`EVENTS`, here, installed by the ``connectors`` package).
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import hashlib
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from types import FunctionType, ModuleType

ROOT = Path(__file__).resolve().parent.parent
"""The directory holding the ``gateway`` and ``connectors`` packages (the checkout, or
site-packages)."""


TRAINING = "training "
"""The beginning of the stamp of a build compiled with GCC's counters, the first of a
profile-guided build (``scripts/build_native.py``), which only its training run uses."""


class NativeBuild:
    """A group of modules mypyc compiles into one shared library (``<group>__mypyc*.so``), and
    optionally one extension module of hand-written C (``c_module`` from ``c_sources``)."""

    def __init__(self, label: str, modules: Sequence[str], group: str, env: str, *,
                 c_module: str | None = None, c_sources: Sequence[Path] = (),
                 c_libraries: Sequence[str] = (), c_optional: bool = False,
                 depends: Sequence[str] = ("gateway", "connectors")) -> None:
        self.label = label
        """Who says so on stderr when the build is stale (``fixgw's order path``, ``the paper
        venue``, ``fixgw audit``)."""
        self.modules = tuple(modules)
        """The modules mypyc compiles, by their dotted names."""
        self.group = group
        """mypyc's name for their shared library."""
        self.env = env
        """The environment variable that makes a present build unused (``=1``)."""
        self.c_module = c_module
        self.c_sources = tuple(c_sources)
        """The C of ``c_module``, headers included (they are part of what the stamp hashes)."""
        self.c_libraries = tuple(c_libraries)
        """The libraries ``c_module`` links with (``sqlite3``)."""
        self.c_optional = c_optional
        """True: a ``c_module`` that fails to build (its library's headers missing) is left out
        and the mypyc modules built all the same; False: the whole build runs as Python."""
        self.depends = tuple(depends)
        """Packages (directories under :data:`ROOT`) whose every module the stamp hashes: the
        compiled modules, and what they import -- mypyc compiles against the types of those (a
        dataclass of another module, checked at run time), so an edit there makes the build
        stale as well."""
        self.stamp = _path(group).parent / ".native-build"
        """Written by the build: the hash of the sources it compiled (:meth:`sources_hash`)."""
        self._pure: bool | None = None

    def source(self, module: str) -> Path:
        return _path(module).with_suffix(".py")

    def sources_hash(self) -> str:
        """The hash of what the build compiles against, for this Python: :attr:`c_sources` and
        every module of :attr:`depends` (the compiled ones among them)."""
        h = hashlib.sha256(sys.version.encode())
        for path in self.c_sources:
            h.update(path.name.encode())  # (their names and bytes, wherever the sources are)
            h.update(path.read_bytes())
        for package in self.depends:
            h.update(_tree_hash(ROOT / package).encode())
        return h.hexdigest()

    def built(self) -> list[Path]:
        """The extension modules of the build that this Python would load (none: no build)."""
        names = [*self.modules, f"{self.group}__mypyc",
                 *([self.c_module] if self.c_module else [])]
        return [p for name in names for suffix in importlib.machinery.EXTENSION_SUFFIXES
                if (p := _path(name).with_name(_path(name).name + suffix)).exists()]

    def stale(self) -> bool:
        """A build is there but was made from other sources: running it would run old code. Or
        it is the counting build of a profile-guided build (its stamp begins with
        :data:`TRAINING` and the group's name): not what the finished build runs, used only by
        its own training run (``FIXGW_NATIVE_TRAINING=<group>``), stale for every other process
        -- also if the build was stopped before it was done."""
        if not self.built():
            return False
        try:
            stamp = self.stamp.read_text()
        except OSError:
            return True
        mine = f"{TRAINING}{self.group} "
        if stamp.startswith(mine) and os.environ.get("FIXGW_NATIVE_TRAINING") == self.group:
            stamp = stamp[len(mine):]
        return stamp != self.sources_hash()

    @property
    def asked_pure(self) -> bool:
        return os.environ.get(self.env, "") not in ("", "0")

    @property
    def pure(self) -> bool:
        """True: the compiled modules are not used even where built (:attr:`env` set, or a
        stale build, which is said on stderr). Decided once, at the first question."""
        if self._pure is None:
            stale = not self.asked_pure and self.stale()
            if stale:
                print(f"{self.label}: the compiled modules are older than their source: running "
                      "them as Python (scripts/build_native.py builds them again)",
                      file=sys.stderr)
            self._pure = self.asked_pure or stale
        return self._pure

    def install(self) -> None:
        """With :attr:`pure`, make the compiled modules import as Python (called before any of
        them is imported: by their package's ``__init__``)."""
        if self.pure and not any(isinstance(f, _PureFinder) and f.build is self
                                 for f in sys.meta_path):
            sys.meta_path.insert(0, _PureFinder(self))

    def compiled(self) -> dict[str, bool]:
        """Each module of the build, by its dotted name: True where it runs compiled in this
        process (loaded from an extension module)."""
        out = {}
        for name in self.modules:
            module = importlib.import_module(name)
            out[name] = not str(module.__file__).endswith(".py")
        return out


class _PureFinder(importlib.abc.MetaPathFinder):
    """Finds the modules of a build as their ``.py`` source, not the extension modules built
    beside it (which the normal import prefers)."""

    def __init__(self, build: NativeBuild) -> None:
        self.build = build

    def find_spec(self, fullname: str, path: Sequence[str] | None,
                  target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        if fullname not in self.build.modules:
            return None
        return importlib.util.spec_from_file_location(fullname, self.build.source(fullname))


_TREES: dict[Path, tuple[tuple[tuple[str, int, int], ...], str]] = {}
"""A package's modules as last hashed (name, size, mtime of each) and their hash: the builds of
a process hash ``gateway`` and ``connectors`` once each (about 7 ms), not once a build."""


def _tree_hash(package: Path) -> str:
    """The hash of every module of ``package`` (names relative to :data:`ROOT`)."""
    paths = sorted(package.rglob("*.py"))
    seen = tuple((p.relative_to(ROOT).as_posix(), (st := p.stat()).st_size, st.st_mtime_ns)
                 for p in paths)
    known = _TREES.get(package)
    if known is not None and known[0] == seen:
        return known[1]
    h = hashlib.sha256()
    for (name, _size, _mtime), path in zip(seen, paths, strict=True):
        h.update(name.encode())
        h.update(path.read_bytes())
    _TREES[package] = (seen, h.hexdigest())
    return _TREES[package][1]


def _path(dotted: str) -> Path:
    """Where the module (or the extension) of a dotted name lives, without its suffix."""
    return ROOT.joinpath(*dotted.split("."))


def dataclass_init_when_interpreted(*classes: type) -> None:
    """Put back the ``__init__`` :mod:`dataclasses` makes, when these frozen dataclasses run as
    Python.

    mypyc compiles a dataclass's own methods but leaves the ones :mod:`dataclasses` generates
    interpreted, and a frozen one's ``__init__`` sets each field through ``object.__setattr__``:
    about 0.8 us for six fields, 1.9 for sixteen, against 0.05-0.13 for an ``__init__`` written
    in the class and compiled, which sets them as the native attributes they are (the frozen
    ``__setattr__`` guards what Python code does, not the compiled class's own stores). So the
    hot path's frozen dataclasses write their ``__init__``; as Python those stores meet the
    frozen ``__setattr__`` and fail, and this gives each class, run as Python, the ``__init__``
    a dataclass with its fields would have (defaults, factories and ``__post_init__`` included;
    an ``InitVar`` is not a field and would be lost: a class with one is refused). A compiled
    class is left alone.
    """
    for cls in classes:
        if not isinstance(cls.__dict__.get("__init__"), FunctionType):
            continue  # compiled: the class's own __init__ is native
        if any("InitVar" in str(t) for t in getattr(cls, "__annotations__", {}).values()):
            raise TypeError(f"{cls.__name__}: an InitVar is not rebuilt")
        specs = []
        for f in dataclasses.fields(cls):
            spec = dataclasses.field(default=f.default, default_factory=f.default_factory,
                                     init=f.init, kw_only=f.kw_only)
            specs.append((f.name, f.type, spec))
        namespace = {}
        if hasattr(cls, "__post_init__"):
            namespace["__post_init__"] = cls.__post_init__
        twin = dataclasses.make_dataclass(cls.__name__, specs, frozen=True, namespace=namespace)
        cls.__init__ = twin.__init__  # type: ignore[misc]


def written_annotations(cls: type) -> dict[str, str]:
    """The annotations of ``cls``'s own fields as its module's source writes them (text). A class
    mypyc compiled keeps at run time only what mypyc makes of them (``str | None`` becomes
    ``type``); whoever reads field types (the paper venue's wire protocol) reads them here."""
    return _module_annotations(cls.__module__)[cls.__name__]


@functools.cache
def _module_annotations(module: str) -> dict[str, dict[str, str]]:
    """Class name -> field -> annotation, of every top-level class of ``module``'s source (read
    and parsed once)."""
    tree = ast.parse(_path(module).with_suffix(".py").read_text())
    return {node.name: {a.target.id: ast.unparse(a.annotation) for a in node.body
                        if isinstance(a, ast.AnnAssign) and isinstance(a.target, ast.Name)}
            for node in tree.body if isinstance(node, ast.ClassDef)}


EVENTS = NativeBuild("the connector contract's values", ("connectors.events",),
                     "connectors._compiled", "FIXGW_PURE", depends=("connectors",))
"""The enums, order events, requests and balances every venue and the order path exchange
(:mod:`connectors.events`), compiled by mypyc: a build of their own, installed by the
``connectors`` package before any of its modules is imported (whichever venue or part of the
gateway a process imports first); ``FIXGW_PURE=1``, the order path's switch, makes it unused as
well. The stamp hashes ``connectors`` only (nothing of ``gateway`` is imported there)."""
