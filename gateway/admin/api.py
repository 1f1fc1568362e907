"""The HTTP admin API: health, metrics, the dashboard, sessions, orders, venues and the kill
switch, for operators and risk desks (the README's "Operating fixgw" lists every endpoint;
``GET /openapi.json`` describes them, :mod:`.openapi`).

Configured with ``[admin]`` (host, port, token_env); absent, nothing listens. ``/livez``,
``/readyz``, ``/metrics``, ``/openapi.json`` and the dashboard's page answer without the token.
Every change (a session logged out, disconnected, renumbered, disabled, handed over; an order
cancelled; a venue reconnected; the kill switch) needs a reason and is logged with who asked
and why: one line (whitespace runs as one space), no control characters (400: a reason may
become the client's Text (58), where SOH separates fields), at most 200 characters. JSON in
and out:

* ``GET /kill-switch`` -> ``{"engaged": {scope: reason}}``: a scope is a session id
  (``FIX.4.4:GATEWAY->CLIENT1``) or ``*`` (every session).
* ``POST /kill-switch`` with ``{"scope": "*", "engaged": true, "reason": "..."}`` -> engages
  (new orders and replaces refused, every open order of the scope cancelled at its venue) or
  releases it; answers ``{"scope", "engaged", "cancelling"}`` once the state is stored, so it
  survives a restart. A scope engaged by the configuration (``kill_switch = true``) is engaged
  again at every start.
* ``GET /health`` -> sessions (logged on, open orders) and venues (up, or why not).
* ``GET /balances[?venue=V&asset=A]`` -> ``{"balances": [{venue, asset, total, free, locked,
  source, updated}]}`` as the gateway keeps them from each venue's account stream (``source``
  ``stream``, or ``rest`` for the figures last read over REST, ``updated`` their time in UTC
  ns), or as a venue that does not stream answers now (``source`` ``venue``); a venue that
  cannot answer is listed under ``errors``.
* ``GET /positions[?session=S&account=A&venue=V&symbol=X]`` -> ``{"positions": [...]}``: the
  positions computed from the gateway's fills (quantity, average entry, realized and
  unrealized PnL at the venue's last price, fees), and the adjustments made where a venue's
  own position differed (``adjustments``: venue, symbol, delta), and the net quantities across
  venues per canonical symbol and per base asset (``by_symbol``, ``by_asset``). Amounts are
  Decimal strings.
* ``POST /sessions/hand-over`` with ``{"session": "FIX.4.4:GATEWAY->CLIENT1", "to": "b",
  "reason": "..."}`` ->
  gives a session this node serves to node ``b`` (``null``: to whichever node a Logon reaches
  first), e.g. back to a node that was down: its client gets a Logout saying so and logs on at
  ``b``, which takes it over from the store. 404 when this node does not serve it, 409 when
  ``b`` is not running or an order of the session has a request in flight (try again).

With ``token_env``, every request must carry ``Authorization: Bearer <token>`` (compared in
constant time; the token is never logged). Bad requests get 400, an unknown scope 404, a
missing or wrong token 401, each with ``{"error": "..."}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import math
import re
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from aiohttp import web

from connectors.base import VenueError
from gateway.fix.message import fix_decimal
from gateway.orders.model import order_from_json
from gateway.store.errors import StoreUnavailable

from . import dashboard, openapi, views
from .metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from .venues import VenueWatch, parts
from .views import store_view

if TYPE_CHECKING:
    from gateway.orders.manager import OrderManager
    from gateway.positions.balance_book import BalanceBook
    from gateway.positions.book import Positions
    from gateway.server.acceptor import Acceptor

    from .metrics import Metrics

log = logging.getLogger("fixgw.admin")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
PUBLIC = frozenset({"/livez", "/readyz", "/metrics", "/openapi.json", "/", "/dashboard",
                    "/dashboard.js"})
"""Paths answered without the token: probes, the metrics, the API's description and the
dashboard's page (whose data it asks for with the token the operator types in)."""
MAX_BODY = 64 << 10
MAX_JSON_DEPTH = 8
"""Deeper nesting is refused before it is parsed (no request of this API nests at all; the
standard parser would recurse once per level and fail with RecursionError past ~1,000)."""


