"""The layers of the code and which may import which (docs/architecture.md, README "How it is
built"): dependencies point one way, so there is no import cycle between the parts. Read from
the sources' import statements (type-only imports included)."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

ALLOWED: dict[str, set[str]] = {
    # the protocol core and the venue side know nothing of the rest
    # (gateway.native: which modules run compiled, and the __init__ of their frozen dataclasses
    # when they run as Python)
    "gateway.fix": {"gateway.native"},
    # the contract (connectors.base) and its values (connectors.events, compiled: a build of
    # its own, installed by the package's __init__)
    "connectors.base": {"connectors.events"},
    "connectors.events": {"connectors.native"},
    "connectors": {"connectors.native"},
    "connectors.common": {"connectors.base"},
    # which modules run compiled and the switch back to Python (connectors.native: a leaf, so
    # that the venue side can declare and install a build of its own without importing the gateway)
    "connectors.native": set(),
    "connectors.paper": {"connectors.base", "connectors.common", "connectors.native"},
    "connectors.binance": {"connectors.base", "connectors.common"},
    "connectors.okx": {"connectors.base", "connectors.common"},
    "connectors.bybit": {"connectors.base", "connectors.common"},
    "connectors.ccxt": {"connectors.base", "connectors.common"},
    "connectors.registry": {"connectors.base", "connectors.common", "connectors.ccxt"},
    # the gateway, bottom up
    # the audit names fields and messages from the dictionaries and logs on as a client for
    # replay (gateway.initiator); it reaches the store only through a protocol the command line
    # fills (the store imports the audit's masker and InputError, not the other way round)
    "gateway.audit": {"gateway.fix", "gateway.initiator", "gateway.native"},
    "gateway.store": {"gateway.audit", "gateway.native"},
    # (gateway.logs: a leaf; its ``printable`` writes a client's words on one log line)
    "gateway.server": {"gateway.fix", "gateway.store", "gateway.audit", "gateway.logs"},
    "gateway.initiator": {"gateway.fix"},
    "gateway.risk": {"connectors.base"},
    "gateway.routing": {"connectors.base"},
    # (connectors.events: lifecycle's enums subclass the contract's IdentityEnum where it is
    # defined, as mypyc needs)
    "gateway.orders": {"gateway.fix", "gateway.store", "gateway.risk", "gateway.routing",
                       "connectors.base", "connectors.events", "gateway.logs", "gateway.native"},
    "gateway.cluster": {"gateway.store"},
    "gateway.marketdata": {"gateway.fix", "connectors.base"},
    "gateway.positions": {"gateway.fix", "gateway.risk", "gateway.store", "connectors.base",
                          "gateway.native"},
    "gateway.admin": {"gateway.orders", "gateway.server", "gateway.positions", "gateway.fix",
                      "gateway.store", "connectors.base", "connectors.common"},
    "gateway.config": {"gateway.fix"},
    "gateway.logs": set(),
    # which modules run compiled (gateway.native: the order path's build, of
    # connectors.native's kind); the package's own __init__ installs the switch back to Python
    # before any of them is imported
    "gateway.native": {"connectors.native"},
    "gateway": {"gateway.native"},
    # execution analytics: the order store's records and the positions' arithmetic (it reads
    # the store only through a protocol the command line fills)
    "gateway.analytics": {"gateway.store", "gateway.positions", "connectors.base"},
    # the market as the order path sees it, made of the feeds and the balance book
    "gateway.marketview": {"gateway.orders", "gateway.marketdata", "gateway.positions",
                           "connectors.base"},
}
"""Layer -> the layers it may import. The composition root (gateway.app), the command line and
the tools beside them (gateway.cli, client, venuecheck, conformance) may import anything."""


def _layer(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2]) if len(parts) > 1 else parts[0]


def _imports() -> dict[str, set[str]]:
    found: dict[str, set[str]] = defaultdict(set)
    for base in ("gateway", "connectors"):
        for path in (ROOT / base).rglob("*.py"):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            is_package = name.endswith(".__init__")
            name = name.removesuffix(".__init__")
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Import):
                    targets = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom):
                    if node.level:
                        package = name.split(".")
                        package = package[:len(package) - node.level + (1 if is_package else 0)]
                        targets = [".".join([*package, *([node.module] if node.module else [])])]
                    else:
                        targets = [node.module or ""]
                else:
                    continue
                for target in targets:
                    if target.split(".")[0] in ("gateway", "connectors"):
                        found[_layer(name)].add(_layer(target))
    return found


def test_every_layer_imports_only_what_it_may() -> None:
    wrong = []
    for layer, targets in sorted(_imports().items()):
        if layer not in ALLOWED:
            continue  # the composition root and the tools
        extra = sorted(t for t in targets - ALLOWED[layer] - {layer})
        if extra:
            wrong.append(f"{layer} imports {extra}")
    assert not wrong, "\n".join(wrong)


def test_every_layer_of_the_product_is_named() -> None:
    layers = set(_imports())
    tools = {"gateway.app", "gateway.cli", "gateway.client", "gateway.client_session",
             "gateway.venuecheck", "gateway.conformance"}
    assert layers - tools - set(ALLOWED) == set()


def test_the_rules_have_no_cycle() -> None:
    seen: dict[str, int] = {}

    def visit(layer: str, path: list[str]) -> None:
        if seen.get(layer) == 1:
            raise AssertionError(f"cycle: {' -> '.join([*path, layer])}")
        if seen.get(layer) == 2:
            return
        seen[layer] = 1
        for nxt in ALLOWED.get(layer, ()):
            visit(nxt, [*path, layer])
        seen[layer] = 2

    for layer in ALLOWED:
        visit(layer, [])
