"""The smart order router's plan (gateway/routing/sor.py): where each part of an order goes."""

from __future__ import annotations

from decimal import Decimal as D

from connectors.base import Instrument, Side
from gateway.routing.sor import VenueQuote, child_price, plan

INST = Instrument("BTC/USDT", "BTCUSDT", "BTC", "USDT", tick_size=D("0.01"),
                  lot_size=D("0.001"), min_qty=D("0.001"), min_notional=D("5"))


def quote(venue: str, levels: list[tuple[str, str]] | None, fee: str = "0.001",
          last: str | None = None, available: str | None = None,
          inst: Instrument = INST) -> VenueQuote:
    return VenueQuote(venue, inst, None if levels is None else [(D(p), D(q)) for p, q in levels],
                      D(last) if last else None, D(fee),
                      D(available) if available is not None else None)


def shares(p: object) -> dict[str, D]:
    return {s.venue: s.quantity for s in p.shares}  # type: ignore[attr-defined]


def test_the_cheaper_venue_after_fees_takes_the_order() -> None:
    # a: 100.00 + 10 bp = 100.10; b: 100.05 + 1 bp = 100.06: b is cheaper
    p = plan(Side.BUY, D("2"), D("101"), [quote("a", [("100.00", "1")]),
                                          quote("b", [("100.05", "5")], fee="0.0001")])
    assert shares(p) == {"b": D("2")}
    assert p.unrouted == 0 and p.home == "b"


def test_an_order_larger_than_the_best_venue_is_split_and_the_rest_goes_home() -> None:
    p = plan(Side.BUY, D("7"), D("101"), [quote("a", [("100.00", "1"), ("102", "9")]),
                                          quote("b", [("100.05", "5")], fee="0.0001")])
    # b's 5, then a's 1 at 100.00 (100.10 after fees); a's 102 is beyond the limit: the
    # last 1 goes to the home venue (b, the best after fees)
    assert shares(p) == {"a": D("1"), "b": D("6")}
    by = {s.venue: s for s in p.shares}
    assert by["a"].expected_px == D("100.00") and by["b"].expected_px == D("100.05")
    assert by["a"].price == D("101") and "beyond the visible books" in by["b"].why


def test_a_sell_goes_to_the_best_bid_after_fees() -> None:
    p = plan(Side.SELL, D("1"), None, [quote("a", [("100.00", "3")], fee="0.0001"),
                                       quote("b", [("100.05", "3")], fee="0.001")])
    # a: 100.00 x 0.9999 = 99.99; b: 100.05 x 0.999 = 99.95: a receives more
    assert shares(p) == {"a": D("1")}
    assert p.shares[0].price is None  # a market order's children are market orders


def test_the_balance_at_a_venue_caps_its_share() -> None:
    # b has 200 USDT; a child there is a limit buy at 101, which locks 101 x 1.0001 a unit
    # (not the 100.05 it may fill at): 200 / 101.0101 = 1.98..: 1.980 on the lot grid
    p = plan(Side.BUY, D("3"), D("101"), [quote("a", [("100.10", "5")]),
                                          quote("b", [("100.05", "5")], fee="0.0001",
                                                available="200")])
    assert shares(p) == {"a": D("1.020"), "b": D("1.980")}
    assert p.unrouted == 0


def test_a_share_under_the_venue_minimum_goes_to_a_venue_that_takes_it() -> None:
    # a shows 0.01 at the best price: 0.01 x 99 = 0.99 USDT is under its 5 USDT minimum
    p = plan(Side.BUY, D("1"), D("101"), [quote("a", [("99", "0.01")]),
                                          quote("b", [("100", "5")])])
    # (a is home, the best price, but cannot take the 0.01 either: b takes it)
    assert shares(p) == {"b": D("1")} and p.home == "a"
    assert "a cannot take it" in p.shares[0].why


def test_without_books_the_last_price_chooses() -> None:
    p = plan(Side.BUY, D("1"), None, [quote("a", None, last="101"),
                                      quote("b", None, last="100")])
    assert shares(p) == {"b": D("1")} and p.home == "b"


def test_what_no_venue_can_pay_for_is_not_routed() -> None:
    p = plan(Side.BUY, D("2"), D("100"), [quote("a", [("100", "5")], available="100")])
    assert shares(p) == {"a": D("0.999")}
    assert p.unrouted == D("1.001")
    assert "not routed" in p.summary()


def test_child_prices_stay_within_the_limit_on_each_grid() -> None:
    assert child_price(D("100.015"), Side.BUY, D("0.01")) == D("100.01")
    assert child_price(D("100.015"), Side.SELL, D("0.01")) == D("100.02")
    coarse = Instrument("BTC/USDT", "X", "BTC", "USDT", tick_size=D("0.1"), lot_size=D("0.01"))
    p = plan(Side.BUY, D("1"), D("100.37"), [quote("a", [("100.3", "5")], inst=coarse)])
    assert p.shares[0].price == D("100.3")
