"""ccxt's exceptions as the gateway's: a definite refusal, an ambiguous outcome, or a request
that was never made.

ccxt raises from one hierarchy (``ccxt.base.errors``, documented in the ccxt Manual, section
"Error Handling"): ``ExchangeError`` and its subclasses mean the venue answered and refused;
``NetworkError`` and its subclasses mean the answer was lost or unusable — for a request that
changes state that is *ambiguous* (it may have reached the venue), except when the connection
could not even be made. Venues are not uniform in what they map where, so the message is read
too (Binance's filter failures reach ccxt as plain ``InvalidOrder``/``ExchangeError``).
"""

from __future__ import annotations

import re

import aiohttp
import ccxt.async_support as ccxt_async

from connectors.base import (
    RejectReason,
    VenueAmbiguous,
    VenueError,
    VenueRejected,
    VenueUnavailable,
)

_MESSAGE_REASONS: tuple[tuple[tuple[str, ...], RejectReason], ...] = (
    (("duplicate",), RejectReason.DUPLICATE_ORDER),
    (("insufficient", "balance is not enough", "not enough balance"),
     RejectReason.INSUFFICIENT_BALANCE),
    (("immediately match", "would immediately", "post only", "post-only", "postonly"),
     RejectReason.POST_ONLY_WOULD_TAKE),
    (("min_notional", "notional"), RejectReason.MIN_NOTIONAL),
    (("price_filter", "tick size", "price precision", "percent_price"), RejectReason.PRICE_FILTER),
    (("lot_size", "lot size", "amount precision", "min_qty", "quantity"), RejectReason.LOT_FILTER),
    (("invalid symbol", "unknown symbol", "does not have market symbol"),
     RejectReason.UNKNOWN_SYMBOL),
    (("order does not exist", "unknown order", "order not found"), RejectReason.UNKNOWN_ORDER),
)


_SECRET_PARAM = re.compile(
    r"(signature|sign|apikey|api_key|secret|passphrase|password|x-mbx-apikey)"
    r"([\"']?\s*[=:]\s*[\"']?)[^&\s\"',}]+", re.IGNORECASE)


def redact(text: str) -> str:
    """``text`` without signatures or keys (ccxt puts the request URL, query string and
    signature included, into some of its messages)."""
    return _SECRET_PARAM.sub(r"\1\2***", text)


def reason_from_message(text: str) -> RejectReason:
    low = text.lower()
    for needles, reason in _MESSAGE_REASONS:
        if any(n in low for n in needles):
            return reason
    return RejectReason.OTHER


def is_rate_limit(exc: BaseException) -> bool:
    """A 429-like refusal (nothing executed; worth retrying later)."""
    return isinstance(exc, ccxt_async.DDoSProtection | ccxt_async.RateLimitExceeded)


def is_ban(exc: BaseException) -> bool:
    """Binance's 418 (an IP ban after continued 429s) reaches ccxt as DDoSProtection."""
    text = str(exc)
    return is_rate_limit(exc) and (" 418 " in text or "banned" in text.lower())


def _never_connected(exc: BaseException) -> bool:
    cause = exc.__cause__ or exc.__context__
    return isinstance(cause, aiohttp.ClientConnectorError)


_REJECTS: tuple[tuple[type[Exception], RejectReason], ...] = (
    (ccxt_async.DuplicateOrderId, RejectReason.DUPLICATE_ORDER),
    (ccxt_async.InsufficientFunds, RejectReason.INSUFFICIENT_BALANCE),
    (ccxt_async.BadSymbol, RejectReason.UNKNOWN_SYMBOL),
    (ccxt_async.OrderNotFound, RejectReason.UNKNOWN_ORDER),
    (ccxt_async.OrderImmediatelyFillable, RejectReason.POST_ONLY_WOULD_TAKE),
    (ccxt_async.NotSupported, RejectReason.UNSUPPORTED),
)
"""ccxt's exception classes that are the venue's refusal, in the order they are tried."""


def map_error(exc: Exception, *, what: str, mutating: bool) -> VenueError:
    """The gateway's exception for ccxt's ``exc`` raised by ``what`` (a request that changes
    state at the venue when ``mutating``)."""
    text = redact(f"{what}: {type(exc).__name__}: {exc}")
    if isinstance(exc, VenueError):
        return exc
    if isinstance(exc.__cause__, aiohttp.ClientError | TimeoutError):
        # a transport failure (ccxt raises some of them as a bare ExchangeError)
        if mutating and not _never_connected(exc):
            return VenueAmbiguous(text)
        return VenueUnavailable(text)
    for kind, reason in _REJECTS:
        if isinstance(exc, kind):
            return VenueRejected(reason, text)
    if isinstance(exc, ccxt_async.AuthenticationError):
        # PermissionDenied, AccountSuspended, a bad signature or key: nothing was executed
        return VenueUnavailable(redact(f"{what}: the venue refused our credentials or "
                                       f"permissions (check the API key, secret and clock): "
                                       f"{exc}"))
    if isinstance(exc, ccxt_async.InvalidNonce):
        return VenueUnavailable(redact(f"{what}: the venue refused our timestamp/nonce: {exc}"))
    if isinstance(exc, ccxt_async.ExchangeError):
        return VenueRejected(reason_from_message(str(exc)), text)
    if is_ban(exc):
        return VenueUnavailable(redact(f"{what}: banned by the venue: {exc}"))
    if is_rate_limit(exc):
        return VenueRejected(RejectReason.RATE_LIMIT, text)
    if isinstance(exc, ccxt_async.NetworkError | ccxt_async.BadResponse):
        if mutating and not _never_connected(exc):
            return VenueAmbiguous(text)
        return VenueUnavailable(text)
    if mutating:
        return VenueAmbiguous(text)
    return VenueUnavailable(text)
