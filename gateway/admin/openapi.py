"""The admin API's OpenAPI 3.0 description, served at ``GET /openapi.json``: one line per
endpoint below, the document made from them (a test checks it names every route)."""

from __future__ import annotations

from typing import Any

REASON = {"reason": {"type": "string", "description": "why (required; logged with who asked, "
                                                     "from the X-Operator header; one line, no "
                                                     "control characters)"}}

ENDPOINTS: list[tuple[str, str, str, bool, dict[str, Any] | None]] = [
    # method, path, summary, token needed, request body properties (None: no body)
    ("get", "/livez", "Liveness: 200 while the process serves HTTP", False, None),
    ("get", "/readyz", "Readiness: 200 when the store takes writes and a venue is up, else 503 "
     "with why", False, None),
    ("get", "/metrics", "Prometheus metrics (text exposition format)", False, None),
    ("get", "/openapi.json", "This description", False, None),
    ("get", "/dashboard", "The live dashboard (a web page; its data needs the token)", False,
     None),
    ("get", "/events", "Server-sent events: a snapshot of sessions, open orders, fills, venues, "
     "kill switch and store every second (?interval=S)", True, None),
    ("get", "/health", "Every configured session, every venue's state, the store and the kill "
     "switch", True, None),
    ("get", "/sessions", "Every configured session: logged on, sequence numbers, last logon, "
     "counts", True, None),
    ("post", "/sessions/{session}/logout", "Log a session out (Logout with the reason)", True,
     {}),
    ("post", "/sessions/{session}/disconnect", "Drop a session's connection (no Logout)", True,
     {}),
    ("post", "/sessions/{session}/sequence-numbers", "Set the next sequence numbers of a session "
     "that is not connected; confirm must repeat the session id", True,
     {"next_sender_seq": {"type": "integer", "minimum": 1, "maximum": 2**63 - 2**32},
      "next_target_seq": {"type": "integer", "minimum": 1, "maximum": 2**63 - 2**32},
      "confirm": {"type": "string"}}),
    ("post", "/sessions/{session}/enable", "Accept a session's Logons again", True, {}),
    ("post", "/sessions/{session}/disable", "Refuse a session's Logons (logs it out)", True, {}),
    ("post", "/sessions/hand-over", "Give a session to another node (hot standby)", True,
     {"session": {"type": "string"}, "to": {"type": "string", "nullable": True}}),
    ("get", "/orders", "Client orders the gateway works, filtered by ?session= &account= "
     "&venue= &symbol= &state=", True, None),
    ("get", "/orders/{order_id}", "One order (open, or as stored)", True, None),
    ("post", "/orders/{order_id}/cancel", "Cancel one open order", True, {}),
    ("post", "/orders/cancel", "Cancel every open order matching the filters; confirm must be "
     "the number that match", True,
     {"session": {"type": "string"}, "account": {"type": "string"},
      "venue": {"type": "string"}, "symbol": {"type": "string"}, "all": {"type": "boolean"},
      "confirm": {"type": "integer"}}),
    ("get", "/orders/{order_id}/routing", "The smart order router's decisions for an order",
     True, None),
    ("get", "/fills", "The last 50 fills", True, None),
    ("get", "/venues", "Each venue's state: stream, REST, ban, rate-limit usage", True, None),
    ("post", "/venues/{venue}/reconnect", "Renew a venue's private stream (it catches up after)",
     True, {}),
    ("get", "/kill-switch", "The engaged kill switches", True, None),
    ("post", "/kill-switch", "Engage or release the kill switch of a session or of all (*)",
     True, {"scope": {"type": "string"}, "engaged": {"type": "boolean"}}),
    ("get", "/balances", "Balances per venue (?venue= &asset=)", True, None),
    ("get", "/positions", "Positions from the fills (?session= &account= &venue= &symbol=)",
     True, None),
]


def _operation(summary: str, token: bool, body: dict[str, Any] | None) -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": summary,
        "responses": {"200": {"description": "done (JSON)"},
                      "400": {"description": "a bad request: {\"error\": \"...\"}"},
                      **({"401": {"description": "no valid bearer token"}} if token else {}),
                      "404": {"description": "no such session, order or venue"},
                      "409": {"description": "not now (says why)"}},
    }
    if not token:
        op["security"] = []
    if body is not None:
        props = dict(body) if "reason" in body else {**body, **REASON}
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": {
            "type": "object", "additionalProperties": False, "properties": props}}}}
    return op


def spec() -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for method, path, summary, token, body in ENDPOINTS:
        op = _operation(summary, token, body)
        params = [p.strip("{}") for p in path.split("/") if p.startswith("{")]
        if params:
            op["parameters"] = [{"name": p, "in": "path", "required": True,
                                 "schema": {"type": "string"}} for p in params]
        paths.setdefault(path, {})[method] = op
    return {
        "openapi": "3.0.3",
        "info": {"title": "fixgw admin API", "version": "1",
                 "description": "Operations of a fixgw gateway: health, metrics, sessions, "
                                "orders, venues, the kill switch. JSON in and out; errors are "
                                "{\"error\": \"...\"}."},
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "security": [{"bearer": []}],
        "paths": paths,
    }


SPEC = spec()
