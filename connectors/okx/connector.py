"""The OKX connector (API v5): spot and USDT-margined linear perpetual swaps.

REST for order entry, queries and reconciliation, the private WebSocket ``orders`` channel for
order updates and fills (and ``account`` for the balances), and OKX's "Cancel All After" as the
dead-man switch. Last prices (for the gateway's pre-trade checks) come from polling "Market Data
/ Get tickers" in the background and from our own fills, whichever the venue stamped later.

Quantities: our quantities are base units; OKX swaps trade in contracts of ``ctVal`` base units
(BTC-USDT-SWAP: 0.01 BTC), so a swap's ``sz`` is ``quantity / ctVal`` and every size OKX reports
for a swap is multiplied back by ``ctVal``. Instrument lot and minimum sizes are reported in base
units accordingly. Spot market orders are sent with ``tgtCcy=base_ccy`` (OKX's default for a spot
market *buy* is a quote amount).

OKX publishes no minimum notional for spot or swaps (only ``minSz``), so ``min_notional`` is 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import math
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar
from urllib.parse import urlencode

import msgspec

from connectors.base import (
    AmendRequest,
    Balance,
    Capabilities,
    ClientOrderIdRules,
    Health,
    Instrument,
    MarketEvent,
    OrderAccepted,
    OrderAmended,
    OrderCanceled,
    OrderFilled,
    OrderRequest,
    OrderState,
    OrderType,
    Position,
    RejectReason,
    TimeInForce,
    VenueAmbiguous,
    VenueError,
    VenueInfo,
    VenueRejected,
    VenueUnavailable,
)
from connectors.common.http import Prepared, RestClient, RestResponse
from connectors.common.marketfeed import PublicFeed, run_feed
from connectors.common.ratelimit import Priority, RateLimiter, WindowSpec
from connectors.common.settings import VenueSettings
from connectors.common.stream import PingPolicy, StreamError, Ws, WsStream
from connectors.common.venue import (
    MS,
    StreamingConnector,
    dec,
    dec_or_zero,
    ms_to_ns,
    nothing_placed,
    plain,
)
from connectors.okx import errors, schemas
from connectors.okx.book import BookSync
from connectors.okx.signing import iso_timestamp, sign, ws_login_sign

log = logging.getLogger(__name__)

REST_URL = "https://openapi.okx.com"
"""docs-v5 "Overview / Production Trading Services" (2026; earlier revisions named
https://www.okx.com). US/AU and EEA accounts must use us.okx.com / eea.okx.com instead
(docs-v5 "Overview"): set ``urls["rest"]``. Demo trading uses the same REST host with the header
``x-simulated-trading: 1`` ("Overview / Demo Trading Services")."""
WS_PRIVATE_URL = "wss://ws.okx.com:8443/ws/v5/private"
WS_PRIVATE_DEMO_URL = "wss://wspap.okx.com:8443/ws/v5/private"
"""Private WebSocket of production / demo trading (docs-v5 "Overview / ... Trading Services")."""
WS_PUBLIC_URL = "wss://ws.okx.com:8443/ws/v5/public"
WS_PUBLIC_DEMO_URL = "wss://wspap.okx.com:8443/ws/v5/public"
"""Public WebSocket (``books``, ``trades``) of production / demo trading; ``urls["ws_public"]``
overrides it."""

CLIENT_ORDER_ID_RULES = ClientOrderIdRules(32, r"^[a-zA-Z0-9]{1,32}$")
"""docs-v5 "Trade / POST Place order": clOrdId is "a combination of case-sensitive alphanumerics,
all numbers, or all letters of up to 32 characters". It must be unique among the account's
*pending* orders only: once an order is filled or canceled its clOrdId may be reused, and
"Get order details" then returns the latest order with it."""

CAPABILITIES = Capabilities(
    order_types=frozenset({OrderType.MARKET, OrderType.LIMIT}),
    time_in_force=frozenset({TimeInForce.GTC, TimeInForce.IOC, TimeInForce.FOK}),
    post_only=True,
    reduce_only=True,
    amend=True,
    bulk_cancel=True,
    batch_place=True,
    market_data=True,
    balance_stream=True,  # the private ``account`` channel
)

PER_INSTRUMENT = (("order", 60, 2.0), ("cancel", 60, 2.0), ("amend", 60, 2.0),
                  ("batch", 300, 2.0), ("cancel_batch", 300, 2.0), ("order_query", 60, 2.0))
"""Windows per instrument, named ``"<kind>:<instId>"`` (added as instruments load).

Each number is the "Rate Limit:" line of the endpoint's docs-v5 section, with its "Rate limit
rule" (www.okx.com/docs-v5/en/, snapshot of 2026-06):

- ``order``: "Trade / POST Place order", 60 requests per 2 s, User ID + Instrument ID.
- ``cancel``: "Trade / POST Cancel order", 60 requests per 2 s, User ID + Instrument ID.
- ``amend``: "Trade / POST Amend order", 60 requests per 2 s, User ID + Instrument ID.
- ``batch``: "Trade / POST Place multiple orders", 300 *orders* per 2 s, User ID + Instrument ID;
  a batch of one order counts against ``order`` instead ("Overview / Rate Limits / Trading-related
  APIs"), so each order of a batch costs 1 on its own instrument's window.
- ``cancel_batch``: "Trade / POST Cancel multiple orders", 300 orders per 2 s, same rule.
- ``order_query``: "Trade / GET Order details", 60 requests per 2 s, User ID + Instrument ID.
"""
WINDOWS = (
    WindowSpec("time", 10, 2.0),
    WindowSpec("instruments:SPOT", 20, 2.0),
    WindowSpec("instruments:SWAP", 20, 2.0),
    WindowSpec("orders_pending", 60, 2.0),
    WindowSpec("fills", 60, 2.0),
    WindowSpec("fills_history", 10, 2.0),
    WindowSpec("balance", 10, 2.0),
    WindowSpec("positions", 10, 2.0),
    WindowSpec("cancel_all_after", 1, 1.0),
    WindowSpec("sub_account", 1000, 2.0),
    WindowSpec("tickers", 20, 2.0),
)
"""Account-wide windows (docs-v5 "Rate Limit:" line of each section, snapshot of 2026-06):

- ``time``: "Public Data / GET System time", 10 requests per 2 s per IP.
- ``instruments:<instType>``: "Public Data / GET Instruments", 20 requests per 2 s per IP +
  instrument type.
- ``orders_pending``: "Trade / GET Order List", 60 requests per 2 s per User ID.
- ``fills``: "Trade / GET Transaction details (last 3 days)", 60 requests per 2 s per User ID.
- ``fills_history``: "Trade / GET Transaction details (last 3 months)", 10 requests per 2 s.
- ``balance``: "Trading Account / GET Balance", 10 requests per 2 s per User ID.
- ``positions``: "Trading Account / GET Positions", 10 requests per 2 s per User ID.
- ``cancel_all_after``: "Trade / POST Cancel All After", 1 request per second, User ID + tag.
- ``sub_account``: "Overview / Rate Limits / Sub-account rate limit", 1000 new and amended orders
  per 2 s per (sub-)account, each order of a batch counted (error 50061).
- ``tickers``: "Order Book Trading / Market Data / GET Tickers", 20 requests per 2 s per IP (all
  instTypes together).
"""
BATCH_MAX = 20
"""At most 20 orders per batch-orders / cancel-batch-orders request."""
PAGE = 100
FILLS_RECENT_MS = 3 * 86_400_000 - 3_600_000
"""/trade/fills covers the last 3 days (an hour's margin); older needs /trade/fills-history."""

E = TypeVar("E")


@dataclass(frozen=True, slots=True)
class _Inst:
    instrument: Instrument
    inst_type: str
    ct_val: Decimal | None


def _batch_costs(kind: str, single: str, items: Sequence[Mapping[str, object]],
                 also: str | None = None) -> dict[str, int]:
    """Rate-limit costs of a batch request: one per order on its instrument's ``kind`` window,
    or on the ``single`` window for a batch of one ("Overview / Rate Limits / Trading-related
    APIs"); ``also`` names an account window every order counts against."""
    name = kind if len(items) > 1 else single
    costs: dict[str, int] = {}
    for item in items:
        key = f"{name}:{item['instId']}"
        costs[key] = costs.get(key, 0) + 1
    if also is not None:
        costs[also] = len(items)
    return costs


def _refused(what: str, code: str, msg: str) -> VenueRejected:
    return VenueRejected(errors.reason_for(code, msg), f"OKX {what}: {code} {msg}")


def _check(env: schemas.Envelope[Any], what: str) -> None:
    """Refuse an answer whose envelope ``code`` is not "0" (list and account endpoints)."""
    if env.code != "0":
        raise _refused(what, env.code, env.msg)


class OkxConnector(StreamingConnector):
    """See the module doc. Venue options come from :class:`VenueSettings` (``urls`` keys:
    ``rest``, ``ws_private``; ``testnet`` selects OKX demo trading)."""

    DEAD_MAN_MIN_S = 10
    DEAD_MAN_MAX_S = 120
    """Cancel All After accepts a timeOut of 0 (off) or 10..120 s."""
    PRICE_POLL_S = 5.0
    """Seconds between two ticker polls (one request per instType loaded: far below the
    20 requests / 2 s of "Get tickers")."""

    def __init__(self, settings: VenueSettings) -> None:
        super().__init__()
        self.settings = settings
        self.info = VenueInfo(name=settings.name, capabilities=CAPABILITIES,
                              client_order_id_rules=CLIENT_ORDER_ID_RULES)
        creds = settings.credentials
        if not creds.secret or not creds.passphrase:
            raise ValueError(f"{settings.name}: OKX needs an API key, secret and passphrase")
        self._rest_url = settings.urls.get("rest", REST_URL)
        self._ws_url = settings.urls.get(
            "ws_private", WS_PRIVATE_DEMO_URL if settings.testnet else WS_PRIVATE_URL)
        self._ws_public_url = settings.urls.get(
            "ws_public", WS_PUBLIC_DEMO_URL if settings.testnet else WS_PUBLIC_URL)
        self.md_feeds: dict[str, PublicFeed] = {}
        """The public feeds being read, by symbol (one per :meth:`market_data` call)."""
        self.limiter = RateLimiter(WINDOWS)
        self.rest = RestClient(self._rest_url, name=settings.name, limiter=self.limiter,
                               timeout_s=settings.request_timeout_s,
                               max_429_wait_s=settings.max_429_wait_s)
        self.offset_ms = 0
        """Venue clock minus ours, measured at start against /api/v5/public/time."""
        self._by_symbol: dict[str, _Inst] = {}
        self._by_inst_id: dict[str, _Inst] = {}
        self._last: dict[str, schemas.LastPrice] = {}
        """Canonical symbol -> the last price and the venue's time of it (ticker or fill)."""
        self._stream: WsStream | None = None
        self._dead_man: asyncio.Task[None] | None = None
        self._prices: asyncio.Task[None] | None = None
        self.dead_man_refreshes = 0
        self._rtt_ms: float | None = None

    # ---- signing and requests --------------------------------------------------------------

    def now_ms(self) -> int:
        return time.time_ns() // MS + self.offset_ms

    def _prepare(self, method: str, path: str, params: Mapping[str, str] | None,
                 body: Any, signed: bool) -> Prepared:
        query = urlencode(params) if params else ""
        text = msgspec.json.encode(body).decode() if body is not None else ""
        headers: dict[str, str] = {"Content-Type": "application/json"}
        if self.settings.testnet:
            headers["x-simulated-trading"] = "1"
        if signed:
            creds = self.settings.credentials
            ts = iso_timestamp(self.now_ms())
            target = path + (f"?{query}" if query else "")
            headers.update({
                "OK-ACCESS-KEY": creds.api_key,
                "OK-ACCESS-SIGN": sign(creds.secret, ts, method, target, text),
                "OK-ACCESS-TIMESTAMP": ts,
                "OK-ACCESS-PASSPHRASE": creds.passphrase or "",
            })
        return Prepared(method, path, query, text.encode() if text else None, headers)

    async def _call(
        self, method: str, path: str, decoder: msgspec.json.Decoder[schemas.Envelope[E]], *,
        params: Mapping[str, str] | None = None, body: Any = None,
        cost: str | Mapping[str, int],
        priority: Priority = Priority.BACKGROUND, mutating: bool = False, signed: bool = True,
    ) -> tuple[RestResponse, schemas.Envelope[E]]:
        costs = {cost: 1} if isinstance(cost, str) else dict(cost)
        for attempt in (1, 2):
            resp = await self.rest.send(
                lambda: self._prepare(method, path, params, body, signed),
                costs=costs, priority=priority, mutating=mutating,
            )
            if attempt == 1 and signed and resp.status != 200 and (
                b'"50102"' in resp.body  # "Timestamp request expired": refused, not executed
            ):
                log.warning("%s: OKX says our timestamp expired; measuring the clock again",
                            self.name)
                await self.sync_time()
                continue
            break
        try:
            env = decoder.decode(resp.body)
        except msgspec.DecodeError:
            head = schemas.ERROR.decode(resp.body) if resp.body.startswith(b"{") else None
            if head is not None and head.code != "0":
                raise VenueRejected(errors.reason_for(head.code, head.msg),
                                    f"OKX {head.code}: {head.msg}") from None
            raise VenueUnavailable(f"{self.name}: {method} {path}: unreadable answer "
                                   f"(HTTP {resp.status}) {resp.body[:200]!r}") from None
        if resp.status != 200 and not env.data:
            raise VenueRejected(errors.reason_for(env.code, env.msg),
                                f"OKX {env.code}: {env.msg} (HTTP {resp.status})")
        return resp, env

    @staticmethod
    def _ack(env: schemas.Envelope[schemas.OrderAck], what: str) -> schemas.OrderAck:
        if not env.data:
            raise _refused(what, env.code, env.msg)
        ack = env.data[0]
        if ack.sCode != "0":
            raise _refused(what, ack.sCode, ack.sMsg)
        return ack

    def _inst(self, symbol: str) -> _Inst:
        inst = self._by_symbol.get(symbol)
        if inst is None:
            raise VenueRejected(RejectReason.UNKNOWN_SYMBOL, f"{self.name}: no symbol {symbol!r}")
        return inst

    def _inst_types(self) -> list[str]:
        """The OKX instTypes of the instruments loaded (SPOT, SWAP)."""
        return sorted({e.inst_type for e in self._by_symbol.values()})

    def _sz(self, inst: _Inst, quantity: Decimal) -> str:
        if inst.ct_val is None:
            return plain(quantity)
        return plain(quantity / inst.ct_val)

    # ---- lifecycle ----------------------------------------------------------------------------

    async def sync_time(self) -> int:
        """Measure the venue clock's offset (docs-v5 "Public Data / Get system time")."""
        before = time.time_ns() // 1_000_000
        _, env = await self._call("GET", "/api/v5/public/time", schemas.TIME, cost="time",
                                  signed=False)
        after = time.time_ns() // 1_000_000
        if not env.data:
            raise VenueUnavailable(f"{self.name}: no server time")
        self.offset_ms = int(env.data[0].ts) - (before + after) // 2
        self._rtt_ms = float(after - before)
        return self.offset_ms

    async def start(self) -> None:
        await self.sync_time()
        await self.load_instruments()
        self._stream = WsStream(
            self._ws_url, name=f"{self.name}-private", on_open=self._on_open,
            on_message=self._on_message, on_reconnected=self.after_reconnect,
            ping=PingPolicy(20.0, lambda: "ping"),
            idle_timeout_s=self.settings.stream_idle_timeout_s,
        )
        self._stream.backoff.base = self.settings.reconnect_base_s
        self._stream.backoff.cap = self.settings.reconnect_cap_s
        await self._stream.start()
        if self.settings.dead_man_s:
            await self.refresh_dead_man()
            self._dead_man = asyncio.create_task(self._dead_man_loop(),
                                                 name=f"{self.name}-dead-man")
        await self._poll_prices_quietly()  # prices known as soon as we are up
        self._prices = asyncio.create_task(self._price_loop(), name=f"{self.name}-prices")

    async def close(self) -> None:
        """Stop; the dead-man switch is disabled (timeOut 0), so orders stay as they are."""
        if self._dead_man is not None:
            self._dead_man.cancel()
            self._dead_man = None
            with contextlib.suppress(Exception):
                await self._set_cancel_all_after(0)
        await self.kill()

    async def kill(self) -> None:
        """Drop every task and connection without a word to the venue (what a crash does; the
        dead-man switch then fires). For tests and emergencies."""
        if self._dead_man is not None:
            self._dead_man.cancel()
            self._dead_man = None
        if self._prices is not None:
            self._prices.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._prices
            self._prices = None
        if self._stream is not None:
            await self._stream.close()
            self._stream = None
        for feed in list(self.md_feeds.values()):
            await feed.close()
        await self.rest.close()

    async def load_instruments(self) -> None:
        types = [t for m, t in (("spot", "SPOT"), ("perpetual", "SWAP"))
                 if m in self.settings.markets]
        wanted = set(self.settings.symbols) if self.settings.symbols else None
        for inst_type in types:
            _, env = await self._call("GET", "/api/v5/public/instruments", schemas.INSTRUMENTS,
                                      params={"instType": inst_type},
                                      cost=f"instruments:{inst_type}",
                                      signed=False)
            for info in env.data:
                inst = info.to_instrument()
                if inst is None or (wanted is not None and inst.symbol not in wanted):
                    continue
                entry = _Inst(inst, info.instType, info.ct_val)
                self._by_symbol[inst.symbol] = entry
                self._by_inst_id[inst.venue_symbol] = entry
                for kind, limit, interval in PER_INSTRUMENT:
                    self.limiter.add_window(WindowSpec(f"{kind}:{inst.venue_symbol}", limit,
                                                       interval))

    async def instruments(self) -> Sequence[Instrument]:
        return [e.instrument for e in self._by_symbol.values()]

    # ---- last prices --------------------------------------------------------------------------

    async def poll_prices(self) -> int:
        """docs-v5 "Order Book Trading / Market Data / Get tickers" (public, no signature), one
        request per instType loaded; the instruments we know go into the last-price map.
        Returns how many prices were taken."""
        taken = 0
        for inst_type in self._inst_types():
            _, env = await self._call("GET", "/api/v5/market/tickers", schemas.TICKERS,
                                      params={"instType": inst_type}, cost="tickers",
                                      priority=Priority.BACKGROUND, signed=False)
            _check(env, "tickers")
            for t in env.data:
                inst = self._by_inst_id.get(t.instId)
                last = t.to_last_price() if inst is not None else None
                if inst is not None and last is not None:
                    if not last.ts_ns:
                        last = last._replace(ts_ns=self.now_ms() * MS)
                    taken += self._note_price(inst.instrument.symbol, last)
        return taken

    def _note_price(self, symbol: str, last: schemas.LastPrice) -> bool:
        """Keep ``last`` unless what we have is newer (a poll answered after a fill may carry
        an older price than the fill's)."""
        held = self._last.get(symbol)
        if held is not None and held.ts_ns > last.ts_ns:
            return False
        self._last[symbol] = last
        return True

    async def _poll_prices_quietly(self) -> None:
        try:
            await self.poll_prices()
        except Exception as exc:  # a failed poll must not stop the connector or its loop
            log.warning("%s: ticker poll failed: %s", self.name, exc)

    async def _price_loop(self) -> None:
        while True:
            await asyncio.sleep(self.PRICE_POLL_S)
            await self._poll_prices_quietly()

    # ---- the dead-man switch ------------------------------------------------------------------

    def dead_man_timeout_s(self) -> int:
        assert self.settings.dead_man_s
        wanted = math.ceil(self.settings.dead_man_s)
        return max(self.DEAD_MAN_MIN_S, min(self.DEAD_MAN_MAX_S, wanted))

    async def _set_cancel_all_after(self, timeout_s: int) -> schemas.CancelAllAfterAck:
        """docs-v5 "Trade / Cancel All After": every pending order is cancelled ``timeOut``
        seconds after the last call (cancelSource 20); 0 disables it."""
        _, env = await self._call("POST", "/api/v5/trade/cancel-all-after",
                                  schemas.CANCEL_ALL_AFTER, body={"timeOut": str(timeout_s)},
                                  cost="cancel_all_after", priority=Priority.ORDER)
        if env.code != "0" or not env.data:
            raise _refused("cancel-all-after", env.code, env.msg)
        return env.data[0]

    async def refresh_dead_man(self) -> None:
        await self._set_cancel_all_after(self.dead_man_timeout_s())
        self.dead_man_refreshes += 1

    async def _dead_man_loop(self) -> None:
        timeout = self.dead_man_timeout_s()
        interval = max(timeout / 3, 1.05)  # < timeout/2, and within the 1 request/s limit
        while True:
            await asyncio.sleep(interval)
            try:
                await self.refresh_dead_man()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("%s: dead-man refresh failed: %s", self.name, exc)

    # ---- orders -------------------------------------------------------------------------------

    def _order_body(self, req: OrderRequest) -> tuple[_Inst, dict[str, str | bool]]:
        """The body of docs-v5 "Trade / Place order": strings, but ``reduceOnly`` a Boolean
        (its documented type, as ccxt sends it)."""
        inst = self._inst(req.symbol)
        if req.type is OrderType.MARKET:
            ord_type = "market"
        elif req.type is OrderType.LIMIT:
            if req.post_only:
                if req.time_in_force is not TimeInForce.GTC:
                    raise VenueRejected(RejectReason.UNSUPPORTED, "post-only needs GTC on OKX")
                ord_type = "post_only"
            else:
                ord_type = {TimeInForce.GTC: "limit", TimeInForce.IOC: "ioc",
                            TimeInForce.FOK: "fok"}.get(req.time_in_force, "")
                if not ord_type:
                    raise VenueRejected(RejectReason.UNSUPPORTED,
                                        f"OKX has no {req.time_in_force.value} orders")
        else:
            raise VenueRejected(RejectReason.UNSUPPORTED, f"OKX: no {req.type.value} orders here")
        swap = inst.ct_val is not None
        body: dict[str, str | bool] = {
            "instId": inst.instrument.venue_symbol,
            "tdMode": "cross" if swap else "cash",
            "clOrdId": req.client_order_id,
            "side": req.side.value,
            "ordType": ord_type,
            "sz": self._sz(inst, req.quantity),
        }
        if req.type is OrderType.LIMIT:
            if req.price is None:
                raise VenueRejected(RejectReason.PRICE_FILTER, "a limit order needs a price")
            body["px"] = plain(req.price)
        elif not swap:
            body["tgtCcy"] = "base_ccy"
        if req.reduce_only:
            if not swap:
                raise VenueRejected(RejectReason.UNSUPPORTED, "reduce-only is for swaps")
            body["reduceOnly"] = True
        return inst, body

    async def place(self, request: OrderRequest) -> OrderAccepted:
        """docs-v5 "Trade / Place order" (POST /api/v5/trade/order). OKX refuses a clOrdId
        already used by a *pending* order (51016, mapped to DUPLICATE_ORDER); a retry after the
        first order reached a terminal state would create a second order, so after
        VenueAmbiguous look the order up with :meth:`query_order` before placing again."""
        inst, body = self._order_body(request)
        self.track(request.client_order_id, request.symbol)
        try:
            _, env = await self._call("POST", "/api/v5/trade/order", schemas.ACKS, body=body,
                                      cost={f"order:{body['instId']}": 1, "sub_account": 1},
                                      priority=Priority.ORDER,
                                      mutating=True)
            ack = self._ack(env, "place")
        except VenueRejected as exc:
            if exc.reason is not RejectReason.DUPLICATE_ORDER:
                self.untrack(request.client_order_id)
            raise
        return OrderAccepted(request.client_order_id, ack.ordId,
                             ms_to_ns(ack.ts) or time.time_ns())

    async def place_batch(self, requests: Sequence[OrderRequest]
                          ) -> list[OrderAccepted | VenueError]:
        """docs-v5 "Trade / Place multiple orders" (POST /api/v5/trade/batch-orders): up to
        :data:`BATCH_MAX` orders per request, answered with ``code`` "0" (all placed), "1"
        (all failed) or "2" (some failed) and one ``data`` entry per order with its own
        ``sCode``/``sMsg``. One outcome per request, in order (:meth:`Connector.place_batch`):
        an order OKX refused (or :meth:`_order_body` did) is a VenueRejected; every order of a
        request that timed out, and an order the answer does not mention, is a
        VenueAmbiguous (query it by clOrdId); a request that was not sent makes its orders
        VenueUnavailable."""
        out: list[OrderAccepted | VenueError | None] = [None] * len(requests)
        sendable: list[tuple[int, OrderRequest, dict[str, str | bool]]] = []
        for i, r in enumerate(requests):
            try:
                sendable.append((i, r, self._order_body(r)[1]))
            except VenueRejected as exc:
                out[i] = exc
        for start in range(0, len(sendable), BATCH_MAX):
            chunk = sendable[start:start + BATCH_MAX]
            bodies = [body for _, _, body in chunk]
            for _, r, _ in chunk:
                self.track(r.client_order_id, r.symbol)
            try:
                _, env = await self._call(
                    "POST", "/api/v5/trade/batch-orders", schemas.ACKS, body=bodies,
                    cost=_batch_costs("batch", "order", bodies, "sub_account"),
                    priority=Priority.ORDER, mutating=True)
            except VenueError as exc:
                for i, r, _ in chunk:
                    if nothing_placed(exc):
                        self.untrack(r.client_order_id)
                    out[i] = exc
                continue
            if not env.data and env.code != "0":  # the whole request refused (e.g. 51111)
                for i, r, _ in chunk:
                    self.untrack(r.client_order_id)
                    out[i] = _refused("batch place", env.code, env.msg)
                continue
            # answered in request order ("Orders will be placed in turn"); by clOrdId otherwise
            by_cid = {a.clOrdId: a for a in env.data}
            in_turn = len(env.data) == len(chunk)
            for n, (i, r, _) in enumerate(chunk):
                ack = env.data[n] if in_turn else by_cid.get(r.client_order_id)
                if ack is None:
                    out[i] = VenueAmbiguous(f"{self.name}: batch-orders answer (code "
                                            f"{env.code}) does not mention {r.client_order_id}")
                elif ack.sCode == "0":
                    out[i] = OrderAccepted(r.client_order_id, ack.ordId,
                                           ms_to_ns(ack.ts) or time.time_ns())
                else:
                    refusal = _refused("batch place", ack.sCode, ack.sMsg)
                    if refusal.reason is not RejectReason.DUPLICATE_ORDER:
                        self.untrack(r.client_order_id)
                    out[i] = refusal
        done = [o for o in out if o is not None]
        assert len(done) == len(requests)
        return done

    async def cancel(self, symbol: str, client_order_id: str) -> None:
        """docs-v5 "Trade / Cancel order"."""
        inst = self._inst(symbol)
        iid = inst.instrument.venue_symbol
        _, env = await self._call("POST", "/api/v5/trade/cancel-order", schemas.ACKS,
                                  body={"instId": iid, "clOrdId": client_order_id},
                                  cost=f"cancel:{iid}", priority=Priority.ORDER, mutating=True)
        await self._settle_refusal(env, errors.CANCEL_FAILED, symbol, client_order_id)
        self._ack(env, "cancel")

    async def amend(self, request: AmendRequest) -> None:
        """docs-v5 "Trade / Amend order": ``newSz`` is the new total (filled included). OKX keeps
        the clOrdId: a new client order id cannot be given."""
        if request.new_client_order_id not in (None, request.client_order_id):
            raise VenueRejected(RejectReason.UNSUPPORTED, "OKX amend keeps the clOrdId")
        inst = self._inst(request.symbol)
        iid = inst.instrument.venue_symbol
        body = {"instId": iid, "clOrdId": request.client_order_id}
        if request.quantity is not None:
            body["newSz"] = self._sz(inst, request.quantity)
        if request.price is not None:
            body["newPx"] = plain(request.price)
        _, env = await self._call("POST", "/api/v5/trade/amend-order", schemas.ACKS, body=body,
                                  cost={f"amend:{iid}": 1, "sub_account": 1},
                                  priority=Priority.ORDER, mutating=True)
        await self._settle_refusal(env, errors.AMEND_FAILED, request.symbol,
                                   request.client_order_id)
        self._ack(env, "amend")

    async def _settle_refusal(self, env: schemas.Envelope[schemas.OrderAck], code: str,
                              symbol: str, client_order_id: str) -> None:
        """OKX answers a cancel (51400) or amend (51503) of an order that is filled, canceled
        *or* unknown with one code (51401/51402/51509/51510 are for Nitro Spread only): ask
        the order, and refuse TOO_LATE when it exists, UNKNOWN_ORDER when it does not."""
        ack = env.data[0] if env.data else None
        if ack is None or ack.sCode != code:
            return
        what = "cancel" if code == errors.CANCEL_FAILED else "amend"
        known = await self.query_order(symbol, client_order_id)
        raise VenueRejected(RejectReason.TOO_LATE if known is not None
                            else RejectReason.UNKNOWN_ORDER,
                            f"OKX {what}: {ack.sCode} {ack.sMsg}")

    async def cancel_all(self, symbol: str | None = None) -> int:
        """OKX has no cancel-all for spot: the open orders, cancelled 20 at a time with
        "Cancel multiple orders"."""
        open_now = await self._pending(symbol, Priority.ORDER)
        by_inst: dict[str, list[schemas.OrderInfo]] = {}
        for o in open_now:
            by_inst.setdefault(o.instId, []).append(o)
        done = 0
        for iid, orders in by_inst.items():
            for start in range(0, len(orders), BATCH_MAX):
                chunk = orders[start:start + BATCH_MAX]
                body = [{"instId": iid, "clOrdId": o.clOrdId} if o.clOrdId
                        else {"instId": iid, "ordId": o.ordId} for o in chunk]
                _, env = await self._call("POST", "/api/v5/trade/cancel-batch-orders",
                                          schemas.ACKS, body=body,
                                          cost=_batch_costs("cancel_batch", "cancel", body),
                                          priority=Priority.ORDER, mutating=True)
                done += sum(1 for a in env.data if a.sCode == "0")
        return done

    async def query_order(self, symbol: str, client_order_id: str, *,
                          venue_order_id: str | None = None) -> OrderState | None:
        """docs-v5 "Trade / Get order details" by ``ordId`` when ``venue_order_id`` is given,
        else by ``clOrdId``; None on 51603 (order does not exist). The state names
        ``client_order_id``."""
        inst = self._inst(symbol)
        params = {"instId": inst.instrument.venue_symbol}
        if venue_order_id:
            params["ordId"] = venue_order_id
        else:
            params["clOrdId"] = client_order_id
        _, env = await self._call(
            "GET", "/api/v5/trade/order", schemas.ORDERS, params=params,
            cost=f"order_query:{inst.instrument.venue_symbol}", priority=Priority.QUERY)
        if env.code == errors.ORDER_NOT_FOUND:
            return None
        _check(env, "order query")
        if not env.data:
            return None
        state = env.data[0].to_state(inst.instrument.symbol, inst.ct_val)
        if state.client_order_id != client_order_id:
            state = dataclasses.replace(state, client_order_id=client_order_id)
        return state

    async def _pending(self, symbol: str | None, priority: Priority) -> list[schemas.OrderInfo]:
        params: dict[str, str] = {"limit": str(PAGE)}
        if symbol is not None:
            params["instId"] = self._inst(symbol).instrument.venue_symbol
        out: list[schemas.OrderInfo] = []
        while True:
            _, env = await self._call("GET", "/api/v5/trade/orders-pending", schemas.ORDERS,
                                      params=dict(params), cost="orders_pending",
                                      priority=priority)
            _check(env, "orders-pending")
            out += [o for o in env.data if o.instId in self._by_inst_id]
            if len(env.data) < PAGE:
                return out
            params["after"] = env.data[-1].ordId

    async def open_orders(self, symbol: str | None = None) -> Sequence[OrderState]:
        """docs-v5 "Trade / Get order List" (orders-pending), paged by ``after`` = ordId."""
        out = []
        for o in await self._pending(symbol, Priority.BACKGROUND):
            inst = self._by_inst_id[o.instId]
            out.append(o.to_state(inst.instrument.symbol, inst.ct_val))
        return out

    async def fills_since(self, since_ns: int) -> Sequence[OrderFilled]:
        """docs-v5 "Trade / Get transaction details (last 3 days)" (``/trade/fills``), or for
        an older ``since`` "... (last 3 months)" (``/trade/fills-history``, one instType at a
        time): newest first, ``begin`` in ms, paged backwards by ``after`` = billId."""
        begin_ms = max(0, since_ns // MS)
        if self.now_ms() - begin_ms < FILLS_RECENT_MS:
            return await self._fills("/api/v5/trade/fills", {"begin": str(begin_ms)})
        out: list[OrderFilled] = []
        for inst_type in self._inst_types():
            out += await self._fills("/api/v5/trade/fills-history",
                                     {"instType": inst_type, "begin": str(begin_ms)})
        out.sort(key=lambda f: f.ts_ns)
        return out

    async def _fills(self, path: str, first: Mapping[str, str]) -> list[OrderFilled]:
        params = {**first, "limit": str(PAGE)}
        out: list[OrderFilled] = []
        while True:
            _, env = await self._call("GET", path, schemas.FILLS, params=dict(params),
                                      cost="fills" if path.endswith("fills") else "fills_history")
            _check(env, "fills")
            for f in env.data:
                inst = self._by_inst_id.get(f.instId)
                if inst is not None:
                    out.append(f.to_fill(inst.ct_val))
            if len(env.data) < PAGE:
                break
            params["after"] = env.data[-1].billId
        out.sort(key=lambda f: f.ts_ns)
        return out

    async def balances(self) -> Sequence[Balance]:
        """docs-v5 "Trading Account / Get balance"."""
        _, env = await self._call("GET", "/api/v5/account/balance", schemas.BALANCE,
                                  cost="balance")
        return [d.to_balance() for acct in env.data for d in acct.details]

    async def positions(self) -> Sequence[Position]:
        """docs-v5 "Trading Account / Get positions" (SWAP; ``pos`` in contracts)."""
        if not any(e.ct_val is not None for e in self._by_symbol.values()):
            return ()
        _, env = await self._call("GET", "/api/v5/account/positions", schemas.POSITIONS,
                                  params={"instType": "SWAP"}, cost="positions")
        out = []
        for p in env.data:
            inst = self._by_inst_id.get(p.instId)
            if inst is not None and p.instType == "SWAP" and dec_or_zero(p.pos):
                out.append(p.to_position(inst.instrument.symbol, inst.ct_val))
        return out

    async def health(self) -> Health:
        connected = self._stream is not None and self._stream.connected.is_set()
        detail = "stream connected" if connected else "private stream down"
        if self.limiter.banned:
            connected, detail = False, "banned by the venue"
        return Health(connected, detail, self._rtt_ms)

    def last_price(self, symbol: str) -> Decimal | None:
        """The last price seen (ticker poll or own fill), None when none yet; no I/O."""
        last = self._last.get(symbol)
        return last.price if last is not None else None

    # ---- public market data -------------------------------------------------------------------

    def market_data(self, symbol: str) -> AsyncIterator[MarketEvent]:
        """The ``books`` (400 levels) and ``trades`` channels of ``symbol`` on the public
        WebSocket, checked by :class:`connectors.okx.book.BookSync`; a book found out of sync is
        asked for again by unsubscribing and subscribing ``books``. KeyError: not loaded."""
        inst = self._by_symbol[symbol]
        inst_id = inst.instrument.venue_symbol
        books = {"channel": "books", "instId": inst_id}
        trades = {"channel": "trades", "instId": inst_id}

        def op(name: str, *args: dict[str, str]) -> str:
            return msgspec.json.encode({"op": name, "args": list(args)}).decode()

        feed = PublicFeed(
            self._ws_public_url, name=f"{self.name}-public-{inst_id}",
            sync=BookSync(symbol, inst_id, inst.ct_val),
            subscribe=lambda: [op("subscribe", books, trades)],
            resubscribe=lambda: [op("unsubscribe", books), op("subscribe", books)],
            ping=PingPolicy(20.0, lambda: "ping"),
            idle_timeout_s=self.settings.stream_idle_timeout_s,
            reconnect_base_s=self.settings.reconnect_base_s,
            reconnect_cap_s=self.settings.reconnect_cap_s)
        return run_feed(feed, self.md_feeds, symbol)

    # ---- the private stream -------------------------------------------------------------------

    async def _expect(self, ws: Ws, event: str) -> None:
        while True:
            text = await asyncio.wait_for(ws.receive_str(), 10.0)
            if text == "pong":
                continue
            if '"event"' not in text:  # a push on a channel already subscribed
                self._on_message(text)
                continue
            ev = schemas.WS_EVENT.decode(text)
            if ev.event == "error":
                raise StreamError(f"{self.name}: OKX {ev.code} {ev.msg}")
            if ev.event == event:
                if ev.code not in ("", "0"):
                    raise StreamError(f"{self.name}: OKX {event} {ev.code} {ev.msg}")
                return

    async def _on_open(self, ws: Ws) -> None:
        """docs-v5 "WebSocket / Login" then "Subscribe" to ``orders`` for every instType and to
        ``account`` (every currency; pushed on each change, and as a snapshot at first)."""
        creds = self.settings.credentials
        ts = str(self.now_ms() // 1000)
        login = {"op": "login", "args": [{
            "apiKey": creds.api_key, "passphrase": creds.passphrase or "", "timestamp": ts,
            "sign": ws_login_sign(creds.secret, ts)}]}
        await ws.send_str(msgspec.json.encode(login).decode())
        await self._expect(ws, "login")
        args = [{"channel": "orders", "instType": "ANY"}, {"channel": "account"}]
        sub = {"op": "subscribe", "args": args}
        await ws.send_str(msgspec.json.encode(sub).decode())
        for _ in args:  # one answer per channel
            await self._expect(ws, "subscribe")

    def _on_message(self, text: str) -> None:
        if text == "pong":
            return
        if text.startswith('{"event"') or '"event":' in text[:40]:
            ev = schemas.WS_EVENT.decode(text)
            if ev.event == "error":
                log.warning("%s: OKX stream error %s %s", self.name, ev.code, ev.msg)
            return
        push = schemas.WS_PUSH.decode(text)
        channel = push.arg.channel
        if channel == "orders":
            for o in schemas.WS_ORDER_DATA.decode(push.data):
                self.handle_order_update(o)
        elif channel == "account":
            now = time.time_ns()
            self.emit_balances([
                d.to_update(ms_to_ns(acct.uTime) or now)
                for acct in schemas.WS_ACCOUNT_DATA.decode(push.data) for d in acct.details])

    def handle_order_update(self, o: schemas.WsOrder) -> None:
        """One ``orders`` channel update as events (docs-v5 "Trade / WS / Order channel")."""
        inst = self._by_inst_id.get(o.instId)
        if inst is None:
            return
        ct = inst.ct_val
        ts = ms_to_ns(o.uTime or o.cTime) or time.time_ns()
        fill = o.fill(ct)
        if fill is not None:
            seen = fill.ts_ns or self.now_ms() * MS
            self._note_price(inst.instrument.symbol, schemas.LastPrice(fill.price, seen))
            self.emit(fill)
        if o.amendResult == "0" and o.state in ("live", "partially_filled"):
            self.emit(OrderAmended(o.clOrdId, o.ordId, schemas.base_qty(o.sz, ct),
                                   dec(o.px), ts))
        elif o.state == "live" and not o.amendResult and fill is None:
            self.emit(OrderAccepted(o.clOrdId, o.ordId, ts))
        elif o.state in ("canceled", "mmp_canceled"):
            why = errors.CANCEL_SOURCES.get(o.cancelSource, f"cancelSource {o.cancelSource}")
            self.emit(OrderCanceled(o.clOrdId, o.ordId, ts, why,
                                    schemas.base_qty(o.accFillSz, ct)))
        elif o.state == "filled":
            self.untrack(o.clOrdId)  # done: nothing more to catch up on after a reconnect
