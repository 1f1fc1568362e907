"""Bybit v5 ``retCode`` values and what they mean for an order
(https://bybit-exchange.github.io/docs/v5/error, source ``docs/v5/error.mdx``: the "UTA" table
holds the common and derivatives codes, the "Spot Trade" table the 170xxx codes; the texts
quoted below are the docs' descriptions).

HTTP statuses ("HTTP Code" table of the same page): 401 for a wrong API key or missing
authentication headers, 403 for the IP rate limit (or a GET with a JSON body, or a U.S. IP), 404
for a wrong path, 429 for system-level protection. Everything else arrives as a JSON envelope
whose ``retCode`` says what happened; the docs do not give the HTTP status of those answers
(clients such as pybit read ``retCode`` only from HTTP 200 answers).

Derivatives (``category=linear``) and spot answer the same refusal with different codes; both
are listed. ``10001`` (request parameter error) is overloaded by the venue: its message names the
offending parameter, so :func:`reason_for` looks at the message for that code only.
"""

from __future__ import annotations

from connectors.base import RejectReason

OK = 0
PARAMS_ERROR = 10001
TIMESTAMP_EXPIRED = 10002
""""The request time exceeds the time window range." ([server_time - recv_window,
server_time + 1000))."""
INVALID_API_KEY = 10003
SIGN_ERROR = 10004
""""Error sign, please check your signature generation algorithm."."""
PERMISSION_DENIED = 10005
TOO_MANY_VISITS = 10006
""""Too many visits. Exceeded the API Rate Limit." (see limits.py and the X-Bapi-Limit-*
headers)."""
SERVER_TIMEOUT = 10000
INTERNAL_ERROR = 10016
""""Server error."."""

# derivatives
ORDER_NOT_EXISTS = 110001
""""Order does not exist" (the live message reads "order not exists or too late to cancel")."""
INSUFFICIENT_AB = 110007
""""Available balance is insufficient" (live message: "ab not enough for new order")."""
INSUFFICIENT_WALLET = 110004
ORDER_FINISHED = 110008
ORDER_CANCELLED = 110010
INSUFFICIENT_AVAILABLE = 110012
QTY_TRUNCATED_TO_ZERO = 110017
""""orderQty will be truncated to zero"."""
DUPLICATE_LINK_ID = 110072
""""OrderLinkedID is duplicate"."""
BELOW_MIN_NOTIONAL = 110094
""""Order notional value below the lower limit"."""
PRICE_BELOW_LIMIT = 110120
PRICE_ABOVE_LIMIT = 110121

# spot
SPOT_INVALID_SYMBOL = 170121
SPOT_INSUFFICIENT = 170131
SPOT_PRICE_TOO_HIGH = 170132
SPOT_PRICE_TOO_LOW = 170133
SPOT_PRICE_DECIMALS = 170134
SPOT_QTY_TOO_LARGE = 170135
"""No longer in the docs' table (now 170381/170382, "Order quantity too large.")."""
SPOT_QTY_TOO_SMALL = 170136
SPOT_QTY_DECIMALS = 170137
SPOT_FILLED = 170139
SPOT_BELOW_MIN_AMOUNT = 170140
""""Order value exceeded lower limit"."""
SPOT_DUPLICATE_CLIENT_ID = 170141
""""Duplicate clientOrderId"."""
SPOT_CANCELLED = 170142
SPOT_BUY_PRICE_CAP = 170193
SPOT_SELL_PRICE_FLOOR = 170194
SPOT_TOO_MANY_REQUESTS = 170222
SPOT_PRICE_BELOW_LIMIT = 170371
SPOT_PRICE_ABOVE_LIMIT = 170372
SPOT_QTY_TOO_LARGE_2 = 170381
SPOT_QTY_TOO_LARGE_3 = 170382
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
    SPOT_BUY_PRICE_CAP: RejectReason.PRICE_FILTER,
    SPOT_SELL_PRICE_FLOOR: RejectReason.PRICE_FILTER,
    SPOT_PRICE_BELOW_LIMIT: RejectReason.PRICE_FILTER,
    SPOT_PRICE_ABOVE_LIMIT: RejectReason.PRICE_FILTER,
    110003: RejectReason.PRICE_FILTER,
    PRICE_BELOW_LIMIT: RejectReason.PRICE_FILTER,
    PRICE_ABOVE_LIMIT: RejectReason.PRICE_FILTER,
    QTY_TRUNCATED_TO_ZERO: RejectReason.LOT_FILTER,
    SPOT_QTY_TOO_LARGE: RejectReason.LOT_FILTER,
    SPOT_QTY_TOO_LARGE_2: RejectReason.LOT_FILTER,
    SPOT_QTY_TOO_LARGE_3: RejectReason.LOT_FILTER,
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
    SPOT_TOO_MANY_REQUESTS: RejectReason.RATE_LIMIT,
}

AMBIGUOUS = frozenset({SERVER_TIMEOUT, INTERNAL_ERROR, 170007, 170146, 170147})
"""The venue itself does not know whether the request was carried out: 10000 "Server Timeout",
10016 "Server error.", 170007 "Timeout waiting for response from backend server.", 170146
"Order creation timeout", 170147 "Order cancellation timeout". (10007 is "User authentication
failed.", a definite refusal.)"""

POST_ONLY_WOULD_TAKE = "EC_PostOnlyWillTakeLiquidity"
"""rejectReason of a PostOnly order cancelled because it would have taken liquidity
(https://bybit-exchange.github.io/docs/v5/enum#rejectreason). Place Order accepts such an order
("If the order would be filled immediately when submitted, it will be cancelled"); the order
then shows ``orderStatus`` Cancelled with this rejectReason (the docs' Get Order History
example)."""


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
