"""OKX error codes (docs-v5 "Error Code": REST 50000-50999 general, 51000-51999 trade;
WebSocket 60000-60999) mapped to why a request was refused."""

from __future__ import annotations

from connectors.base import RejectReason

RATE_LIMIT = "50011"
"""HTTP 429 ``{"code":"50011","msg":"Too Many Requests"}``."""
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
"""Cancellation failed as the order has been filled, canceled or does not exist."""
CANCEL_ALREADY_CANCELED = "51401"
CANCEL_ALREADY_DONE = "51402"
AMEND_FAILED = "51503"
"""Order modification failed as the order has been filled, canceled or does not exist."""
AMEND_CANCELED = "51509"
AMEND_DONE = "51510"
AMEND_POST_ONLY = "51511"
ORDER_NOT_FOUND = "51603"
WS_TIMESTAMP_EXPIRED = "60006"
WS_INVALID_SIGN = "60007"
WS_LOGIN_FAILED = "60009"
WS_NOT_LOGGED_IN = "60011"

REASONS: dict[str, RejectReason] = {
    RATE_LIMIT: RejectReason.RATE_LIMIT,
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
    "51502": RejectReason.INSUFFICIENT_BALANCE,  # amend: insufficient margin or balance
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
    """Why OKX refused: by code, and for the generic parameter error (51000 "Parameter {0}
    error") by the parameter it names."""
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
"""The ``cancelSource`` codes of the order channel we name (others are reported by number)."""
