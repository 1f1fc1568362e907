"""Signing (fixed vectors) and the recorded Bybit payloads through the msgspec schemas."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from connectors.base import (
    InstrumentKind,
    Liquidity,
    OrderAccepted,
    RejectReason,
    Side,
    VenueStatus,
)
from connectors.bybit import errors, schemas
from connectors.bybit.limits import PER_SECOND, window_name
from connectors.bybit.signing import rest_headers, rest_origin, sign_rest, sign_ws_auth

FIXTURES = Path(__file__).parent / "fixtures"


def load(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


# Bybit's "Integration Guidance / Create A Request" page (docs/v5/guide.mdx) gives the string to
# sign for a GET and a POST example and a "resulting example signature", but not the secret that
# produced it, so only the origin strings can be checked against the docs. The expected HMACs
# below were computed independently with
# `printf '%s' '<origin>' | openssl dgst -sha256 -hmac YYYYYYYYYY`.
def test_rest_origin_matches_the_docs_examples() -> None:
    assert rest_origin(1658384314791, "XXXXXXXXXX", 5000,
                       "category=option&symbol=BTC-29JUL22-25000-C") == (
        "1658384314791XXXXXXXXXX5000category=option&symbol=BTC-29JUL22-25000-C")
    assert rest_origin(1658385579423, "XXXXXXXXXX", 5000, '{"category": "option"}') == (
        '1658385579423XXXXXXXXXX5000{"category": "option"}')


def test_rest_signature_get() -> None:
    sig = sign_rest("YYYYYYYYYY", 1658384314791, "XXXXXXXXXX", 5000,
                    "category=option&symbol=BTC-29JUL22-25000-C")
    assert sig == "37813c67fafb3017e92354eb88f218e7e52a98f9f5eb74cfcf0b21f17edb143b"


def test_rest_signature_post_signs_the_raw_body() -> None:
    sig = sign_rest("YYYYYYYYYY", 1658385579423, "XXXXXXXXXX", 5000, '{"category": "option"}')
    assert sig == "4cbc693a498014a4d2c81ae4b7e33a28715cd1b6eec43163dc9b15acfa3c8763"


def test_ws_auth_signature() -> None:
    # "GET/realtime" + expires (WebSocket Connect / Authentication)
    assert sign_ws_auth("YYYYYYYYYY", 1662350400000) == (
        "9c4c0629fddfee26ca0da50a7fed51968fce6935d34b02e772d3bd0c34327bd1")


def test_headers() -> None:
    h = rest_headers("XXXXXXXXXX", "YYYYYYYYYY", 1658384314791, 5000,
                     "category=option&symbol=BTC-29JUL22-25000-C")
    assert h["X-BAPI-API-KEY"] == "XXXXXXXXXX"
    assert h["X-BAPI-TIMESTAMP"] == "1658384314791"
    assert h["X-BAPI-RECV-WINDOW"] == "5000"
    assert h["X-BAPI-SIGN-TYPE"] == "2"
    assert h["X-BAPI-SIGN"].startswith("37813c67")


def test_server_time() -> None:
    env = schemas.SERVER_TIME.decode(load("rest_server_time.json"))
    assert env.retCode == 0
    assert env.result.to_ns() == 1688639403423213947


def test_instruments_spot() -> None:
    env = schemas.INSTRUMENTS.decode(load("rest_instruments_spot.json"))
    inst = env.result.list[0].to_instrument("spot")
    assert inst.symbol == "BTC/USDT" and inst.venue_symbol == "BTCUSDT"
    assert inst.kind is InstrumentKind.SPOT
    assert inst.tick_size == Decimal("0.1") and inst.lot_size == Decimal("0.000001")
    # minOrderQty is deprecated for spot ("no longer check minOrderQty, check minOrderAmt")
    assert inst.min_qty == Decimal("0.000001") and inst.min_notional == Decimal("5")
    assert inst.max_qty == Decimal("83")  # maxLimitOrderQty


def test_instruments_linear() -> None:
    env = schemas.INSTRUMENTS.decode(load("rest_instruments_linear.json"))
    inst = env.result.list[0].to_instrument("linear")
    assert inst.symbol == "BTC/USDT:USDT" and inst.kind is InstrumentKind.PERPETUAL
    assert inst.settle == "USDT" and inst.tick_size == Decimal("0.10")
    assert inst.lot_size == Decimal("0.001") and inst.min_notional == Decimal("5")
    assert inst.min_qty == Decimal("0.001") and inst.max_qty == Decimal("1190.000")


def test_order_create() -> None:
    env = schemas.ORDER_IDS.decode(load("rest_order_create.json"))
    assert env.result.orderId == "1321003749386327552"
    assert env.result.orderLinkId == "spot-test-postonly"


def test_order_amend_and_cancel() -> None:
    for name in ("rest_order_amend.json", "rest_order_cancel.json"):
        env = schemas.ORDER_IDS.decode(load(name))
        assert env.result.orderId == "c6f055d9-7f21-4079-913d-e6523a9cfffa"
        assert env.result.orderLinkId == "linear-004"


def test_order_history_post_only_cancelled() -> None:
    # The docs' Get Order History example: a PostOnly order that would have taken liquidity is
    # Cancelled with rejectReason EC_PostOnlyWillTakeLiquidity.
    env = schemas.ORDERS.decode(load("rest_order_history.json"))
    order = env.result.list[0]
    assert order.status is VenueStatus.CANCELED
    assert order.rejectReason == errors.POST_ONLY_WOULD_TAKE
    assert order.timeInForce == "PostOnly"


def test_dcp_answer_has_no_result() -> None:
    head = schemas.HEAD.decode(load("rest_dcp.json"))
    assert head.retCode == 0 and head.retMsg == "success"


def test_order_realtime() -> None:
    env = schemas.ORDERS.decode(load("rest_order_realtime.json"))
    assert env.result.nextPageCursor
    state = env.result.list[0].to_state("ETH/USDT:USDT")
    assert state.client_order_id == "test-000005" and state.side is Side.BUY
    assert state.status is VenueStatus.NEW and state.quantity == Decimal("0.10")
    assert state.price == Decimal("1600.00") and state.average_price is None
    assert state.updated_ns == 1684738540561 * 1_000_000


def test_execution_list() -> None:
    env = schemas.EXECUTIONS.decode(load("rest_execution_list.json"))
    fill = env.result.list[0].to_fill("USDT")
    assert fill.trade_id == "e0cbe81d-0f18-5866-9415-cf319b5dab3b"
    assert fill.quantity == Decimal("0.1") and fill.price == Decimal("1190.15")
    assert fill.fee == Decimal("0.071409") and fill.fee_currency == "USDT"
    assert fill.liquidity is Liquidity.TAKER and fill.ts_ns == 1672282722429 * 1_000_000


def test_wallet_balance() -> None:
    env = schemas.WALLET.decode(load("rest_wallet_balance.json"))
    bal = {b.asset: b for c in env.result.list for b in (x.to_balance() for x in c.coin)}
    assert bal["BTC"].total == 0 and bal["BTC"].locked == 0


def test_wallet_coin_locked_is_held() -> None:
    coin = schemas.WalletCoin(coin="USDT", walletBalance="1000.5", locked="200.5",
                              totalOrderIM="0", totalPositionIM="0")
    bal = coin.to_balance()
    assert bal.free == Decimal("800.0") and bal.locked == Decimal("200.5")


def test_wallet_topic() -> None:
    """docs/v5/websocket/private/wallet "Stream Example" (two of its coins): read as the REST
    wallet balance is, held = locked + totalOrderIM + totalPositionIM, at creationTime."""
    raw = load("ws_wallet.json")
    assert schemas.WS_PROBE.decode(raw).topic == "wallet"
    push = schemas.WS_WALLET.decode(raw)
    ups = {u.asset: u for a in push.data for u in (c.to_update(push.creationTime * 1_000_000)
                                                   for c in a.coin)}
    assert (ups["BTC"].free, ups["BTC"].locked) == (Decimal("0.06488393"), 0)
    assert (ups["USDT"].free, ups["USDT"].locked) == (Decimal("11725.81825829"),
                                                      Decimal("2.72589075"))
    assert ups["USDT"].ts_ns == 1672364262482 * 1_000_000


def test_position_list() -> None:
    env = schemas.POSITIONS.decode(load("rest_position_list.json"))
    pos = env.result.list[0].to_position("BTC/USD:BTC")
    assert pos.quantity == Decimal("-300") and pos.entry_price == Decimal("27464.50441675")


def test_cancel_all() -> None:
    env = schemas.CANCEL_ALL.decode(load("rest_cancel_all.json"))
    assert len(env.result.list) == 2 and env.result.success == "1"


@pytest.mark.parametrize(("name", "code", "reason"), [
    ("rest_error_too_many_visits.json", 10006, RejectReason.RATE_LIMIT),
    ("rest_error_sign.json", 10004, RejectReason.OTHER),
    ("rest_error_duplicate.json", 110072, RejectReason.DUPLICATE_ORDER),
])
def test_errors(name: str, code: int, reason: RejectReason) -> None:
    head = schemas.HEAD.decode(load(name))
    assert head.retCode == code
    assert errors.reason_for(head.retCode, head.retMsg) is reason


def test_rate_limit_table() -> None:
    # docs/v5/rate-limit/rate-limit.mdx, "Trade" table (1/s cancel-all is the option column)
    assert PER_SECOND[window_name("/v5/order/create", "linear") or ""] == 10
    assert PER_SECOND[window_name("/v5/order/create", "spot") or ""] == 20
    assert PER_SECOND[window_name("/v5/order/cancel-all", "linear") or ""] == 10
    assert PER_SECOND[window_name("/v5/order/cancel-all", "spot") or ""] == 20
    assert PER_SECOND[window_name("/v5/order/disconnected-cancel-all", None) or ""] == 5


def test_auth_failure_is_not_ambiguous() -> None:
    assert 10007 not in errors.AMBIGUOUS  # "User authentication failed."
    assert errors.reason_for(170381, "") is RejectReason.LOT_FILTER
    assert errors.reason_for(170222, "") is RejectReason.RATE_LIMIT


def test_reason_mapping() -> None:
    assert errors.reason_for(170131, "") is RejectReason.INSUFFICIENT_BALANCE
    assert errors.reason_for(110007, "") is RejectReason.INSUFFICIENT_BALANCE
    assert errors.reason_for(170140, "") is RejectReason.MIN_NOTIONAL
    assert errors.reason_for(110094, "") is RejectReason.MIN_NOTIONAL
    assert errors.reason_for(170141, "") is RejectReason.DUPLICATE_ORDER
    assert errors.reason_for(170213, "") is RejectReason.UNKNOWN_ORDER
    assert errors.reason_for(10001, "params error: qty invalid") is RejectReason.LOT_FILTER


def test_ws_replies() -> None:
    auth = schemas.WS_OP.decode(load("ws_auth_reply.json"))
    assert auth.op == "auth" and auth.success
    assert schemas.WS_OP.decode(load("ws_subscribe_reply.json")).op == "subscribe"
    pong = schemas.WS_OP.decode(load("ws_pong.json"))
    assert pong.op == "pong" and pong.args == ["1675418560633"]


def test_ws_order() -> None:
    raw = load("ws_order.json")
    assert schemas.WS_PROBE.decode(raw).topic == "order"
    order = schemas.WS_ORDER.decode(raw).data[0]
    assert order.status is VenueStatus.FILLED and order.cumExecQty == "1"
    state = order.to_state("ETH-30DEC22-1400-C")
    assert state.average_price == Decimal("75") and state.side is Side.SELL


def test_ws_order_to_events() -> None:
    from connectors.bybit.connector import BybitConnector
    from connectors.common.credentials import Credentials
    from connectors.common.settings import VenueSettings

    conn = BybitConnector(VenueSettings("bybit", Credentials("k", "s")))
    order = schemas.WS_ORDER.decode(load("ws_order.json")).data[0]
    events = conn.order_events(order)
    assert isinstance(events[0], OrderAccepted)
    assert events[0].venue_order_id == "5cf98598-39a7-459e-97bf-76ca765ee020"


def test_ws_execution() -> None:
    raw = load("ws_execution.json")
    assert schemas.WS_PROBE.decode(raw).topic == "execution"
    ex = schemas.WS_EXECUTION.decode(raw).data[0]
    fill = ex.to_fill(None)
    assert fill.trade_id == "0ab1bdf7-4219-438b-b30a-32ec863018f7"
    assert fill.fee == Decimal("26.3725275") and fill.fee_currency == "USDT"
    assert fill.quantity == Decimal("0.5") and fill.liquidity is Liquidity.TAKER


def test_batch_place() -> None:
    # docs/v5/order/batch-place.mdx, "Response Example": result.list and retExtInfo.list answer
    # the orders of the request by position.
    env = schemas.BATCH.decode(load("rest_batch_place.json"))
    outcomes = env.outcomes(2)
    assert [(item.orderLinkId if item else None, code) for item, code, _ in outcomes] == [
        ("spot-btc-03", 0), ("spot-atom-03", 0)]
    item = outcomes[0][0]
    assert item is not None and item.orderId == "1666800494330512128"
    assert item.createAt == "1713434102752" and item.category == "spot"


def test_batch_cancel_with_a_per_order_failure() -> None:
    # docs/v5/order/batch-cancel.mdx, "Response Example": the second order does not exist.
    env = schemas.BATCH.decode(load("rest_batch_cancel.json"))
    (ok, ok_code, _), (bad, bad_code, bad_msg) = env.outcomes(2)
    assert ok is not None and ok.orderId == "1666800494330512128" and ok_code == 0
    assert bad is not None and bad.orderId == "" and bad.orderLinkId == "1666800494330512129"
    assert bad_code == 170213 and bad_msg == "Order does not exist."
    assert errors.reason_for(bad_code, bad_msg) is RejectReason.UNKNOWN_ORDER


def test_batch_outcomes_of_a_short_answer() -> None:
    env = schemas.BATCH.decode(b'{"retCode":0,"retMsg":"OK","result":{"list":[{"orderId":"1",'
                               b'"orderLinkId":"a"}]},"retExtInfo":{},"time":1}')
    (_, code_a, _), (item_b, code_b, _) = env.outcomes(2)
    assert code_a == 0 and item_b is None and code_b == -1


def test_batch_rate_limit_table() -> None:
    # docs/v5/rate-limit/rate-limit.mdx, "Trade" table; batch-place.mdx: 10 orders per request
    from connectors.bybit.limits import BATCH_MAX
    assert BATCH_MAX == 10
    assert PER_SECOND[window_name("/v5/order/create-batch", "linear") or ""] == 10
    assert PER_SECOND[window_name("/v5/order/create-batch", "spot") or ""] == 20
    assert PER_SECOND[window_name("/v5/order/cancel-batch", "spot") or ""] == 20
