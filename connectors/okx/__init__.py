"""OKX (API v5): spot and USDT-margined perpetual swaps."""

from connectors.okx.connector import OkxConnector

KIND = "okx"

__all__ = ["KIND", "OkxConnector"]
