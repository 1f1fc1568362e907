"""A generic connector for the venues ccxt supports and fixgw has no native connector for
(see :mod:`connectors.ccxt.connector` for what it does less exactly than a native one).

The package is named ``connectors.ccxt``; the library is always imported absolutely as
``ccxt.async_support`` / ``ccxt.pro``, never relative to this package.
"""

from __future__ import annotations

from connectors.ccxt.connector import CcxtConnector

KIND = "ccxt"

__all__ = ["KIND", "CcxtConnector"]
