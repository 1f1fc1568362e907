"""OKX (API v5): spot and USDT-margined perpetual swaps; the connector and its emulator."""

from connectors.okx.connector import OkxConnector
from connectors.okx.emulator import OkxEmulator

KIND = "okx"

__all__ = ["KIND", "OkxConnector", "OkxEmulator"]
