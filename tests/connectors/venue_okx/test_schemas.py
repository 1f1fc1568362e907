"""Every OKX payload the connector reads, recorded as documented (docs-v5 response examples),
parsed through the schemas and converted to our types."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from connectors.base import InstrumentKind, Liquidity, RejectReason, Side, VenueStatus
from connectors.okx import errors, schemas

FIXTURES = Path(__file__).parent / "fixtures"


def load(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def test_server_time() -> None:
    env = schemas.TIME.decode(load("time.json"))
    assert env.code == "0" and env.data[0].ts == "1597026383085"


def test_spot_instrument() -> None:
    info = schemas.INSTRUMENTS.decode(load("instruments_spot.json")).data[0]
    inst = info.to_instrument()
    assert inst is not None and info.ct_val is None
    assert (inst.symbol, inst.venue_symbol, inst.kind) == ("BTC/USDT", "BTC-USDT",
                                                           InstrumentKind.SPOT)
    assert inst.tick_size == Decimal("0.1") and inst.lot_size == Decimal("0.00000001")
    assert inst.min_qty == Decimal("0.00001") and inst.min_notional == 0


def test_swap_instrument_in_base_units() -> None:
    info = schemas.INSTRUMENTS.decode(load("instruments_swap.json")).data[0]
    inst = info.to_instrument()
    assert inst is not None and info.ct_val == Decimal("0.01")
    assert (inst.symbol, inst.venue_symbol, inst.settle) == ("BTC/USDT:USDT", "BTC-USDT-SWAP",
                                                             "USDT")
    assert inst.kind is InstrumentKind.PERPETUAL
    assert inst.lot_size == Decimal("0.0001") and inst.min_qty == Decimal("0.0001")
    assert inst.max_qty == Decimal("1000000")


def test_order_acks() -> None:
    ok = schemas.ACKS.decode(load("order_ack.json"))
    assert ok.code == "0" and ok.data[0].sCode == "0"
    assert ok.data[0].ordId == "312269865356374016"
    failed = schemas.ACKS.decode(load("order_ack_failed.json")).data[0]
    assert errors.reason_for(failed.sCode, failed.sMsg) is RejectReason.INSUFFICIENT_BALANCE
    batch = schemas.ACKS.decode(load("batch_orders.json"))
    assert batch.code == "2" and [a.sCode for a in batch.data] == ["0", "51016"]
    assert errors.reason_for(batch.data[1].sCode) is RejectReason.DUPLICATE_ORDER
    amend = schemas.ACKS.decode(load("amend_ack.json")).data[0]
    assert amend.reqId == "b12344" and amend.sCode == "0"
    cancel = schemas.ACKS.decode(load("cancel_ack_failed.json")).data[0]
    assert errors.reason_for(cancel.sCode) is RejectReason.UNKNOWN_ORDER


def test_cancel_all_after() -> None:
    ack = schemas.CANCEL_ALL_AFTER.decode(load("cancel_all_after.json")).data[0]
    assert ack.triggerTime == "1587971460000"


def test_order_details_and_not_found() -> None:
    o = schemas.ORDERS.decode(load("order_details.json")).data[0]
    st = o.to_state("BTC/USDT", None)
    assert st.status is VenueStatus.FILLED and st.side is Side.BUY
    assert st.filled_quantity == Decimal("0.00192834") and st.average_price == Decimal("51858")
    assert st.client_order_id == "fgw7" and st.updated_ns == 1708587373362 * 1_000_000
    missing = schemas.ORDERS.decode(load("order_not_found.json"))
    assert missing.code == errors.ORDER_NOT_FOUND and missing.data == []


def test_orders_pending_swap_in_base_units() -> None:
    o = schemas.ORDERS.decode(load("orders_pending.json")).data[0]
    st = o.to_state("BTC/USDT:USDT", Decimal("0.01"))
    assert st.status is VenueStatus.NEW and st.quantity == Decimal("0.02")
    assert st.price == Decimal("13013.5") and st.average_price is None


def test_fills() -> None:
    f = schemas.FILLS.decode(load("fills.json")).data[0].to_fill(None)
    assert f.trade_id == "BTC-USDT:744876980:680800019749904384"
    assert f.fee == Decimal("0.00000192834") and f.fee_currency == "BTC"
    assert f.liquidity is Liquidity.TAKER and f.quantity == Decimal("0.00192834")
    assert f.ts_ns == 1708587373361 * 1_000_000


def test_balance() -> None:
    acct = schemas.BALANCE.decode(load("balance.json")).data[0]
    b = acct.details[0].to_balance()
    assert (b.asset, b.free, b.locked) == ("USDT", Decimal("4834.317093622894"),
                                           Decimal("158.573"))


def test_positions() -> None:
    p = schemas.POSITIONS.decode(load("positions.json")).data[0]
    pos = p.to_position("BTC/USDT:USDT", Decimal("0.01"))
    assert pos.quantity == Decimal("-1.5") and pos.entry_price == Decimal("2566.31")


def test_ws_events() -> None:
    login = schemas.WS_EVENT.decode(load("ws_login.json"))
    assert (login.event, login.code) == ("login", "0")
    sub = schemas.WS_EVENT.decode(load("ws_subscribe.json"))
    assert sub.arg is not None and sub.arg.channel == "orders" and sub.arg.instType == "ANY"
    err = schemas.WS_EVENT.decode(load("ws_error.json"))
    assert (err.event, err.code) == ("error", "60009")


def test_ws_order_fill() -> None:
    push = schemas.WS_ORDERS.decode(load("ws_orders_fill.json"))
    o = push.data[0]
    fill = o.fill(None)
    assert fill is not None and fill.trade_id == "BTC-USDT:242589207:452197707845865472"
    assert fill.quantity == Decimal("0.001") and fill.price == Decimal("31527.1")
    assert fill.fee == Decimal("0.02522168") and fill.liquidity is Liquidity.MAKER
    assert o.state == "partially_filled"


def test_ws_order_canceled_and_amended() -> None:
    c = schemas.WS_ORDERS.decode(load("ws_orders_canceled.json")).data[0]
    assert c.state == "canceled" and c.fill(None) is None and c.cancelSource == "20"
    a = schemas.WS_ORDERS.decode(load("ws_orders_amended.json")).data[0]
    assert a.amendResult == "0" and schemas.base_qty(a.sz, Decimal("0.01")) == Decimal("0.03")


def test_error_bodies() -> None:
    rl = schemas.ACKS.decode(load("rate_limited.json"))
    assert rl.code == errors.RATE_LIMIT and rl.data == []
    bad = schemas.ACKS.decode(load("invalid_sign.json"))
    assert bad.code == errors.INVALID_SIGN