def json_depth_exceeds(text: str, limit: int) -> bool:
    """Whether ``text`` nests arrays or objects more than ``limit`` deep (strings skipped)."""
    depth = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > limit:
                return True
        elif ch in "]}":
            depth -= 1
    return False


MAX_SEQ_NUM = 2**63 - 2**32
"""The largest next MsgSeqNum an operator may set: the store keeps them as signed 64-bit
integers, and a session must still be able to count on from there."""
REASON_LENGTH = 200
"""A reason is cut to this many characters (as long as a FIX Text the client is sent)."""
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
"""Control characters (C0, DEL, C1): refused in a reason, which becomes a client's Text (58)
(SOH separates FIX fields) and part of an audit line."""


def _plain(v: Decimal) -> str:
    return fix_decimal(v).decode()


def _error(status: int, text: str) -> web.Response:
    return web.json_response({"error": text}, status=status)


class AdminServer:
    """The admin API over ``orders`` (and ``acceptor`` for the sessions' state)."""

    def __init__(
        self,
        orders: OrderManager,
        acceptor: Acceptor,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        token: str | None = None,
        positions: Positions | None = None,
        balances: BalanceBook | None = None,
        mark: Callable[[str, str], Decimal | None] | None = None,
        metrics: Metrics | None = None,
        venues: VenueWatch | None = None,
        store: Any = None,
    ) -> None:
        self._orders = orders
        self.metrics = metrics
        self.venues = venues if venues is not None else VenueWatch(orders.connectors, orders.down)
        self.store = store
        self._streams: set[web.StreamResponse] = set()
        self._balance_book = balances
        self._mark = mark
        self._positions = positions
        self._acceptor = acceptor
        self._host, self._port = host, port
        self._token = token.encode() if token else None
        self._runner: web.AppRunner | None = None
        self.hand_over: Callable[[str, str | None], Awaitable[None]] | None = None
        """Give a session to another node (gateway.app.Gateway.hand_over)."""

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._auth], client_max_size=MAX_BODY)
        r = app.router
        r.add_get("/livez", self._livez)
        r.add_get("/readyz", self._readyz)
        r.add_get("/metrics", self._metrics)
        r.add_get("/openapi.json", self._openapi)
        r.add_get("/", self._to_dashboard)
        r.add_get("/dashboard", self._dashboard)
        r.add_get("/dashboard.js", self._dashboard_js)
        r.add_get("/events", self._events)
        r.add_get("/sessions", self._get_sessions)
        r.add_post("/sessions/{session}/logout", self._post_logout)
        r.add_post("/sessions/{session}/disconnect", self._post_disconnect)
        r.add_post("/sessions/{session}/sequence-numbers", self._post_seqnums)
        r.add_post("/sessions/{session}/enable", self._post_enable)
        r.add_post("/sessions/{session}/disable", self._post_disable)
        r.add_get("/orders", self._get_orders)
        r.add_post("/orders/cancel", self._post_cancel_matching)
        r.add_get("/orders/{order_id}", self._get_order)
        r.add_post("/orders/{order_id}/cancel", self._post_cancel_order)
        r.add_get("/fills", self._get_fills)
        r.add_get("/venues", self._get_venues)
        r.add_post("/venues/{venue}/reconnect", self._post_reconnect)
        app.router.add_get("/kill-switch", self._get_kill_switch)
        app.router.add_post("/kill-switch", self._post_kill_switch)
        app.router.add_post("/sessions/hand-over", self._post_hand_over)
        app.router.add_get("/health", self._health)
        app.router.add_get("/balances", self._balances)
        app.router.add_get("/positions", self._get_positions)
        app.router.add_get("/orders/{order_id}/routing", self._get_routing)
        return app

    async def start(self) -> tuple[str, int]:
        """Listen; returns the address (the port is the one the OS chose when 0)."""
        runner = web.AppRunner(self.app(), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, self._host, self._port)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self.venues.start()
        await self.venues.refresh()
        server = site._server  # noqa: SLF001 - aiohttp keeps the bound socket there
        assert server is not None
        sock = server.sockets[0]  # type: ignore[attr-defined]
        host, port = sock.getsockname()[:2]
        return host, port  # said by whoever started it (fixgw run prints it once)

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        for resp in list(self._streams):  # the dashboards' event streams end with the API
            with contextlib.suppress(Exception):
                await resp.write_eof()
        await self.venues.stop()
        if runner is not None:
            await runner.cleanup()

    @web.middleware
    async def _auth(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if self._token is not None and request.path not in PUBLIC:
            given = request.headers.get("Authorization", "")
            scheme, _, token = given.partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(
                token.strip().encode(), self._token
            ):
                log.warning("admin API: refused %s %s from %s (no valid token)",
                            request.method, request.path, request.remote)
                return _error(401, "a valid bearer token is required")
        return await handler(request)

    async def _get_kill_switch(self, _request: web.Request) -> web.Response:
        return web.json_response({"engaged": self._orders.kill_switches()})

    async def _json_object(self, request: web.Request) -> dict[str, Any] | web.Response:
        """The request's body as a JSON object, or the 4xx answer saying why not."""
        try:
            text = await request.text()
        except web.HTTPRequestEntityTooLarge:
            return _error(413, f"the body is larger than {MAX_BODY} bytes")
        except UnicodeDecodeError:
            return _error(400, "the body must be JSON")
        if json_depth_exceeds(text, MAX_JSON_DEPTH):
            return _error(400, f"the body nests deeper than {MAX_JSON_DEPTH} levels")
        try:
            body: Any = json.loads(text)
        except (json.JSONDecodeError, RecursionError):
            return _error(400, "the body must be JSON")
        if not isinstance(body, dict):
            return _error(400, "the body must be a JSON object")
        return body

    async def _post_hand_over(self, request: web.Request) -> web.Response:
        change = await self._change(request, {"session", "to"}, frozenset({"session"}))
        if isinstance(change, web.Response):
            return change
        body, who = change
        session, to = body["session"], body.get("to")
        if not isinstance(session, str) or not session:
            return _error(400, "session must be a session id")
        if to is not None and (not isinstance(to, str) or not to):
            return _error(400, "to must be a node name, or null")
        if self.hand_over is None:
            return _error(404, "this gateway shares no store with other nodes")
        log.warning("admin API: %s: hand-over of %s to %s (why: %s)", who, session,
                    to or "any node", body["reason"])
        try:
            await self.hand_over(session, to)
        except KeyError:
            return _error(404, f"this node does not serve {session!r}")
        except LookupError as exc:
            return _error(409, str(exc))
        except RuntimeError as exc:
            return _error(409, str(exc))
        return web.json_response({"session": session, "to": to, "handed_over": True})

    async def _post_kill_switch(self, request: web.Request) -> web.Response:
        change = await self._change(request, {"scope", "engaged"}, frozenset({"scope", "engaged"}))
        if isinstance(change, web.Response):
            return change
        body, who = change
        scope, engaged, reason = body["scope"], body["engaged"], body["reason"]
        if not isinstance(scope, str) or not scope:
            return _error(400, 'scope must be a session id or "*"')
        if not isinstance(engaged, bool):
            return _error(400, "engaged must be true or false")
        log.warning("admin API: %s: kill switch of %s %s (why: %s)", who, scope,
                    "engaged" if engaged else "released", reason)
        try:
            cancelling = await self._orders.kill_switch(scope, engaged, reason)
        except KeyError:
            return _error(404, f"no session {scope!r} with order routing (or \"*\")")
        except Exception as exc:  # the store: in force now, but not kept across a restart
            log.exception("admin API: the kill switch of %s could not be stored", scope)
            state = "engaged" if engaged else "released"
            return _error(500, f"the kill switch of {scope} is {state} but could not be stored "
                               f"(it would not survive a restart): {type(exc).__name__}: {exc}")
        return web.json_response({"scope": scope, "engaged": engaged, "cancelling": cancelling})

    async def _balances(self, request: web.Request) -> web.Response:
        venue, asset = request.query.get("venue"), request.query.get("asset")
        connectors = self._orders.connectors
        if venue is not None and venue not in connectors:
            return _error(404, f"no venue {venue}")
        out: list[dict[str, Any]] = []
        errors: dict[str, str] = {}
        book = self._balance_book
        for name in sorted(connectors):
            if venue not in (None, name):
                continue
            try:
                balances = (await book.balances(name) if book is not None
                            else await connectors[name].balances())
            except VenueError as exc:
                errors[name] = f"{type(exc).__name__}: {exc}"
                continue
            held = book.held(name) if book is not None and book.streams(name) else {}
            for b in balances:
                if asset not in (None, b.asset):
                    continue
                h = held.get(b.asset)
                out.append({"venue": name, "asset": b.asset, "total": _plain(b.total),
                            "free": _plain(b.free), "locked": _plain(b.locked),
                            "source": h.source if h is not None else "venue",
                            "updated": h.ts_ns if h is not None else None})
        return web.json_response({"balances": out, "errors": errors})

    async def _get_routing(self, request: web.Request) -> web.Response:
        """The smart order router's decisions for an order, in order: what it saw (each
        venue's book, fee, balance), what it chose and why."""
        order_id = request.match_info["order_id"]
        store = self._orders.store
        try:
            if await store.load_order(order_id) is None:
                return _error(404, f"no order {order_id}")
            events = await store.order_events(order_id, "routed")
        except Exception as exc:  # the store is down: say so, as JSON
            log.warning("admin: routing of %s not read: %s", order_id, exc)
            return _error(503, f"the store cannot be read now: {type(exc).__name__}")
        return web.json_response({"order_id": order_id, "decisions": [
            {"event_id": e.event_id, "ts_ns": e.ts_ns, **e.data} for e in events]})

    async def _get_positions(self, request: web.Request) -> web.Response:
        if self._positions is None:
            return _error(404, "no positions here (no order path)")
        q = request.query
        out = []
        for p in sorted(self._positions.all(),
                        key=lambda p: (p.session_id, p.account, p.venue, p.symbol)):
            if (q.get("session") not in (None, p.session_id) or q.get("account") not in (
                    None, p.account) or q.get("venue") not in (None, p.venue)
                    or q.get("symbol") not in (None, p.symbol)):
                continue
            if self._mark is not None:
                mark = self._mark(p.venue, p.symbol)
            else:
                conn = self._orders.connectors.get(p.venue)
                mark = conn.last_price(p.symbol) if conn is not None else None
            unrealized = p.unrealized(mark)
            out.append({
                "session": p.session_id, "account": p.account, "venue": p.venue,
                "symbol": p.symbol, "quantity": _plain(p.quantity),
                "avg_price": _plain(p.avg_price), "realized_pnl": _plain(p.realized),
                "mark": None if mark is None else _plain(mark),
                "unrealized_pnl": None if unrealized is None else _plain(unrealized),
                "fees": {c: _plain(v) for c, v in sorted(p.fees.items())}, "fills": p.fills,
            })
        adjustments = [{"venue": v, "symbol": s, "delta": _plain(d)}
                       for (v, s), d in sorted(self._positions.adjustments.items())]
        # across venues (and the sessions listed): per canonical symbol and per base asset
        by_symbol: dict[str, Decimal] = {}
        by_asset: dict[str, Decimal] = {}
        for row in out:
            qty = Decimal(str(row["quantity"]))
            symbol = str(row["symbol"])
            by_symbol[symbol] = by_symbol.get(symbol, Decimal(0)) + qty
            asset = symbol.partition("/")[0]
            by_asset[asset] = by_asset.get(asset, Decimal(0)) + qty
        return web.json_response({
            "positions": out, "adjustments": adjustments,
            "by_symbol": {k: _plain(v) for k, v in sorted(by_symbol.items())},
            "by_asset": {k: _plain(v) for k, v in sorted(by_asset.items())}})

    async def _health(self, _request: web.Request) -> web.Response:
        """Every configured session (logged on or not), every venue's real state, the store
        and the kill switch."""
        open_by_session: dict[str, int] = {}
        for o in self._orders.book.client_orders():
            if o.is_open:
                open_by_session[o.session_id] = open_by_session.get(o.session_id, 0) + 1
        sessions = {row["session"]: {**row, "open_orders": open_by_session.get(row["session"], 0)}
                    for row in self._acceptor.sessions_state()}
        venues = {n: v.as_json() for n, v in sorted(self.venues.states.items())}
        store = store_view(self.store)
        ready, why = self._readiness()
        status = "ok" if ready and all(v["up"] for v in venues.values()) else (
            "degraded" if ready else "down")
        return web.json_response({"status": status, "why": why, "store": store,
                                  "sessions": sessions, "venues": venues,
                                  "kill_switch": self._orders.kill_switches()})

    # ---------------------------------------------------------------------------------------
    # probes and metrics (no token)

    def _readiness(self) -> tuple[bool, list[str]]:
        why = []
        if not getattr(self.store, "available", True):
            why.append(f"store unavailable: {getattr(self.store, 'unavailable_reason', '')}")
        states = self.venues.states
        if states and not any(v.up for v in states.values()):
            why.append("every venue is down: " + "; ".join(
                f"{n}: {v.detail}" for n, v in sorted(states.items())))
        return not why, why

    async def _livez(self, _request: web.Request) -> web.Response:
        return web.json_response({"status": "alive"})

    async def _readyz(self, _request: web.Request) -> web.Response:
        """200 while the gateway can take orders: the store takes writes and a venue is up;
        503 saying why otherwise (a load balancer's readiness probe)."""
        ready, why = self._readiness()
        return web.json_response({"ready": ready, "why": why}, status=200 if ready else 503)

    async def _metrics(self, _request: web.Request) -> web.Response:
        if self.metrics is None:
            return _error(404, "no metrics here")
        return web.Response(body=self.metrics.exposition(),
                            headers={"Content-Type": METRICS_CONTENT_TYPE})

    async def _openapi(self, _request: web.Request) -> web.Response:
        return web.json_response(openapi.SPEC)

    async def _to_dashboard(self, _request: web.Request) -> web.Response:
        raise web.HTTPFound("/dashboard")

    async def _dashboard(self, _request: web.Request) -> web.Response:
        return web.Response(text=dashboard.page(), content_type="text/html",
                            headers={"Cache-Control": "no-store",
                                     "Content-Security-Policy": dashboard.CSP})

    async def _dashboard_js(self, _request: web.Request) -> web.Response:
        return web.Response(text=dashboard.script(), content_type="text/javascript",
                            headers={"Cache-Control": "no-store"})

    # ---------------------------------------------------------------------------------------
    # what the dashboard and an operator read

    def snapshot(self) -> dict[str, Any]:
        fills = self.metrics.recent_fills if self.metrics is not None else ()
        return views.snapshot(self._acceptor, self._orders, self.venues.states, fills,
                              self.store)

    async def _events(self, request: web.Request) -> web.StreamResponse:
        """Server-sent events: a ``snapshot`` of everything the dashboard shows, now and
        every ``interval`` seconds (default 1) until the client goes."""
        try:
            interval = float(request.query.get("interval", "1"))
        except ValueError:
            interval = math.nan
        if not math.isfinite(interval):  # (nan passes any clamp: every comparison is false)
            return _error(400, "interval must be a number of seconds")
        interval = min(max(interval, 0.2), 60.0)
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                           "Cache-Control": "no-store"})
        await resp.prepare(request)
        self._streams.add(resp)
        try:
            while self._runner is not None:
                data = json.dumps(self.snapshot())
                await resp.write(f"event: snapshot\ndata: {data}\n\n".encode())
                await asyncio.sleep(interval)
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self._streams.discard(resp)
        return resp

    async def _get_sessions(self, _request: web.Request) -> web.Response:
        return web.json_response({"sessions": self._acceptor.sessions_state()})

    async def _get_orders(self, request: web.Request) -> web.Response:
        q = request.query
        unknown = sorted(set(q) - {"session", "account", "venue", "symbol", "state"})
        if unknown:
            return _error(400, f"unknown filter(s): {', '.join(unknown)}")
        if q.get("state") not in (None, *views.ORDER_STATES):
            return _error(400, f"state must be one of {', '.join(views.ORDER_STATES)}")
        found = views.select_orders(self._orders.book.client_orders(), q)
        return web.json_response({"orders": [views.order_view(o) for o in found]})

    async def _get_order(self, request: web.Request) -> web.Response:
        order_id = request.match_info["order_id"]
        o = self._orders.book.orders.get(order_id)
        if o is None:
            snapshot = await self._orders.store.load_order(order_id)
            if snapshot is None:
                return _error(404, f"no order {order_id}")
            o = order_from_json(snapshot)
        return web.json_response(views.order_view(o))

    async def _get_fills(self, _request: web.Request) -> web.Response:
        fills = self.metrics.recent_fills if self.metrics is not None else ()
        return web.json_response({"fills": [views.fill_view(f) for f in fills]})

    async def _get_venues(self, _request: web.Request) -> web.Response:
        states = await self.venues.refresh()
        return web.json_response({"venues": {n: v.as_json() for n, v in sorted(states.items())}})

    # ---------------------------------------------------------------------------------------
    # changes: each needs a reason, and is logged with who asked and why

    async def _change(self, request: web.Request, allowed: set[str],
                      required: frozenset[str] = frozenset(),
                      ) -> tuple[dict[str, Any], str] | web.Response:
        """The body of a change (JSON object, keys in ``allowed``, ``reason`` required) and who
        asked (the ``X-Operator`` header, else the address)."""
        body = await self._json_object(request)
        if isinstance(body, web.Response):
            return body
        unknown = sorted(set(body) - allowed - {"reason"})
        if unknown:
            return _error(400, f"unknown key(s): {', '.join(unknown)}")
        reason = body.get("reason")
        if not isinstance(reason, str) or not reason.strip():
            return _error(400, "reason is required: say why (it is logged)")
        reason = " ".join(reason.split())  # one line (a newline would forge an audit line)
        if CONTROL.search(reason):  # SOH would split the client's Text (58) into fields
            return _error(400, "reason must be text: no control characters")
        body["reason"] = reason[:REASON_LENGTH]
        missing = sorted(k for k in required if k not in body)
        if missing:
            return _error(400, f"missing: {', '.join(missing)}")
        who = CONTROL.sub("?", " ".join(request.headers.get("X-Operator", "").split())[:64])
        return body, f"{who or 'an operator'} from {request.remote}"

    def _session_id(self, request: web.Request) -> str | web.Response:
        """The session named in the path: its id, or a configured TargetCompID."""
        name = request.match_info["session"]
        rows = self._acceptor.sessions_state()
        for row in rows:
            if row["session"] == name:
                return name
        matches = [row["session"] for row in rows if row["target_comp_id"] == name]
        if len(matches) == 1:
            return str(matches[0])
        return _error(404, f"no session {name!r}")

    async def _post_logout(self, request: web.Request) -> web.Response:
        sid = self._session_id(request)
        if isinstance(sid, web.Response):
            return sid
        change = await self._change(request, set())
        if isinstance(change, web.Response):
            return change
        body, who = change
        log.warning("admin API: %s: logout of %s (why: %s)", who, sid, body["reason"])
        try:
            await self._acceptor.logout_session(sid, f"logged out by an operator: "
                                                     f"{body['reason']}")
        except LookupError as exc:
            return _error(409, str(exc))
        return web.json_response({"session": sid, "logging_out": True})

    async def _post_disconnect(self, request: web.Request) -> web.Response:
        sid = self._session_id(request)
        if isinstance(sid, web.Response):
            return sid
        change = await self._change(request, set())
        if isinstance(change, web.Response):
            return change
        body, who = change
        log.warning("admin API: %s: disconnect of %s (why: %s)", who, sid, body["reason"])
        try:
            self._acceptor.disconnect_session(sid, f"disconnected by an operator: "
                                                   f"{body['reason']}")
        except LookupError as exc:
            return _error(409, str(exc))
        return web.json_response({"session": sid, "disconnected": True})

    async def _post_seqnums(self, request: web.Request) -> web.Response:
        """Set the next sequence numbers; the body must repeat the session id in ``confirm``
        (a mistyped number desynchronises the client)."""
        sid = self._session_id(request)
        if isinstance(sid, web.Response):
            return sid
        change = await self._change(request, {"next_sender_seq", "next_target_seq", "confirm"})
        if isinstance(change, web.Response):
            return change
        body, who = change
        numbers = {k: body.get(k) for k in ("next_sender_seq", "next_target_seq")}
        if all(v is None for v in numbers.values()):
            return _error(400, "give next_sender_seq and/or next_target_seq")
        for k, v in numbers.items():
            if v is not None and (isinstance(v, bool) or not isinstance(v, int)
                                  or not 1 <= v <= MAX_SEQ_NUM):
                return _error(400, f"{k} must be a whole number from 1 to {MAX_SEQ_NUM}")
        if body.get("confirm") != sid:
            return _error(409, f"confirm: repeat the session id ({sid!r}) in \"confirm\" to set "
                               "its sequence numbers (the client must expect the same)")
        log.warning("admin API: %s: sequence numbers of %s set to %s (why: %s)", who, sid,
                    numbers, body["reason"])
        try:
            sender, target = await self._acceptor.set_sequence_numbers(
                sid, numbers["next_sender_seq"], numbers["next_target_seq"])
        except StoreUnavailable as exc:  # nothing changed: the session keeps its numbers
            return _error(503, f"the store cannot take them now (nothing changed): {exc}")
        except RuntimeError as exc:
            return _error(409, str(exc))
        return web.json_response({"session": sid, "next_sender_seq": sender,
                                  "next_target_seq": target})

    async def _enable(self, request: web.Request, enabled: bool) -> web.Response:
        sid = self._session_id(request)
        if isinstance(sid, web.Response):
            return sid
        change = await self._change(request, set())
        if isinstance(change, web.Response):
            return change
        body, who = change
        log.warning("admin API: %s: session %s %s (why: %s)", who, sid,
                    "enabled" if enabled else "disabled", body["reason"])
        try:
            await self._acceptor.set_enabled(sid, enabled, body["reason"])
        except RuntimeError as exc:
            return _error(409, str(exc))
        return web.json_response({"session": sid, "enabled": enabled})

    async def _post_enable(self, request: web.Request) -> web.Response:
        return await self._enable(request, True)

    async def _post_disable(self, request: web.Request) -> web.Response:
        return await self._enable(request, False)

    async def _post_cancel_order(self, request: web.Request) -> web.Response:
        order_id = request.match_info["order_id"]
        change = await self._change(request, set())
        if isinstance(change, web.Response):
            return change
        body, who = change
        o = self._orders.book.orders.get(order_id)
        if o is None or o.parent_id is not None:
            if o is None and await self._orders.store.load_order(order_id) is not None:
                return _error(409, f"order {order_id} is not open")
            return _error(404, f"no open client order {order_id}")
        if not o.is_open:
            return _error(409, f"order {order_id} is {o.status.name.lower()}")
        log.warning("admin API: %s: cancel of order %s (%s, ClOrdID %s) (why: %s)", who,
                    order_id, o.session_id, o.cl_ord_id, body["reason"])
        self._orders.cancels.cancel([o], f"canceled by an operator: {body['reason']}")
        return web.json_response({"order_id": order_id, "cancelling": True})

    async def _post_cancel_matching(self, request: web.Request) -> web.Response:
        """Cancel every open order that matches ``session``, ``account``, ``venue``, ``symbol``
        (at least one, or ``"all": true``); ``confirm`` must be the number of orders that
        match (``GET /orders`` with the same filters tells it)."""
        filters = {"session", "account", "venue", "symbol"}
        change = await self._change(request, filters | {"all", "confirm"})
        if isinstance(change, web.Response):
            return change
        body, who = change
        q = {k: body[k] for k in filters if k in body}
        if any(not isinstance(v, str) for v in q.values()):
            return _error(400, "filters are strings")
        if not q and body.get("all") is not True:
            return _error(400, 'give a filter (session, account, venue, symbol) or "all": true')
        found = views.select_orders((o for o in self._orders.book.client_orders() if o.is_open),
                                    q)
        confirm = body.get("confirm")
        if isinstance(confirm, bool) or not isinstance(confirm, int) or confirm != len(found):
            # (a count: true == 1 and 1.0 == 1 in Python)
            return _error(409, f"{len(found)} open orders match: repeat with \"confirm\": "
                               f"{len(found)} to cancel them")
        log.warning("admin API: %s: cancel of %d orders matching %s (why: %s)", who,
                    len(found), q or "all", body["reason"])
        self._orders.cancels.cancel(found, f"canceled by an operator: {body['reason']}")
        return web.json_response({"cancelling": len(found),
                                  "orders": [o.order_id for o in found]})

    async def _post_reconnect(self, request: web.Request) -> web.Response:
        venue = request.match_info["venue"]
        conn = self._orders.connectors.get(venue)
        if conn is None:
            return _error(404, f"no venue {venue}")
        change = await self._change(request, set())
        if isinstance(change, web.Response):
            return change
        body, who = change
        streams = parts(conn)[0]
        if not streams:
            return _error(409, f"venue {venue} has no connection of its own to renew")
        log.warning("admin API: %s: reconnect of venue %s (why: %s)", who, venue, body["reason"])
        closed = [await st.reconnect() for st in streams]
        return web.json_response({"venue": venue, "reconnecting": sum(closed)})
