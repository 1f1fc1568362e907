"""Binance Spot: the native connector (REST + WebSocket API user data stream) and its loopback
emulator."""

from connectors.binance.connector import BinanceConnector
from connectors.binance.emulator import BinanceEmulator

KIND = "binance"

__all__ = ["KIND", "BinanceConnector", "BinanceEmulator"]
