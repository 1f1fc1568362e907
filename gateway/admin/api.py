"""The HTTP admin API: the kill switch and the gateway's health, for operators and risk desks.

Configured with ``[admin]`` (host, port, token_env); absent, nothing listens. JSON in and out:

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
* ``POST /sessions/hand-over`` with ``{"session": "FIX.4.4:GATEWAY->CLIENT1", "to": "b"}`` ->
  gives a session this node serves to node ``b`` (``null``: to whichever node a Logon reaches
  first), e.g. back to a node that was down: its client gets a Logout saying so and logs on at
  ``b``, which takes it over from the store. 404 when this node does not serve it, 409 when
  ``b`` is not running or an order of the session has a request in flight (try again).

With ``token_env``, every request must carry ``Authorization: Bearer <token>`` (compared in
constant time; the token is never logged). Bad requests get 400, an unknown scope 404, a
missing or wrong token 401, each with ``{"error": "..."}``.
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from aiohttp import web

from connectors.base import VenueError
from gateway.fix.message import fix_decimal

if TYPE_CHECKING:
    from gateway.orders.manager import OrderManager
    from gateway.positions.balance_book import BalanceBook
    from gateway.positions.book import Positions
    from gateway.server.acceptor import Acceptor

log = logging.getLogger("fixgw.admin")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
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
    ) -> None:
        self._orders = orders
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
        server = site._server  # noqa: SLF001 - aiohttp keeps the bound socket there
        assert server is not None
        sock = server.sockets[0]  # type: ignore[attr-defined]
        host, port = sock.getsockname()[:2]
        log.info("admin API on http://%s:%d", host, port)
        return host, port

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    @web.middleware
    async def _auth(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if self._token is not None:
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
        body = await self._json_object(request)
        if isinstance(body, web.Response):
            return body
        session, to = body.get("session"), body.get("to")
        if not isinstance(session, str) or not session:
            return _error(400, "session must be a session id")
        if to is not None and (not isinstance(to, str) or not to):
            return _error(400, "to must be a node name, or null")
        unknown = sorted(set(body) - {"session", "to"})
        if unknown:
            return _error(400, f"unknown key(s): {', '.join(unknown)}")
        if self.hand_over is None:
            return _error(404, "this gateway shares no store with other nodes")
        log.warning("admin API: hand-over of %s to %s by %s", session, to or "any node",
                    request.remote)
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
        body = await self._json_object(request)
        if isinstance(body, web.Response):
            return body
        scope, engaged, reason = body.get("scope"), body.get("engaged"), body.get("reason", "")
        if not isinstance(scope, str) or not scope:
            return _error(400, 'scope must be a session id or "*"')
        if not isinstance(engaged, bool):
            return _error(400, "engaged must be true or false")
        if not isinstance(reason, str):
            return _error(400, "reason must be a string")
        unknown = sorted(set(body) - {"scope", "engaged", "reason"})
        if unknown:
            return _error(400, f"unknown key(s): {', '.join(unknown)}")
        log.warning("admin API: kill switch of %s %s by %s", scope,
                    "engaged" if engaged else "released", request.remote)
        try:
            cancelling = await self._orders.kill_switch(scope, engaged, reason[:200])
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
        open_by_session: dict[str, int] = {}
        for o in self._orders.book.client_orders():
            if o.is_open:
                open_by_session[o.session_id] = open_by_session.get(o.session_id, 0) + 1
        sessions = {
            sid: {"logged_on": on, "open_orders": open_by_session.get(sid, 0)}
            for sid, on in sorted(self._acceptor.logged_on().items())
        }
        venues = {name: ("down: " + self._orders.down[name]) if name in self._orders.down
                  else "up" for name in sorted(self._orders.connectors)}
        return web.json_response({"sessions": sessions, "venues": venues,
                                  "kill_switch": self._orders.kill_switches()})
