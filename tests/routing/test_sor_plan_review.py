"""The plan where a review found it wrong: a buy share fits the balance at the price its child
locks (its limit), the rest to home too; a sell share meets the minimum notional at its child
price."""

from __future__ import annotations

from decimal import Decimal as D

from connectors.base import Instrument, Side
from gateway.routing.sor import VenueQuote, plan

INST = Instrument("BTC/USDT", "BTCUSDT", "BTC", "USDT", tick_size=D("0.01"),
                  lot_size=D("0.001"), min_qty=D("0.001"), min_notional=D("5"))


def quote(venue: str, levels: list[tuple[str, str]] | None, fee: str = "0.001",
          available: str | None = None) -> VenueQuote:
    return VenueQuote(venue, INST, None if levels is None else [(D(p), D(q)) for p, q in levels],
                      None, D(fee), D(available) if available is not None else None)


def test_a_buy_share_fits_the_balance_at_the_price_its_child_locks() -> None:
    """A limit buy child locks quantity x its limit price at the venue; the plan caps the
    share at the level's price: 1 at limit 110 needs 110 USDT, 100 are free."""
    p = plan(Side.BUY, D("2"), D("110"), [quote("b", [("100", "5")], fee="0",
                                                available="100")])
    (share,) = p.shares
    assert share.price is not None
    assert share.quantity * share.price <= D("100"), share


def test_the_rest_to_home_fits_the_balance_too() -> None:
    """1 taken at 90 (90 USDT), then 'the rest' at the limit 100 for what the balance (180)
    'pays for': 1.9 at limit 100 locks 190 > 180."""
    p = plan(Side.BUY, D("3"), D("100"), [quote("a", [("90", "1")], fee="0", available="180")])
    (share,) = p.shares
    assert share.price is not None
    assert share.quantity * share.price <= D("180"), share


def test_a_sell_share_meets_the_minimum_notional_at_its_child_price() -> None:
    """A sell at 50 or better into a bid of 100: the share (0.06) is checked against the 5
    USDT minimum at the bid (6 USDT) but sent as a limit at 50 (3 USDT): the venue refuses it
    (MIN_NOTIONAL) and is left out for the rest of the order."""
    p = plan(Side.SELL, D("0.06"), D("50"), [quote("a", [("100", "5")])])
    for s in p.shares:
        assert s.price is not None
        assert s.quantity * s.price >= INST.min_notional, s
