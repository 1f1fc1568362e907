"""The paper venue: an in-process exchange behind the connector contract (fixgw's default).

connector = PaperConnector(PaperConfig(seed=7))
await connector.start()          # the market clock; tests call connector.tick(now_ns)
"""

from connectors.paper.config import Faults, PaperConfig, default_balances
from connectors.paper.exchange import PaperExchange
from connectors.paper.market import MarketConfig, default_markets
from connectors.paper.venue import PaperConnector

__all__ = [
    "Faults",
    "MarketConfig",
    "PaperConfig",
    "PaperConnector",
    "PaperExchange",
    "default_balances",
    "default_markets",
]
