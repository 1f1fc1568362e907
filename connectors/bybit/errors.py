"""Bybit v5 ``retCode`` values and what they mean for an order
(https://bybit-exchange.github.io/docs/v5/error: "UTA", "Spot Trade" and "Derivatives" tables).

Derivatives (``category=linear``) and spot answer the same refusal with different codes; both
are listed. ``10001`` (request parameter error) is overloaded by the venue: its message names the
offending parameter, so :func:`reason_for` looks at the message for that code only.
"""

from __future__ import annotations

from connectors.base import RejectReason

OK = 0
PARAMS_ERROR = 10001
TIMESTAMP_EXPIRED = 10002
"""The request's timestamp is outside [server_time - recv_window, server_time + 1000)."""
INVALID_API_KEY = 10003
SIGN_ERROR = 10004
PERMISSION_DENIED = 10005
TOO_MANY_VISITS = 10006
"""The per-UID, per-endpoint API rate limit (HTTP 200; see the X-Bapi-Limit-* headers)."""
SERVER_TIMEOUT = 10000
INTERNAL_ERROR = 10016

# derivatives
ORDER_NOT_EXISTS = 110001
""""order not exists or too late to cancel"."""
INSUFFICIENT_AB = 110007
"""Available balance not enough for the new order."""
INSUFFICIENT_WALLET = 110004
ORDER_FINISHED = 110008
ORDER_CANCELLED = 110010
INSUFFICIENT_AVAILABLE = 110012
REDUCE_ONLY_RULE = 110017
DUPLICATE_LINK_ID = 110072
"""OrderLinkedID is duplicate."""
BELOW_MIN_NOTIONAL = 110094

# spot
SPOT_INVALID_SYMBOL = 170121
SPOT_INSUFFICIENT = 170131
SPOT_PRICE_TOO_HIGH = 170132
SPOT_PRICE_TOO_LOW = 170133
SPOT_PRICE_DECIMALS = 170134
SPOT_QTY_TOO_LARGE = 170135
SPOT_QTY_TOO_SMALL = 170136
SPOT_QTY_DECIMALS = 170137
SPOT_FILLED = 170139
SPOT_BELOW_MIN_AMOUNT = 170140
SPOT_DUPLICATE_CLIENT_ID = 170141
SPOT_CANCELLED = 170142
SPOT_ORDER_NOT_EXISTS = 170213

REASONS: dict[int, RejectReason] = {
    INSUFFICIENT_AB: RejectReason.INSUFFICIENT_BALANCE,
    INSUFFICIENT_WALLET: RejectReason.INSUFFICIENT_BALANCE,
    INSUFFICIENT_AVAILABLE: RejectReason.INSUFFICIENT_BALANCE,
    110044: RejectReason.INSUFFICIENT_BALANCE,
    110045: RejectReason.INSUFFICIENT_BALANCE,
    SPOT_INSUFFICIENT: RejectReason.INSUFFICIENT_BALANCE,
    SPOT_INVALID_SYMBOL: RejectReason.UNKNOWN_SYMBOL,
    SPOT_PRICE_TOO_HIGH: RejectReason.PRICE_FILTER,
    SPOT_PRICE_TOO_LOW: RejectReason.PRICE_FILTER,
    SPOT_PRICE_DECIMALS: RejectReason.PRICE_FILTER,
    110003: RejectReason.PRICE_FILTER,
    SPOT_QTY_TOO_LARGE: RejectReason.LOT_FILTER,
    SPOT_QTY_TOO_SMALL: RejectReason.LOT_FILTER,
    SPOT_QTY_DECIMALS: RejectReason.LOT_FILTER,
    SPOT_BELOW_MIN_AMOUNT: RejectReason.MIN_NOTIONAL,
    BELOW_MIN_NOTIONAL: RejectReason.MIN_NOTIONAL,
    DUPLICATE_LINK_ID: RejectReason.DUPLICATE_ORDER,
    SPOT_DUPLICATE_CLIENT_ID: RejectReason.DUPLICATE_ORDER,
    ORDER_NOT_EXISTS: RejectReason.UNKNOWN_ORDER,
    SPOT_ORDER_NOT_EXISTS: RejectReason.UNKNOWN_ORDER,
    ORDER_FINISHED: RejectReason.TOO_LATE,
    ORDER_CANCELLED: RejectReason.TOO_LATE,
    SPOT_FILLED: RejectReason.TOO_LATE,
    SPOT_CANCELLED: RejectReason.TOO_LATE,
    TOO_MANY_VISITS: RejectReason.RATE_LIMIT,
    170005: RejectReason.RATE_LIMIT,
}

AMBIGUOUS = frozenset({SERVER_TIMEOUT, INTERNAL_ERROR, 10007, 170007, 170146, 170147})
"""The venue itself does not know whether the request was carried out."""

POST_ONLY_WOULD_TAKE = "EC_PostOnlyWillTakeLiquidity"
"""rejectReason of a PostOnly order cancelled because it would have taken liquidity."""


def reason_for(code: int, message: str) -> RejectReason:
    reason = REASONS.get(code)
    if reason is not None:
        return reason
    if code == PARAMS_ERROR:
        text = message.lower()
        if "symbol" in text:
            return RejectReason.UNKNOWN_SYMBOL
        if "price" in text:
            return RejectReason.PRICE_FILTER
        if "qty" in text or "quantity" in text:
            return RejectReason.LOT_FILTER
    return RejectReason.OTHER
