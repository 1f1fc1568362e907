"""OKX error codes mapped to why a request was refused.

Source: docs-v5 "Error Code / REST API" (www.okx.com/docs-v5/en/#error-code-rest-api: code, HTTP
status, message) and "Error Code / WebSocket" (#error-code-websocket). Every code used here is
answered with HTTP 200 except: 50011 (HTTP 429 "Too Many Requests" at the gateway; the same code
also comes with HTTP 200 "Rate limit reached. ..."), 50013 (429), 50001 (503), 51000/50002/51501
(400) and the authentication codes 50101-50114 (401). Per-order failures arrive inside
``{"code": "1"}`` (all failed) or ``{"code": "2"}`` (some failed) with ``sCode``/``sMsg`` and,
since 2026, a separate ``subCode`` (e.g. sCode "51008" subCode "1000"); the tables write such a
pair as ``51008_1000``. :data:`MESSAGES` holds the documented message texts (``{param0}`` as in
the docs), which the emulator sends.
"""

from __future__ import annotations

from connectors.base import RejectReason

RATE_LIMIT = "50011"
"""HTTP 429 ``{"code":"50011","msg":"Too Many Requests"}`` (or HTTP 200 "Rate limit reached")."""
SUB_ACCOUNT_RATE_LIMIT = "50061"
"""1000 new/amended orders per 2 s per sub-account ("Overview / Rate Limits")."""
TIMESTAMP_EXPIRED = "50102"
INVALID_KEY = "50111"
INVALID_SIGN = "50113"
PASSPHRASE_INCORRECT = "50105"  # noqa: S105 - an error code
PARAM_ERROR = "51000"
INSTRUMENT_UNKNOWN = "51001"
PRICE_LIMIT = "51006"
INSUFFICIENT = "51008"
DUPLICATE_CLORDID = "51016"
BELOW_MIN_SIZE = "51020"
LOT_MULTIPLE = "51121"
CANCEL_FAILED = "51400"
"""Order-book cancel of an order that is filled, canceled or unknown (all three cases)."""
CANCEL_ALREADY_CANCELED = "51401"
"""Documented as "Only applicable to Nitro Spread": OKX order-book trading answers 51400."""
CANCEL_ALREADY_DONE = "51402"
"""Nitro Spread only, like 51401."""
AMEND_FAILED = "51503"
"""Order-book amend of an order that is filled, canceled or unknown (all three cases)."""
AMEND_INSUFFICIENT = "51502"
AMEND_CANCELED = "51509"
"""Nitro Spread only: order-book amends answer 51503."""
AMEND_DONE = "51510"
"""Nitro Spread only, like 51509."""
AMEND_POST_ONLY = "51511"
BATCH_TOO_MANY = "51111"
AMEND_NOTHING = "51500"
ORDER_ID_REQUIRED = "51003"
ORDER_NOT_FOUND = "51603"
WS_INVALID_TIMESTAMP = "60004"
WS_INVALID_KEY = "60005"
WS_TIMESTAMP_EXPIRED = "60006"
WS_INVALID_SIGN = "60007"
WS_LOGIN_FAILED = "60009"
WS_NOT_LOGGED_IN = "60011"
WS_INVALID_REQUEST = "60012"
WS_NO_CHANNEL = "60018"
WS_WRONG_PASSPHRASE = "60024"  # noqa: S105 - an error code

