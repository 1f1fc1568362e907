"""Bybit v5 (unified account): spot and USDT linear perpetuals."""

from connectors.bybit.connector import BybitConnector

KIND = "bybit"

__all__ = ["KIND", "BybitConnector"]
