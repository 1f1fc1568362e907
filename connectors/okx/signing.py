"""OKX API v5 request signing.

REST (docs-v5 "Overview / REST Authentication / Making Requests" and "Signature"):
``OK-ACCESS-SIGN`` is ``base64(HMAC-SHA256(secret, timestamp + METHOD + requestPath + body))``,
where ``timestamp`` is the ``OK-ACCESS-TIMESTAMP`` header (ISO 8601 UTC with milliseconds, e.g.
``2020-12-08T09:08:57.715Z``), ``requestPath`` includes the query string of a GET
(``/api/v5/account/balance?ccy=BTC``) and ``body`` is the JSON text of a POST (empty for a GET).
A request whose timestamp is more than 30 s away from the server's time is refused (50102).

WebSocket login (docs-v5 "WebSocket / Login"): the same HMAC over
``timestamp + "GET" + "/users/self/verify"``, with ``timestamp`` in Unix *seconds*.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime

WS_VERIFY_PATH = "/users/self/verify"


def sign(secret: str, timestamp: str, method: str, request_path: str, body: str = "") -> str:
    """The ``OK-ACCESS-SIGN`` value (also the WebSocket login ``sign``)."""
    prehash = f"{timestamp}{method.upper()}{request_path}{body}"
    mac = hmac.new(secret.encode(), prehash.encode(), hashlib.sha256).digest()
    return base64.b64encode(mac).decode()


def iso_timestamp(ms: int) -> str:
    """Unix milliseconds as OKX's header timestamp: ``2020-12-08T09:08:57.715Z``."""
    dt = datetime.fromtimestamp(ms // 1000, tz=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S") + f".{ms % 1000:03d}Z"


def parse_iso_timestamp(value: str) -> int:
    """``OK-ACCESS-TIMESTAMP`` back to Unix milliseconds (ValueError when malformed)."""
    if not value.endswith("Z") or len(value) != 24:
        raise ValueError(f"not an OKX timestamp: {value!r}")
    dt = datetime.strptime(value[:-1], "%Y-%m-%dT%H:%M:%S.%f").replace(tzinfo=UTC)
    return int(dt.timestamp()) * 1000 + dt.microsecond // 1000


def ws_login_sign(secret: str, timestamp_s: str) -> str:
    """The WebSocket login ``sign`` for a Unix-seconds ``timestamp_s``."""
    return sign(secret, timestamp_s, "GET", WS_VERIFY_PATH)