MESSAGES: dict[str, str] = {
    "1": "Operation failed.",
    "2": "Bulk operation partially succeeded.",
    "50001": "Service temporarily unavailable. Please try again later.",
    "50002": "JSON syntax error",
    RATE_LIMIT: "Too Many Requests",
    "50103": 'Request header "OK-ACCESS-KEY" cannot be empty.',
    "50104": 'Request header "OK-ACCESS-PASSPHRASE" cannot be empty.',
    PASSPHRASE_INCORRECT: 'Request header "OK-ACCESS-PASSPHRASE" incorrect.',
    "50106": 'Request header "OK-ACCESS-SIGN" cannot be empty.',
    "50107": 'Request header "OK-ACCESS-TIMESTAMP" cannot be empty.',
    INVALID_KEY: "Invalid OK-ACCESS-KEY.",
    "50112": "Invalid OK-ACCESS-TIMESTAMP.",
    TIMESTAMP_EXPIRED: "Timestamp request expired.",
    INVALID_SIGN: "Invalid signature.",
    PARAM_ERROR: "Parameter {param0} error",
    INSTRUMENT_UNKNOWN: "Instrument ID, Instrument ID code or Spread ID doesn't exist.",
    ORDER_ID_REQUIRED: "Either client order ID or order ID is required.",
    INSUFFICIENT: "Order failed. Insufficient {param0} balance in account",  # subCode 1000
    DUPLICATE_CLORDID: "Client order ID already exists.",
    BELOW_MIN_SIZE: "Your order should meet or exceed the minimum order amount.",
    BATCH_TOO_MANY: "Maximum {param0} orders can be placed in bulk.",
    LOT_MULTIPLE: "Order quantity must be a multiple of the lot size.",
    CANCEL_FAILED: "Order cancellation failed as the order has been filled, canceled or does "
                   "not exist.",
    AMEND_NOTHING: "You must enter a price, quantity, or TP/SL",
    AMEND_INSUFFICIENT: "Unable to edit order: insufficient balance or margin.",  # subCode 1030
    AMEND_FAILED: "Your order has already been filled or canceled.",
    AMEND_POST_ONLY: "Modification failed as the order price did not meet the requirement for "
                     "Post Only.",
    ORDER_NOT_FOUND: "Order does not exist.",
    WS_INVALID_TIMESTAMP: "Invalid timestamp",
    WS_INVALID_KEY: "Invalid apiKey",
    WS_TIMESTAMP_EXPIRED: "Timestamp request expired",
    WS_INVALID_SIGN: "Invalid sign",
    WS_LOGIN_FAILED: "Login failure",
    WS_NOT_LOGGED_IN: "Please log in",
    WS_INVALID_REQUEST: "Invalid request",
    WS_NO_CHANNEL: "Wrong URL or {0} doesn't exist. Please use the correct URL, channel and "
                   "parameters referring to API document.",
    WS_WRONG_PASSPHRASE: "Wrong passphrase",
}
"""The documented message of each code we send or expect (docs-v5 "Error Code")."""

REASONS: dict[str, RejectReason] = {
    RATE_LIMIT: RejectReason.RATE_LIMIT,
    SUB_ACCOUNT_RATE_LIMIT: RejectReason.RATE_LIMIT,
    "50013": RejectReason.VENUE_UNAVAILABLE,  # system busy
    "50001": RejectReason.VENUE_UNAVAILABLE,  # service temporarily unavailable
    INSTRUMENT_UNKNOWN: RejectReason.UNKNOWN_SYMBOL,
    "51015": RejectReason.UNKNOWN_SYMBOL,  # instrument ID does not match instrument type
    PRICE_LIMIT: RejectReason.PRICE_FILTER,
    "51122": RejectReason.PRICE_FILTER,  # price below the min price
    "51116": RejectReason.PRICE_FILTER,  # price exceeds the limit
    INSUFFICIENT: RejectReason.INSUFFICIENT_BALANCE,
    "51119": RejectReason.INSUFFICIENT_BALANCE,
    "51127": RejectReason.INSUFFICIENT_BALANCE,
    "51131": RejectReason.INSUFFICIENT_BALANCE,
    AMEND_INSUFFICIENT: RejectReason.INSUFFICIENT_BALANCE,
    DUPLICATE_CLORDID: RejectReason.DUPLICATE_ORDER,
    BELOW_MIN_SIZE: RejectReason.LOT_FILTER,
    LOT_MULTIPLE: RejectReason.LOT_FILTER,
    "51120": RejectReason.LOT_FILTER,  # quantity less than the minimum
    CANCEL_FAILED: RejectReason.UNKNOWN_ORDER,
    CANCEL_ALREADY_CANCELED: RejectReason.TOO_LATE,
    CANCEL_ALREADY_DONE: RejectReason.TOO_LATE,
    AMEND_FAILED: RejectReason.UNKNOWN_ORDER,
    AMEND_CANCELED: RejectReason.TOO_LATE,
    AMEND_DONE: RejectReason.TOO_LATE,
    AMEND_POST_ONLY: RejectReason.POST_ONLY_WOULD_TAKE,
    ORDER_NOT_FOUND: RejectReason.UNKNOWN_ORDER,
}


def reason_for(code: str, msg: str = "") -> RejectReason:
    """Why OKX refused: by code (a ``51008_1000`` code/sub-code pair by its code), and for the
    generic parameter error (51000 "Parameter {param0} error") by the parameter it names."""
    code = code.partition("_")[0]
    if code == PARAM_ERROR:
        if "px" in msg:
            return RejectReason.PRICE_FILTER
        if "sz" in msg:
            return RejectReason.LOT_FILTER
        if "instId" in msg:
            return RejectReason.UNKNOWN_SYMBOL
    return REASONS.get(code, RejectReason.OTHER)


CANCEL_SOURCES = {
    "0": "canceled by the system",
    "1": "canceled by the user",
    "13": "fok order not filled completely",
    "14": "ioc order not filled completely",
    "15": "order price beyond the limit",
    "20": "cancel all after triggered (dead-man switch)",
    "31": "post-only order would take liquidity",
    "32": "self trade prevention",
}
"""The ``cancelSource`` codes of docs-v5 "Trade / WS / Order channel" that we name (checked against
that list; others are reported by number)."""
