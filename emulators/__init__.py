"""Test doubles of the venues: loopback servers that speak each venue's documented REST and
WebSocket protocol over the paper exchange (signatures, rate limits, faults). Never imported by
the gateway itself (a test asserts it): `scripts/emulator.py` starts one by hand."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from emulators.core import EmulatorServer

KINDS = ("binance", "okx", "bybit")


def emulator_class(kind: str) -> type[EmulatorServer]:
    """The emulator of venue kind ``kind`` (``binance``, ``okx``, ``bybit``)."""
    from emulators.core import EmulatorServer

    if kind not in KINDS:
        raise ValueError(f"no emulator of {kind!r} (one of {', '.join(KINDS)})")
    module = importlib.import_module(f"emulators.{kind}")
    found = [v for v in vars(module).values()
             if isinstance(v, type) and issubclass(v, EmulatorServer) and v is not EmulatorServer
             and v.__module__ == module.__name__]
    if len(found) != 1:
        raise LookupError(f"emulators.{kind} must define one emulator, found {found}")
    return found[0]
