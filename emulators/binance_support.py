"""What the Binance emulator (:mod:`connectors.binance.emulator`) is made of besides its
server: its markets, its answers' building blocks and the mapping of the paper exchange's
refusals to Binance's error codes and messages ("Error codes for Binance", "Filter failures")."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import unquote

import orjson

from connectors.base import RejectReason, VenueRejected
from connectors.binance import errors as E
from connectors.paper.market import BTC_USDT, ETH_USDT, MarketConfig

COID_RULE = "^[a-zA-Z0-9-_]{1,36}$"
COID_RE = re.compile(COID_RULE)
ZERO = Decimal(0)

ORDER_TYPES = ("LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS", "STOP_LOSS_LIMIT")
NOT_FOR_SYMBOL = {
    "MARKET": "Market orders are not supported for this symbol.",
    "STOP_LOSS": "Stop loss orders are not supported for this symbol.",
    "STOP_LOSS_LIMIT": "Stop loss limit orders are not supported for this symbol.",
}
"""errors.md, "Messages for -1010 ..., -2010 NEW_ORDER_REJECTED": the texts for a type the
symbol does not enable (errors.md has none for LIMIT and LIMIT_MAKER: "Unsupported order
combination" then)."""


def binance_markets() -> tuple[MarketConfig, ...]:
    """BTCUSDT and ETHUSDT (Binance's native symbol form) near late-2026 prices."""
    return (
        MarketConfig(dataclasses.replace(BTC_USDT, venue_symbol="BTCUSDT"), Decimal("97000"),
                     level_size=Decimal("0.5")),
        MarketConfig(dataclasses.replace(ETH_USDT, venue_symbol="ETHUSDT"), Decimal("3400"),
                     level_size=Decimal("5")),
    )


def binance_balances() -> dict[str, Decimal]:
    return {"USDT": Decimal("1000000"), "BTC": Decimal("10"), "ETH": Decimal("100")}


def num(value: Decimal | None) -> str:
    """Binance's numeric strings (8 decimals)."""
    return f"{(value or ZERO):.8f}"


class Refused(Exception):  # noqa: N818 - an answer, not a failure
    def __init__(self, http: int, code: int, msg: str, headers: dict[str, str] | None = None,
                 data: Any = None) -> None:
        super().__init__(msg)
        self.http, self.code, self.msg, self.headers, self.data = http, code, msg, headers, data


@dataclass
class Meta:
    """What Binance shows of an order that the paper exchange does not keep."""

    coid: str
    """Its clientOrderId now: a cancel replaces it with the cancel's newClientOrderId."""
    order_id: int
    venue_symbol: str
    btype: str
    created_ms: int
    placed_coid: str = ""
    """The clientOrderId it was placed with (its NEW and TRADE reports carry it)."""

    def __post_init__(self) -> None:
        self.placed_coid = self.placed_coid or self.coid


@dataclass(frozen=True)
class Endpoint:
    handler: Callable[[dict[str, str]], Any]
    weight: Callable[[dict[str, str]], int]
    signed: bool = True
    order: bool = False
    """Counts in the ORDERS limits."""
    mutating: bool = False
    """Order entry: subject to ``timeout_next``."""


@dataclass
class Limits:
    weight_limit: int = 6000
    orders_10s_limit: int = 100
    orders_1d_limit: int = 200_000
    weight_used: int = 0
    weight_minute: int = -1
    orders_10s: int = 0
    orders_10s_slot: int = -1
    orders_1d: int = 0
    orders_1d_slot: int = -1
    retry_until: float = 0.0
    violations: int = 0
    banned_until: float = 0.0
    history: list[int] = field(default_factory=list)


# ---- helpers ---------------------------------------------------------------------------------


def const(weight: int) -> Callable[[dict[str, str]], int]:
    return lambda params: weight


def err(code: int, msg: str, data: Any = None) -> Any:
    body: dict[str, Any] = {"code": code, "msg": msg}
    if data is not None:
        body["data"] = data
    return body


def ws_err(rid: Any, status: int, code: int, msg: str) -> str:
    return orjson.dumps({"id": rid, "status": status,
                         "error": {"code": code, "msg": msg}}).decode()


def missing(name: str) -> Refused:
    return Refused(400, E.MANDATORY_PARAM,
                    f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")


DECIMAL_RULE = "^([0-9]{1,20})(\\.[0-9]{1,20})?$"
DECIMAL_RE = re.compile(DECIMAL_RULE)
"""The legal range Binance names when it refuses a DECIMAL parameter (-1100), exponent
notation such as ``1E-7`` included."""


def dec(params: dict[str, str], name: str) -> Decimal:
    if not params.get(name):
        raise missing(name)
    text = params[name]
    if not DECIMAL_RE.fullmatch(text):
        raise Refused(400, E.ILLEGAL_CHARS, f"Illegal characters found in parameter '{name}'; "
                      f"legal range is '{DECIMAL_RULE}'.")
    value = Decimal(text)
    if value <= 0:
        raise Refused(400, E.INVALID_MESSAGE, f"Illegal characters found in parameter '{name}'")
    return value


def unsigned(raw: str) -> str:
    """``raw`` (query string or form body, as sent) without its ``signature`` parameter."""
    if "signature=" not in raw:
        return raw
    return "&".join(p for p in raw.split("&") if not unquote(p).startswith("signature="))


REFUSALS: dict[RejectReason, tuple[int, str]] = {
    RejectReason.UNKNOWN_SYMBOL: (E.BAD_SYMBOL, E.MSG_BAD_SYMBOL),
    RejectReason.PRICE_FILTER: (E.INVALID_MESSAGE, "Filter failure: PRICE_FILTER"),
    RejectReason.LOT_FILTER: (E.INVALID_MESSAGE, "Filter failure: LOT_SIZE"),
    RejectReason.MIN_NOTIONAL: (E.INVALID_MESSAGE, "Filter failure: NOTIONAL"),
    RejectReason.INSUFFICIENT_BALANCE: (E.NEW_ORDER_REJECTED, E.MSG_INSUFFICIENT),
    RejectReason.POST_ONLY_WOULD_TAKE: (E.NEW_ORDER_REJECTED, E.MSG_WOULD_TAKE),
    RejectReason.DUPLICATE_ORDER: (E.NEW_ORDER_REJECTED, E.MSG_DUPLICATE),
    RejectReason.UNKNOWN_ORDER: (E.CANCEL_REJECTED, E.MSG_UNKNOWN_ORDER),
    RejectReason.TOO_LATE: (E.CANCEL_REJECTED, E.MSG_UNKNOWN_ORDER),
    RejectReason.UNSUPPORTED: (E.NEW_ORDER_REJECTED, "Unsupported order combination"),
}


def refusal(exc: VenueRejected) -> Refused:
    code, msg = REFUSALS.get(exc.reason, (E.NEW_ORDER_REJECTED, exc.text))
    return Refused(400, code, msg)
