"""Venue and account resolution, and the symbol map (DESIGN "Identities").

The venue is chosen by ExDestination (100) or SecurityExchange (207), else by the Account (1)
when the session maps accounts to venues, else the session's default. The symbol is canonical
(Symbol 55, ``BTC/USDT``) or the venue's native one through SecurityID (48) with
SecurityIDSource (22) = 8 (exchange symbol).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from connectors.base import Instrument


@dataclass(frozen=True, slots=True)
class SessionRouting:
    default_venue: str
    venues: frozenset[str]
    accounts: dict[str, str] = field(default_factory=dict)
    """Account (1) -> venue connector name."""
    sor: bool = False
    """An order that names no venue is routed by the smart order router."""
    order: tuple[str, ...] = ()
    """The venues in configuration order (the router's tie-break); empty: sorted."""

    def routed_venues(self, account: str | None) -> list[str]:
        """The venues the smart order router may use for an order of ``account``: the
        session's, or the one venue the account trades at. RoutingError for an account the
        session does not know."""
        if account and self.accounts:
            venue = self.accounts.get(account)
            if venue is None:
                raise RoutingError(f"unknown account {account}")
            return [venue]
        return [v for v in (self.order or sorted(self.venues)) if v in self.venues]


class RoutingError(ValueError):
    pass


class UnknownSymbol(RoutingError):  # noqa: N818 - read as "the symbol is unknown"
    """The venue lists no such instrument (OrdRejReason 1)."""


class SymbolMap:
    def __init__(self) -> None:
        self._by_symbol: dict[str, dict[str, Instrument]] = {}
        self._by_native: dict[str, dict[str, Instrument]] = {}

    def load(self, venue: str, instruments: Iterable[Instrument]) -> None:
        self._by_symbol[venue] = {i.symbol: i for i in instruments}
        self._by_native[venue] = {i.venue_symbol: i for i in self._by_symbol[venue].values()}

    def lists(self, venue: str, symbol: str) -> bool:
        """Whether ``venue`` lists canonical ``symbol``."""
        return symbol in self._by_symbol.get(venue, {})

    def instrument(
        self, venue: str, symbol: str | None, security_id: str | None, source: str | None
    ) -> Instrument:
        table = self._by_symbol.get(venue, {})
        if symbol:
            inst = table.get(symbol)
            if inst is not None:
                return inst
        if security_id and source == "8":
            inst = self._by_native.get(venue, {}).get(security_id)
            if inst is not None:
                return inst
        named = symbol or security_id or "?"
        raise UnknownSymbol(f"unknown symbol {named} at {venue}")


def resolve_venue(
    routing: SessionRouting, destination: str | None, account: str | None
) -> str:
    if destination:
        if destination not in routing.venues:
            raise RoutingError(f"venue {destination} is not enabled for this session")
        if account and account in routing.accounts and routing.accounts[account] != destination:
            raise RoutingError(f"account {account} does not trade at {destination}")
        return destination
    if account:
        if routing.accounts:
            venue = routing.accounts.get(account)
            if venue is None:
                raise RoutingError(f"unknown account {account}")
            return venue
    return routing.default_venue
