"""Binance Spot: the native connector (REST + WebSocket API user data stream)."""

from connectors.binance.connector import BinanceConnector

KIND = "binance"

__all__ = ["KIND", "BinanceConnector"]
