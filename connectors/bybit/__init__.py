"""Bybit v5 (unified account): spot and USDT linear perpetuals, with a loopback emulator."""

from connectors.bybit.connector import BybitConnector
from connectors.bybit.emulator import BybitEmulator

KIND = "bybit"

__all__ = ["KIND", "BybitConnector", "BybitEmulator"]
