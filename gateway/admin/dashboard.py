"""The live dashboard: one page (``GET /dashboard``) and its script (``GET /dashboard.js``),
served by the admin API. The operator types the admin token in; the page then reads
``GET /events`` (server-sent events, the token in the Authorization header: never in a URL)
and shows the sessions, the open orders, the recent fills, each venue's health and rate-limit
usage, and the kill switch, which it engages and releases after a confirmation. Every value
from the gateway is set as text, never as HTML (a ClOrdID is the client's to choose)."""

from __future__ import annotations

from functools import cache
from importlib.resources import files

CSP = ("default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
       "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; "
       "frame-ancestors 'none'")


@cache
def page() -> str:
    return (files("gateway.admin") / "static" / "dashboard.html").read_text(encoding="utf-8")


@cache
def script() -> str:
    return (files("gateway.admin") / "static" / "dashboard.js").read_text(encoding="utf-8")
