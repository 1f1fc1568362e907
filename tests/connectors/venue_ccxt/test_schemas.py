"""Recorded ccxt unified structures (fixtures/*.json: ccxt 4.5's binance parsers run over the
payloads of the Binance Spot API docs) through the connector's schemas."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from connectors.base import InstrumentKind, Liquidity, Side, VenueStatus
from connectors.ccxt.schemas import (
    BALANCE,
    DECIMAL_PLACES,
    MARKET,
    ORDER,
    POSITION,
    SIGNIFICANT_DIGITS,
    TICK_SIZE,
    TRADE,
    precision_step,
)

FIXTURES = Path(__file__).parent / "fixtures"


def load(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def test_market_to_instrument() -> None:
    m = MARKET.decode(load("market_spot.json"))
    inst = m.to_instrument(TICK_SIZE)
    assert inst.symbol == "BTC/USDT" and inst.venue_symbol == "BTCUSDT"
    assert inst.kind is InstrumentKind.SPOT and inst.settle is None
    assert inst.tick_size == Decimal("0.01") and inst.lot_size == Decimal("0.00001")
    assert inst.min_qty == Decimal("0.00001") and inst.min_notional == Decimal("5")
    assert inst.max_qty == Decimal("9000")


def test_precision_modes() -> None:
    assert precision_step(Decimal("0.5"), TICK_SIZE) == Decimal("0.5")
    assert precision_step(Decimal("2"), DECIMAL_PLACES) == Decimal("0.01")
    assert precision_step(Decimal("0"), DECIMAL_PLACES) == Decimal("1")
    assert precision_step(Decimal("5"), SIGNIFICANT_DIGITS) is None
    m = MARKET.convert({"id": "X", "symbol": "A/B", "base": "A", "quote": "B", "spot": True,
                        "precision": {"amount": 3, "price": 5},
                        "limits": {"price": {"min": 1e-05}, "amount": {"min": 0.001}}})
    assert m.to_instrument(DECIMAL_PLACES).tick_size == Decimal("0.00001")
    assert m.to_instrument(DECIMAL_PLACES).lot_size == Decimal("0.001")
    sig = m.to_instrument(SIGNIFICANT_DIGITS)  # falls back to the limits
    assert sig.tick_size == Decimal("0.00001") and sig.lot_size == Decimal("0.001")


def test_order_new() -> None:
    st = ORDER.decode(load("order_new.json")).to_state()
    assert st.client_order_id == "fgw6gAe7Xv1" and st.venue_order_id == "28"
    assert st.symbol == "BTC/USDT" and st.side is Side.BUY and st.status is VenueStatus.NEW
    assert st.quantity == Decimal("0.01") and st.filled_quantity == 0
    assert st.price == Decimal("97000") and st.updated_ns == 1507725176595 * 1_000_000


def test_order_partially_filled() -> None:
    st = ORDER.decode(load("order_partially_filled.json")).to_state()
    assert st.status is VenueStatus.PARTIALLY_FILLED
    assert st.filled_quantity == Decimal("0.004") and st.average_price == Decimal("97000")


def test_order_canceled_keeps_filled() -> None:
    order = ORDER.decode(load("order_canceled.json"))
    st = order.to_state()
    assert st.status is VenueStatus.CANCELED and st.filled_quantity == Decimal("0.004")
    assert isinstance(order.filled, Decimal)


def test_trade_to_fill() -> None:
    f = TRADE.decode(load("trade.json")).to_fill("fgw6gAe7Xv1")
    assert f.trade_id == "28457" and f.venue_order_id == "28"
    assert f.quantity == Decimal("0.004") and f.price == Decimal("97000")
    assert f.fee == Decimal("0.000004") and f.fee_currency == "BTC"
    assert f.liquidity is Liquidity.MAKER and f.ts_ns == 1499865549590 * 1_000_000


def test_balance() -> None:
    bals = {b.asset: b for b in BALANCE.decode(load("balance.json")).to_balances()}
    assert bals["BTC"].free == Decimal("4723846.89208129") and bals["BTC"].locked == 0
    assert bals["LTC"].locked == Decimal("1.5") and bals["LTC"].total == Decimal("4763370.18006011")


def test_no_float_reaches_our_types() -> None:
    order = ORDER.convert({"id": "1", "amount": 0.1, "filled": 0.30000000000000004,
                           "price": 97000.1, "status": "open", "side": "sell"})
    st = order.to_state("c", "BTC/USDT")
    for v in (st.quantity, st.filled_quantity, st.price):
        assert isinstance(v, Decimal)
    assert st.quantity == Decimal("0.1") and st.price == Decimal("97000.1")


def test_position_signed() -> None:
    p = POSITION.convert({"symbol": "BTC/USDT:USDT", "contracts": 0.5, "contractSize": 1.0,
                          "side": "short", "entryPrice": 97000.5}).to_position()
    assert p.quantity == Decimal("-0.5") and p.entry_price == Decimal("97000.5")
