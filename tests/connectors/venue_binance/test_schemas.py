"""Every Binance message type the connector reads, from a recorded fixture (the payloads of the
Spot REST API, WebSocket API and User Data Stream documentation), through its schema."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import msgspec

from connectors.base import (
    InstrumentKind,
    Liquidity,
    OrderAccepted,
    OrderCanceled,
    OrderFilled,
    RejectReason,
    Side,
    VenueStatus,
)
from connectors.binance import errors as E
from connectors.binance import schemas as S
from connectors.common.ratelimit import WindowSpec

FIXTURES = Path(__file__).parent / "fixtures"
D = Decimal


def load(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def test_rate_limit_order() -> None:
    """GET /api/v3/rateLimit/order ("Query Unfilled Order Count", the docs' example)."""
    counts = S.ORDER_COUNTS.decode(load("rest_rate_limit_order.json"))
    assert [(c.to_window(), c.count) for c in counts] == [
        (("orders", WindowSpec("orders_10s", 50, 10.0), "x-mbx-order-count-10s"), 0),
        (("orders", WindowSpec("orders_1d", 160_000, 86_400.0), "x-mbx-order-count-1d"), 0),
    ]


def test_server_time_and_error() -> None:
    assert S.SERVER_TIME.decode(load("rest_server_time.json")).serverTime == 1499827319559
    err = S.ERROR.decode(load("rest_error.json"))
    assert E.reject_reason(err.code, err.msg) is RejectReason.UNKNOWN_SYMBOL


def test_exchange_info() -> None:
    info = S.EXCHANGE_INFO.decode(load("rest_exchange_info.json"))
    assert info.rateLimits[0].limit == 6000
    windows = [rl.to_window() for rl in info.rateLimits]
    assert windows == [
        ("weight", WindowSpec("weight", 6000, 60.0), "x-mbx-used-weight-1m"),
        ("orders", WindowSpec("orders_10s", 100, 10.0), "x-mbx-order-count-10s"),
        ("orders", WindowSpec("orders_1d", 200_000, 86_400.0), "x-mbx-order-count-1d"),
        ("raw", WindowSpec("raw_5m", 61000, 300.0), None),
    ]
    [inst] = info.to_instruments()  # the BREAK symbol is left out
    assert (inst.symbol, inst.venue_symbol, inst.kind) == ("ETH/BTC", "ETHBTC",
                                                           InstrumentKind.SPOT)
    assert (inst.tick_size, inst.lot_size, inst.min_qty) == (D("0.000001"), D("0.001"),
                                                             D("0.001"))
    assert inst.min_notional == D("0.0001") and inst.max_qty == D("100000")


def test_new_order_responses() -> None:
    ack = S.ORDER.decode(load("rest_order_ack.json"))
    assert ack.to_accepted() == OrderAccepted("6gCrw2kRUAF9CvJDGP16IP", "28",
                                              1507725176595 * 1_000_000)
    result = S.ORDER.decode(load("rest_order_result.json")).to_state("BTC/USDT")
    assert (result.status, result.side, result.filled_quantity) == (
        VenueStatus.FILLED, Side.SELL, D("10"))
    full = S.ORDER.decode(load("rest_order_full.json"))
    assert [f.tradeId for f in full.fills] == [56, 57]


def test_cancel_and_query() -> None:
    cancel = S.ORDER.decode(load("rest_cancel_order.json"))
    assert cancel.order_client_id == "myOrder1" and cancel.status == "CANCELED"
    state = S.ORDER.decode(load("rest_query_order.json")).to_state("LTC/BTC")
    assert (state.client_order_id, state.venue_order_id, state.status) == (
        "myOrder1", "1", VenueStatus.NEW)
    assert state.price == D("0.1") and state.average_price is None
    carried = S.ORDER.decode(load("rest_query_order.json")).to_state("LTC/BTC", D("0.5"))
    assert (carried.quantity, carried.filled_quantity) == (D("1.5"), D("0.5"))


def test_cancel_replace_answers() -> None:
    ok = S.CANCEL_REPLACE.decode(load("rest_cancel_replace.json"))
    assert S.ORDER.decode(ok.newOrderResponse).orderId == 10
    assert S.ORDER.decode(ok.cancelResponse).order_client_id == "DnLo3vTAQcjha43lAZhZ0y"
    partial = S.CANCEL_REPLACE_ERROR.decode(load("rest_cancel_replace_partial.json"))
    assert partial.code == E.CANCEL_REPLACE_PARTIAL and partial.data is not None
    sub = S.ERROR.decode(partial.data.newOrderResponse)
    assert E.reject_reason(sub.code, sub.msg) is RejectReason.POST_ONLY_WOULD_TAKE
    failed = S.CANCEL_REPLACE_ERROR.decode(load("rest_cancel_replace_failed.json"))
    assert failed.data is not None and not S.present(failed.data.newOrderResponse)
    sub = S.ERROR.decode(failed.data.cancelResponse)
    assert E.reject_reason(sub.code, sub.msg) is RejectReason.UNKNOWN_ORDER


def test_my_trades_account_ticker() -> None:
    [trade] = S.MY_TRADES.decode(load("rest_my_trades.json"))
    fill = trade.to_fill("coid1")
    assert fill.trade_id == "BNBBTC:28457" and fill.liquidity is Liquidity.TAKER
    assert (fill.quantity, fill.price, fill.fee, fill.fee_currency) == (
        D("12"), D("4.000001"), D("10.1"), "BNB")
    balances = S.ACCOUNT.decode(load("rest_account.json")).to_balances()
    assert balances[0].asset == "BTC" and balances[0].free == D("4723846.89208129")
    prices = S.TICKER_PRICES.decode(load("rest_ticker_price.json"))
    assert prices[0].price == "4.00000200"


def test_ws_responses() -> None:
    ok = S.WS_RESPONSE.decode(load("ws_subscribe_response.json"))
    assert ok.status == 200 and ok.error is None and S.present(ok.result)
    bad = S.WS_RESPONSE.decode(load("ws_error_response.json"))
    assert bad.error is not None and E.reject_reason(bad.error.code, bad.error.msg) is (
        RejectReason.INSUFFICIENT_BALANCE)
    assert bad.rateLimits[1].count == 322
    frame = S.WS_FRAME.decode(load("ws_subscribe_response.json"))
    assert not S.present(frame.event)


def _event(name: str) -> S.UserEvent:
    frame = S.WS_FRAME.decode(load(name))
    assert S.present(frame.event)
    env = S.USER_EVENT_ENVELOPE.decode(load(name))
    assert env.subscriptionId == 0
    event: S.UserEvent = S.USER_EVENT.decode(frame.event)
    return event


def test_execution_reports() -> None:
    new = _event("ws_execution_report_new.json")
    assert isinstance(new, S.ExecutionReport)
    assert new.to_event() == OrderAccepted("mUvoqJxFIILMdfAW5iGSOW", "4293153",
                                           1499405658657 * 1_000_000)
    trade = _event("ws_execution_report_trade.json")
    assert isinstance(trade, S.ExecutionReport)
    fill = trade.to_event()
    assert isinstance(fill, OrderFilled)
    assert (fill.trade_id, fill.quantity, fill.price, fill.fee, fill.fee_currency,
            fill.liquidity) == ("ETHBTC:12345", D("0.4"), D("0.1026441"), D("0.0000004"),
                                "BNB", Liquidity.MAKER)
    canceled = _event("ws_execution_report_canceled.json")
    assert isinstance(canceled, S.ExecutionReport)
    ev = canceled.to_event()
    assert isinstance(ev, OrderCanceled)
    assert ev.client_order_id == "mUvoqJxFIILMdfAW5iGSOW"  # C, not the cancel's own c
    assert ev.filled_quantity == D("0.4")


def test_account_events() -> None:
    pos = _event("ws_outbound_account_position.json")
    assert isinstance(pos, S.OutboundAccountPosition)
    assert [(b.asset, b.free, b.locked) for b in pos.to_balances()] == [
        ("BTC", D("11818"), D("182")), ("USDT", D("10580"), D("70"))]
    assert [(u.asset, u.free, u.locked, u.ts_ns) for u in pos.to_updates()] == [
        ("BTC", D("11818"), D("182"), 1728972148778 * 1_000_000),
        ("USDT", D("10580"), D("70"), 1728972148778 * 1_000_000)]
    upd = _event("ws_balance_update.json")
    assert isinstance(upd, S.BalanceUpdate) and upd.delta == D("100")
    assert isinstance(_event("ws_event_stream_terminated.json"), S.EventStreamTerminated)


def test_unknown_event_type_is_a_validation_error() -> None:
    try:
        S.USER_EVENT.decode(b'{"e":"listStatus","E":1}')
    except msgspec.ValidationError:
        return
    raise AssertionError("an unknown event type must not decode")
