"""Binance error codes and messages ("Error codes for Binance", errors.md; "Messages for -1010
ERROR_MSG_RECEIVED, -2010 NEW_ORDER_REJECTED, -2011 CANCEL_REJECTED, and -2013 NO_SUCH_ORDER";
"Filter failures") and what they mean for the gateway."""

from __future__ import annotations

from connectors.base import RejectReason

TOO_MANY_REQUESTS = -1003
TIMEOUT = -1007
INVALID_MESSAGE = -1013
TOO_MANY_ORDERS = -1015
INVALID_TIMESTAMP = -1021
INVALID_SIGNATURE = -1022
ILLEGAL_CHARS = -1100
MANDATORY_PARAM = -1102
BAD_SYMBOL = -1121
NEW_ORDER_REJECTED = -2010
CANCEL_REJECTED = -2011
NO_SUCH_ORDER = -2013
BAD_API_KEY_FMT = -2014
REJECTED_MBX_KEY = -2015
CANCEL_REPLACE_PARTIAL = -2021
CANCEL_REPLACE_FAILED = -2022

MSG_INSUFFICIENT = "Account has insufficient balance for requested action."
MSG_WOULD_TAKE = "Order would immediately match and take."
MSG_DUPLICATE = "Duplicate order sent."
MSG_UNKNOWN_ORDER = "Unknown order sent."
MSG_NO_SUCH_ORDER = "Order does not exist."
MSG_BAD_SYMBOL = "Invalid symbol."
MSG_BAD_SIGNATURE = "Signature for this request is not valid."
MSG_RECV_WINDOW = "Timestamp for this request is outside of the recvWindow."
MSG_AHEAD = "Timestamp for this request was 1000ms ahead of the server's time."
MSG_BAD_KEY_FMT = "API-key format invalid."
MSG_BAD_KEY = "Invalid API-key, IP, or permissions for action."
FILTER_PREFIX = "Filter failure: "

_FILTERS = {
    "PRICE_FILTER": RejectReason.PRICE_FILTER,
    "PERCENT_PRICE": RejectReason.PRICE_FILTER,
    "PERCENT_PRICE_BY_SIDE": RejectReason.PRICE_FILTER,
    "LOT_SIZE": RejectReason.LOT_FILTER,
    "MARKET_LOT_SIZE": RejectReason.LOT_FILTER,
    "MIN_NOTIONAL": RejectReason.MIN_NOTIONAL,
    "NOTIONAL": RejectReason.MIN_NOTIONAL,
}

NOT_FOR_SYMBOL = (
    "Market orders are not supported for this symbol.",
    "Iceberg orders are not supported for this symbol.",
    "Stop loss orders are not supported for this symbol.",
    "Stop loss limit orders are not supported for this symbol.",
    "Take profit orders are not supported for this symbol.",
    "Take profit limit orders are not supported for this symbol.",
    "Order amend is not supported for this symbol.",
    "OCO orders are not supported for this symbol",  # sic: no full stop in errors.md
    "Quote order qty market orders are not support for this symbol.",  # sic
    "Trailing stop orders are not supported for this symbol.",
    "Order cancel-replace is not supported for this symbol.",
    "Pegged orders are not supported for this symbol.",
    "OPO orders are not supported for this symbol.",
)
"""The matching engine's refusals of an order type (or feature) the symbol does not enable,
word for word from errors.md ("Messages for -1010 ERROR_MSG_RECEIVED, -2010
NEW_ORDER_REJECTED, ..."): one text per type, no generic one."""

_MESSAGES = {
    MSG_INSUFFICIENT: RejectReason.INSUFFICIENT_BALANCE,
    MSG_WOULD_TAKE: RejectReason.POST_ONLY_WOULD_TAKE,
    MSG_DUPLICATE: RejectReason.DUPLICATE_ORDER,
    MSG_UNKNOWN_ORDER: RejectReason.UNKNOWN_ORDER,
    MSG_NO_SUCH_ORDER: RejectReason.UNKNOWN_ORDER,
    "Order was not canceled due to cancel restrictions.": RejectReason.TOO_LATE,
    "Market is closed.": RejectReason.UNSUPPORTED,
    "This order type is not possible in this trading phase.": RejectReason.UNSUPPORTED,
    "Unsupported order combination": RejectReason.UNSUPPORTED,
    **dict.fromkeys(NOT_FOR_SYMBOL, RejectReason.UNSUPPORTED),
}


def reject_reason(code: int, msg: str) -> RejectReason:
    """What a definite refusal means (a filter failure names its filter in the message)."""
    if msg.startswith(FILTER_PREFIX):
        return _FILTERS.get(msg[len(FILTER_PREFIX):].strip(), RejectReason.OTHER)
    if msg in _MESSAGES:
        return _MESSAGES[msg]
    if code == BAD_SYMBOL:
        return RejectReason.UNKNOWN_SYMBOL
    if code in (TOO_MANY_REQUESTS, TOO_MANY_ORDERS):
        return RejectReason.RATE_LIMIT
    if code == CANCEL_REJECTED:
        return RejectReason.UNKNOWN_ORDER
    return RejectReason.OTHER
