"""Every OKX payload the connector reads, parsed through the schemas and converted to our types.

Fixtures are the docs-v5 examples verbatim (www.okx.com/docs-v5/en/, snapshot of 2026-06) where
the docs have one: order_ack, batch_orders, cancel_ack, amend_ack (its missing comma restored),
cancel_all_after, order_details, orders_pending, fills, fills_history, balance, positions,
instruments_spot, time, tickers ("Market Data / Get tickers"), ws_login, ws_error (login
failure), ws_subscribe and ws_subscribe_error ("Order channel"), ws_orders_fill ("Order channel"
push), ws_account ("Account channel" push, its details trimmed to the fields shown). The docs
have no example for the others, which are composed from documented fields and the "Error Code"
messages: order_ack_failed (the data item of the "WS / Place order" 51008 failure example in a
REST envelope), batch_orders_partial, cancel_ack_failed, order_not_found, invalid_sign,
rate_limited, instruments_swap and positions_swap (field sets of the SPOT / MARGIN examples with
SWAP values), ws_orders_canceled and ws_orders_amended (the push example's fields).
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import msgspec

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
    assert inst.max_qty == Decimal("9999999999")


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
    assert ok.data[0].clOrdId == "oktswap6" and ok.data[0].subCode == ""
    failed_env = schemas.ACKS.decode(load("order_ack_failed.json"))
    failed = failed_env.data[0]
    assert failed_env.code == "1" and (failed.sCode, failed.subCode) == ("51008", "1000")
    assert failed.sMsg == "Order failed. Insufficient USDT balance in account"
    assert errors.reason_for(failed.sCode, failed.sMsg) is RejectReason.INSUFFICIENT_BALANCE
    assert errors.reason_for("51008_1000") is RejectReason.INSUFFICIENT_BALANCE
    batch = schemas.ACKS.decode(load("batch_orders.json"))
    assert batch.code == "0" and [a.ordId for a in batch.data] == ["12345689", "12344"]
    partial = schemas.ACKS.decode(load("batch_orders_partial.json"))
    assert partial.code == "2" and [a.sCode for a in partial.data] == ["0", "51016"]
    assert errors.reason_for(partial.data[1].sCode) is RejectReason.DUPLICATE_ORDER
    amend = schemas.ACKS.decode(load("amend_ack.json")).data[0]
    assert amend.reqId == "b12344" and amend.sCode == "0" and amend.ordId == "12344"
    cancelled = schemas.ACKS.decode(load("cancel_ack.json")).data[0]
    assert (cancelled.clOrdId, cancelled.sCode) == ("oktswap6", "0")
    cancel = schemas.ACKS.decode(load("cancel_ack_failed.json")).data[0]
    assert errors.reason_for(cancel.sCode) is RejectReason.UNKNOWN_ORDER


def test_cancel_all_after() -> None:
    ack = schemas.CANCEL_ALL_AFTER.decode(load("cancel_all_after.json")).data[0]
    assert (ack.triggerTime, ack.ts, ack.tag) == ("1587971460", "1587971400", "")


def test_order_details_and_not_found() -> None:
    o = schemas.ORDERS.decode(load("order_details.json")).data[0]
    st = o.to_state("BTC/USDT", None)
    assert st.status is VenueStatus.FILLED and st.side is Side.BUY
    assert st.filled_quantity == Decimal("0.00192834") and st.average_price == Decimal("51858")
    assert st.client_order_id == "" and st.updated_ns == 1708587373362 * 1_000_000
    # a market buy sized in USDT (tgtCcy quote_ccy, sz "100"): its base quantity is the fill
    assert st.quantity == Decimal("0.00192834")
    missing = schemas.ORDERS.decode(load("order_not_found.json"))
    assert missing.code == errors.ORDER_NOT_FOUND and missing.data == []


def test_orders_pending() -> None:
    o = schemas.ORDERS.decode(load("orders_pending.json")).data[0]
    assert (o.instId, o.ordType) == ("BTC-USDT", "post_only")
    st = o.to_state("BTC/USDT", None)
    assert st.status is VenueStatus.NEW and st.quantity == Decimal("0.001")
    assert st.price == Decimal("13013.5") and st.average_price is None
    swap = o.to_state("BTC/USDT:USDT", Decimal("0.01"))  # had it been 0.001 contracts
    assert swap.quantity == Decimal("0.00001")


def test_fills() -> None:
    f = schemas.FILLS.decode(load("fills.json")).data[0].to_fill(None)
    assert f.trade_id == "BTC-USDT:744876980:680800019749904384"
    assert f.fee == Decimal("0.00000192834") and f.fee_currency == "BTC"
    assert f.liquidity is Liquidity.TAKER and f.quantity == Decimal("0.00192834")
    assert f.ts_ns == 1708587373361 * 1_000_000
    older = schemas.FILLS.decode(load("fills_history.json")).data[0].to_fill(None)
    assert older.trade_id == f.trade_id and older.price == Decimal("51858")


def test_balance() -> None:
    acct = schemas.BALANCE.decode(load("balance.json")).data[0]
    b = acct.details[0].to_balance()
    assert (b.asset, b.free, b.locked) == ("USDT", Decimal("4834.317093622894"),
                                           Decimal("158.573"))


def test_positions() -> None:
    margin = schemas.POSITIONS.decode(load("positions.json")).data[0]
    assert (margin.instType, margin.instId) == ("MARGIN", "BTC-USDT")  # ignored: not a SWAP
    p = schemas.POSITIONS.decode(load("positions_swap.json")).data[0]
    pos = p.to_position("BTC/USDT:USDT", Decimal("0.01"))
    assert pos.quantity == Decimal("-1.5") and pos.entry_price == Decimal("2566.31")


def test_ws_events() -> None:
    login = schemas.WS_EVENT.decode(load("ws_login.json"))
    assert (login.event, login.code) == ("login", "0")
    assert login.connId == "a4d3ae55"
    sub = schemas.WS_EVENT.decode(load("ws_subscribe.json"))
    assert sub.event == "subscribe" and sub.arg is not None and sub.arg.channel == "orders"
    assert (sub.arg.instType, sub.arg.instId) == ("FUTURES", "BTC-USD-200329")
    err = schemas.WS_EVENT.decode(load("ws_error.json"))
    assert (err.event, err.code, err.msg) == ("error", "60009", "Login failed.")
    refused = schemas.WS_EVENT.decode(load("ws_subscribe_error.json"))
    assert (refused.event, refused.code) == ("error", "60012")
    assert refused.msg.startswith("Invalid request: ")


def test_ws_order_fill() -> None:
    push = schemas.WS_ORDERS.decode(load("ws_orders_fill.json"))
    o = push.data[0]
    assert (push.arg.channel, push.arg.instType, push.arg.uid) == ("orders", "SPOT",
                                                                    "614488474791936")
    fill = o.fill(None)
    assert fill is not None and fill.trade_id == "BTC-USDT:242589207:452197707845865472"
    assert fill.quantity == Decimal("0.001") and fill.price == Decimal("31527.1")
    assert fill.fee == Decimal("0.02522168") and fill.fee_currency == "USDT"
    assert fill.liquidity is Liquidity.MAKER and fill.ts_ns == 1654084353263 * 1_000_000
    assert o.state == "filled" and o.accFillSz == "0.001" and o.clOrdId == ""


def test_ws_order_canceled_and_amended() -> None:
    c = schemas.WS_ORDERS.decode(load("ws_orders_canceled.json")).data[0]
    assert c.state == "canceled" and c.fill(None) is None and c.cancelSource == "20"
    a = schemas.WS_ORDERS.decode(load("ws_orders_amended.json")).data[0]
    assert a.amendResult == "0" and schemas.base_qty(a.sz, Decimal("0.01")) == Decimal("0.03")


def test_error_bodies() -> None:
    rl = schemas.ACKS.decode(load("rate_limited.json"))
    assert rl.code == errors.RATE_LIMIT and rl.data == []
    bad = schemas.ACKS.decode(load("invalid_sign.json"))
    assert bad.code == errors.INVALID_SIGN and bad.msg == errors.MESSAGES[errors.INVALID_SIGN]


def test_tickers() -> None:
    env = schemas.TICKERS.decode(load("tickers.json"))
    t = env.data[0]
    assert (t.instType, t.instId) == ("SWAP", "LTC-USD-SWAP")
    assert (t.bidPx, t.askPx, t.lastSz) == ("8888.88", "9999.99", "1")
    last = t.to_last_price()
    assert last == schemas.LastPrice(Decimal("9999.99"), 1597026383085 * 1_000_000)
    assert isinstance(last.price, Decimal)
    # nothing traded yet: the mid of the best bid and ask, or nothing at all
    untraded = msgspec.structs.replace(t, last="")
    mid = untraded.to_last_price()
    assert mid is not None and mid.price == (Decimal("8888.88") + Decimal("9999.99")) / 2
    assert msgspec.structs.replace(untraded, bidPx="").to_last_price() is None


def test_account_channel_push() -> None:
    """"Trading Account / WebSocket / Account channel": availBal free, frozenBal locked, the
    currency's uTime."""
    push = schemas.WS_PUSH.decode(load("ws_account.json"))
    assert (push.arg.channel, push.eventType) == ("account", "snapshot")
    (acct,) = schemas.WS_ACCOUNT_DATA.decode(push.data)
    (u,) = [d.to_update(0) for d in acct.details]
    assert (u.asset, u.free, u.locked, u.ts_ns) == (
        "USDT", Decimal("4734.371190691436"), Decimal("158.57998"), 1705564213903 * 1_000_000)
