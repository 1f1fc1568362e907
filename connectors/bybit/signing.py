"""Bybit v5 request signing (https://bybit-exchange.github.io/docs/v5/guide, "Authentication").

REST (HMAC keys): ``X-BAPI-SIGN`` is the lowercase hex HMAC-SHA256, keyed with the API secret,
of ``timestamp + api_key + recv_window + payload``, where the payload is the query string as sent
(GET) or the raw JSON body (POST). It travels with ``X-BAPI-API-KEY``, ``X-BAPI-TIMESTAMP`` (UTC
ms), ``X-BAPI-RECV-WINDOW`` and ``X-BAPI-SIGN-TYPE: 2`` (HMAC). The venue accepts a request
when ``server_time - recv_window <= timestamp < server_time + 1000``.

Private WebSocket ("WebSocket Stream / Connect", authentication): ``{"op": "auth", "args":
[api_key, expires, signature]}`` where ``signature`` is the hex HMAC-SHA256 of
``"GET/realtime" + expires`` (``expires``: a UTC ms time in the future).
"""

from __future__ import annotations

import hashlib
import hmac

SIGN_TYPE_HMAC = "2"


def sign(secret: str, payload: str) -> str:
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


def rest_origin(timestamp_ms: int, api_key: str, recv_window_ms: int, payload: str) -> str:
    """The string a REST request signs."""
    return f"{timestamp_ms}{api_key}{recv_window_ms}{payload}"


def sign_rest(secret: str, timestamp_ms: int, api_key: str, recv_window_ms: int,
              payload: str) -> str:
    return sign(secret, rest_origin(timestamp_ms, api_key, recv_window_ms, payload))


def rest_headers(api_key: str, secret: str, timestamp_ms: int, recv_window_ms: int,
                 payload: str) -> dict[str, str]:
    return {
        "X-BAPI-API-KEY": api_key,
        "X-BAPI-TIMESTAMP": str(timestamp_ms),
        "X-BAPI-RECV-WINDOW": str(recv_window_ms),
        "X-BAPI-SIGN": sign_rest(secret, timestamp_ms, api_key, recv_window_ms, payload),
        "X-BAPI-SIGN-TYPE": SIGN_TYPE_HMAC,
    }


def sign_ws_auth(secret: str, expires_ms: int) -> str:
    return sign(secret, f"GET/realtime{expires_ms}")


def verify(secret: str, payload: str, signature: str) -> bool:
    return hmac.compare_digest(sign(secret, payload), signature.lower())
