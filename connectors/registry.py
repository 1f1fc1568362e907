"""The exchange connectors by config kind, imported only when a venue of that kind is used."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from connectors.base import Connector
from connectors.common.settings import VenueSettings

NATIVE_KINDS = {
    "binance": ("connectors.binance", "BinanceConnector"),
    "okx": ("connectors.okx", "OkxConnector"),
    "bybit": ("connectors.bybit", "BybitConnector"),
}


def exchange_connector(
    kind: str,
    settings: VenueSettings,
    *,
    exchange_id: str | None = None,
    options: Mapping[str, Any] | None = None,
    poll_interval: float = 1.0,
) -> Connector:
    if kind == "ccxt":
        from connectors.ccxt import CcxtConnector

        if not exchange_id:
            raise ValueError("a ccxt venue needs exchange_id")
        conn: Connector = CcxtConnector(settings, exchange_id, options,
                                        poll_interval=poll_interval)
        return conn
    if kind not in NATIVE_KINDS:
        raise ValueError(f"unknown exchange kind {kind!r}")
    module, cls = NATIVE_KINDS[kind]
    factory = getattr(importlib.import_module(module), cls)
    built: Connector = factory(settings)
    return built
