"""Bybit v5 request limits (https://bybit-exchange.github.io/docs/v5/rate-limit).

* IP: 600 requests per 5-second window across every endpoint; beyond it the venue answers HTTP
  403 ("access too frequent") and blocks the IP for at least 10 minutes.
* API (per UID, per endpoint and category, per second): over it the venue answers HTTP 200 with
  ``retCode`` 10006 ("Too many visits!"). Every response carries ``X-Bapi-Limit`` (the limit),
  ``X-Bapi-Limit-Status`` (what remains) and ``X-Bapi-Limit-Reset-Timestamp`` (ms; when the
  window resets once exceeded, else the current time).

The per-second figures are the documented defaults of a non-PRO unified account (order create:
10/s derivatives, 20/s spot).
"""

from __future__ import annotations

from connectors.common.ratelimit import WindowSpec

IP_WINDOW = WindowSpec("ip", 600, 5.0)
IP_BAN_S = 600.0

ENDPOINT_WINDOWS: dict[str, str] = {
    "/v5/order/create": "create",
    "/v5/order/amend": "amend",
    "/v5/order/cancel": "cancel",
    "/v5/order/cancel-all": "cancel_all",
    "/v5/order/create-batch": "create_batch",
    "/v5/order/cancel-batch": "cancel_batch",
    "/v5/order/realtime": "realtime",
    "/v5/order/history": "history",
    "/v5/execution/list": "execution",
    "/v5/position/list": "position",
    "/v5/account/wallet-balance": "wallet",
    "/v5/order/disconnected-cancel-all": "dcp",
}
"""Path -> window family; the window is ``<family>:<category>`` (``:any`` without one)."""

PER_SECOND: dict[str, int] = {
    "create:linear": 10, "create:spot": 20,
    "amend:linear": 10, "amend:spot": 10,
    "cancel:linear": 10, "cancel:spot": 20,
    "cancel_all:linear": 1, "cancel_all:spot": 20,
    "create_batch:linear": 10, "create_batch:spot": 20,
    "cancel_batch:linear": 10, "cancel_batch:spot": 20,
    "realtime:linear": 50, "realtime:spot": 50,
    "history:linear": 50, "history:spot": 50,
    "execution:linear": 50, "execution:spot": 50,
    "position:linear": 50,
    "wallet:any": 50,
    "dcp:any": 5,
}


def window_name(path: str, category: str | None) -> str | None:
    family = ENDPOINT_WINDOWS.get(path)
    if family is None:
        return None
    return f"{family}:{category or 'any'}"


def windows() -> tuple[WindowSpec, ...]:
    return (IP_WINDOW, *(WindowSpec(n, lim, 1.0) for n, lim in PER_SECOND.items()))
