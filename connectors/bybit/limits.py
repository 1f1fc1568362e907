"""Bybit v5 request limits.

Where each number comes from (checked against the docs' markdown source, github.com/
bybit-exchange/docs, ``docs/v5/rate-limit/rate-limit.mdx``, published as
https://bybit-exchange.github.io/docs/v5/rate-limit):

* IP: "600 requests within a 5-second window per IP"; beyond it the venue answers
  "403, access too frequent" and one must "wait for at least 10 minutes" (section "HTTP IP
  limit") -> :data:`IP_WINDOW`, :data:`IP_BAN_S`.
* API (per UID, per endpoint, "rolling time window per second"): over it the JSON answer is
  ``"retCode": 10006, "retMsg": "Too many visits!"`` (section "API Rate Limit"). The docs do not
  state the HTTP status of that answer; Bybit's own SDK (pybit ``_http_manager.py``) reads
  10006 only from HTTP 200 answers and waits until ``X-Bapi-Limit-Reset-Timestamp`` before
  retrying, so the emulator answers it with HTTP 200. Every response carries ``X-Bapi-Limit``
  (the limit), ``X-Bapi-Limit-Status`` (remaining) and ``X-Bapi-Limit-Reset-Timestamp`` (ms; when
  the limit resets once exceeded, else just the current time).
* Per-endpoint figures: "API Rate Limit Table", "Trade" table (columns inverse+linear share one
  cell, then option, then spot): create 10/s linear, 20/s spot; amend 10/s both; cancel 10/s
  linear, 20/s spot; cancel-all 10/s linear, 20/s spot (the 1/s is the *option* column);
  create-batch / amend-batch / cancel-batch 10/s linear, 20/s spot; disconnected-cancel-all 5/s
  (all products); order/realtime, order/history, execution/list 50/s. "Position" table:
  position/list 50/s. "Account" table: wallet-balance (accountType=UNIFIED) 50/s.
  The market endpoints (server time, instruments-info, tickers) are only under the IP limit.
* Batch endpoints have their own limit (not shared with the single-order endpoint) and consume
  one unit per order in the request; "If part of the last batch of orders requested within 1s
  exceeds the limit, the part that exceeds the limit will fail, and the part that does not
  exceed the limit will succeed" ("Instructions for batch endpoints").
* Orders per batch request: "A maximum of 20 orders (option), 20 orders (inverse), 20 orders
  (linear), 10 orders (spot) can be placed per request" (``docs/v5/order/batch-place.mdx``, as
  published at https://bybit-exchange.github.io/docs/v5/order/batch-place; earlier revisions
  said 10 for linear) -> :data:`PLACE_BATCH_MAX`; "10 orders (linear), 10 orders (spot) can be
  cancelled per request" (``docs/v5/order/batch-cancel.mdx``) -> :data:`BATCH_MAX`.
"""

from __future__ import annotations

from connectors.common.ratelimit import WindowSpec

IP_WINDOW = WindowSpec("ip", 600, 5.0)
IP_BAN_S = 600.0
BATCH_MAX = 10
"""Orders per cancel-batch request (spot and linear)."""
PLACE_BATCH_MAX: dict[str, int] = {"linear": 20, "spot": 10}
"""Orders per create-batch request, by category."""
BATCH_PATHS = frozenset({"/v5/order/create-batch", "/v5/order/amend-batch",
                         "/v5/order/cancel-batch"})
"""Endpoints whose window is charged one unit per order in the request."""

ENDPOINT_WINDOWS: dict[str, str] = {
    "/v5/order/create": "create",
    "/v5/order/amend": "amend",
    "/v5/order/cancel": "cancel",
    "/v5/order/cancel-all": "cancel_all",
    "/v5/order/create-batch": "create_batch",
    "/v5/order/amend-batch": "amend_batch",
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
    "cancel_all:linear": 10, "cancel_all:spot": 20,
    "create_batch:linear": 10, "create_batch:spot": 20,
    "amend_batch:linear": 10, "amend_batch:spot": 20,
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


DAY_MS = 86_400_000
EXECUTION_WINDOW_MS = 7 * DAY_MS
"""Get Trade History (``docs/v5/order/execution.mdx``, ``startTime``): "startTime and endTime
are not passed, return 7 days by default; Only startTime is passed, return range between
startTime and startTime+7 days; Only endTime is passed, return range between endTime-7 days and
endTime; If both are passed, the rule is endTime - startTime <= 7 days"."""
EXECUTION_HISTORY_MS = 730 * DAY_MS
"""How far back Get Trade History reaches: its page is titled "Get Trade History (2 years)"."""
