"""The paper venue: an in-process exchange behind the connector contract (fixgw's default).

connector = PaperConnector(PaperConfig(seed=7))
await connector.start()          # the market clock; tests call connector.tick(now_ns)
"""

from connectors.paper.native import BUILD

BUILD.install()  # before any compiled module is imported: FIXGW_PURE=1, or a stale build

from connectors.paper.config import Faults, PaperConfig, default_balances  # noqa: E402
from connectors.paper.exchange import PaperExchange  # noqa: E402
from connectors.paper.market import MarketConfig, default_markets  # noqa: E402
from connectors.paper.venue import PaperConnector  # noqa: E402

__all__ = [
    "Faults",
    "MarketConfig",
    "PaperConfig",
    "PaperConnector",
    "PaperExchange",
    "default_balances",
    "default_markets",
]
