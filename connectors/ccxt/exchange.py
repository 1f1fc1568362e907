"""Building the ccxt exchange object from our settings, and reading what it can do.

ccxt describes each exchange in data: ``urls['api']`` (a dict of base URLs, or one string),
``has`` (which unified methods exist: True, False, None or ``"emulated"``) and ``features``
(per market type: which time-in-force values, trigger prices, reduce-only ... ``createOrder``
takes). See the ccxt Manual, sections "Exchange Structure", "Overriding the Exchange URLs" and
"Features". Where ccxt does not say (client order id rules, query by client order id), a small
table of venues we know stands in; anything else gets conservative defaults.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import ccxt.async_support as ccxt_async

from connectors.base import Capabilities, ClientOrderIdRules, OrderType, TimeInForce
from connectors.common.settings import VenueSettings
from connectors.common.venue import MS


@dataclass(frozen=True, slots=True)
class KnownVenue:
    client_order_id_rules: ClientOrderIdRules
    query_by_client_order_id: bool
    """fetchOrder/cancelOrder('', symbol, {"clientOrderId": ...}) finds the order (ccxt maps
    the param to the venue's own: Binance ``origClientOrderId``, OKX ``clOrdId``, Bybit
    ``orderLinkId``)."""
    edit_is_native_amend: bool
    """ccxt's editOrder keeps the order (False where it cancels and replaces, as ccxt's
    Binance spot editOrder does through ``order/cancelReplace``)."""
    default_options: Mapping[str, Any] = field(default_factory=dict)
    watch_fee_negated: bool = False
    """ccxt.pro's watchMyTrades gives the fee with the venue's sign where fetchMyTrades
    gives it as a cost (ccxt 4.5 okx: ``order_to_trade`` copies ``fillFee``, negative when
    charged, where ``parse_trade`` negates ``fee``): the stream's fee is negated here."""


_ALNUM = r"^[A-Za-z0-9]+$"

KNOWN: dict[str, KnownVenue] = {
    # newClientOrderId: ^[\.A-Z\:/a-z0-9_-]{1,36}$ (Binance Spot API, "New order (TRADE)")
    "binance": KnownVenue(ClientOrderIdRules(36, _ALNUM), True, False,
                          {"warnOnFetchOpenOrdersWithoutSymbol": False}),
    "binanceusdm": KnownVenue(ClientOrderIdRules(36, _ALNUM), True, True,
                              {"warnOnFetchOpenOrdersWithoutSymbol": False}),
    # clOrdId: alphanumerics, up to 32 (OKX API v5, "Place order")
    "okx": KnownVenue(ClientOrderIdRules(32, _ALNUM), True, True, watch_fee_negated=True),
    # orderLinkId: up to 36 of numbers, letters, - and _ (Bybit V5, "Place Order")
    "bybit": KnownVenue(ClientOrderIdRules(36, _ALNUM), True, True),
}

DEFAULT_RULES = ClientOrderIdRules(32, _ALNUM)

_HOST = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://[^/]+")


def build_exchange(exchange_id: str, settings: VenueSettings, options: Mapping[str, Any],
                   *, pro: bool) -> Any:
    """The ccxt exchange (``ccxt.pro``'s class when ``pro``, which has the same REST methods
    plus ``watch_*``) with our credentials, ccxt's own throttler (``options["rateLimit"]``
    overrides its ms per cost unit; ``options["has"]`` is merged into ccxt's ``has``, where
    an option cannot turn a call off), sandbox mode when
    ``settings.testnet``, and the URL overrides of ``settings.urls``."""
    module: Any = ccxt_async
    if pro:
        import ccxt.pro as ccxt_pro

        module = ccxt_pro
    cls = getattr(module, exchange_id, None)
    if cls is None:
        raise ValueError(f"ccxt has no exchange {exchange_id!r}")
    known = KNOWN.get(exchange_id)
    opts: dict[str, Any] = dict(known.default_options) if known else {}
    opts["recvWindow"] = settings.recv_window_ms
    opts.update(options)
    rate_limit_ms = opts.pop("rateLimit", None)
    has_override = opts.pop("has", None)
    creds = settings.credentials
    config: dict[str, Any] = {
        "apiKey": creds.api_key,
        "secret": creds.secret,
        "enableRateLimit": True,
        "timeout": int(settings.request_timeout_s * 1000),
        "options": opts,
    }
    if rate_limit_ms is not None:  # ccxt's throttler: ms per unit of request cost
        config["rateLimit"] = rate_limit_ms
    if has_override:  # e.g. {"fetchCurrencies": False}: ccxt's load_markets skips that call
        config["has"] = dict(has_override)
    if creds.passphrase:
        config["password"] = creds.passphrase
    ex = cls(config)
    if settings.testnet:
        ex.set_sandbox_mode(True)
    override_urls(ex, settings.urls)
    return ex


def _rebase(url: str, base: str) -> str:
    return _HOST.sub(base.rstrip("/"), url, count=1)


WS_KEYS = ("ws", "ws_private")
"""The settings.urls keys that point ccxt.pro's WebSocket entries elsewhere: ``ws``, or the
native connectors' ``ws_private`` (an emulator's ``urls``), of which only the scheme
and host are used: ccxt keeps its own paths (OKX: ``/ws/v5`` + ``/private``)."""


def ws_override(urls: Mapping[str, str]) -> str | None:
    """The base the WebSocket entries go to: ``ws`` as given, else the scheme and host of
    ``ws_private``."""
    if urls.get("ws"):
        return urls["ws"]
    private = urls.get("ws_private")
    host = _HOST.match(private) if private else None
    return host.group(0) if host else None


def override_urls(ex: Any, urls: Mapping[str, str]) -> None:
    """``rest``: every HTTP(S) entry of ``urls['api']`` keeps its path but goes to this scheme
    and host (``https://api.binance.com/api/v3`` -> ``http://127.0.0.1:8080/api/v3``, OKX's
    ``https://{hostname}`` -> ``http://127.0.0.1:8080``); ``ws`` (or ``ws_private``,
    see :data:`WS_KEYS`): the same for its WebSocket entries (``wss://ws.okx.com:443/ws/v5`` ->
    ``ws://127.0.0.1:8080/ws/v5``); ``api.<key>``: that one entry, verbatim."""
    api = ex.urls.get("api")
    rest, ws = urls.get("rest"), ws_override(urls)

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, str):
            is_ws = node.startswith(("ws://", "wss://"))
            if is_ws and ws:
                return _rebase(node, ws)
            if not is_ws and rest:
                return _rebase(node, rest)
        return node

    if rest or ws:
        api = walk(api)
    for key, value in urls.items():
        if key.startswith("api.") and isinstance(api, dict):
            api[key[4:]] = value
    ex.urls["api"] = api


def ws_reconnected(ex: Any, since_ms: int, settle_s: float) -> bool:
    """ccxt.pro has a WebSocket connection (``ex.clients``) made at or after ``since_ms`` (ms,
    our clock) that is open and has received a message, or has been up for ``settle_s``."""
    clients = getattr(ex, "clients", None)
    if not isinstance(clients, Mapping):
        return False
    now_ms = time.time_ns() // MS
    for client in list(clients.values()):
        est = getattr(client, "connectionEstablished", None)
        if not isinstance(est, int) or est < since_ms:
            continue
        with contextlib.suppress(Exception):
            if client.closed():
                continue
        last = getattr(client, "last_message_at", None)
        if (isinstance(last, int) and last >= est) or now_ms - est >= settle_s * 1000:
            return True
    return False


def _features(ex: Any, markets: frozenset[str]) -> list[Mapping[str, Any]]:
    """``features[...]['createOrder']`` of each market type traded."""
    feats = getattr(ex, "features", None) or {}
    out = []
    if "spot" in markets:
        out.append((feats.get("spot") or {}).get("createOrder") or {})
    if "perpetual" in markets:
        swap = feats.get("swap") or {}
        out.append(((swap.get("linear") or {}).get("createOrder")) or {})
    return out


def capabilities(ex: Any, markets: frozenset[str], exchange_id: str,
                 amend: bool | None = None) -> Capabilities:
    """Capability flags from ``has`` and ``features`` (where several market types are traded,
    only what all of them take)."""
    has = ex.has

    def yes(key: str) -> bool:
        return bool(has.get(key))

    feats = [f for f in _features(ex, markets) if f]
    tif_ok: dict[str, bool] = {}
    for name in ("GTC", "IOC", "FOK", "PO", "GTD"):
        tif_ok[name] = all(bool((f.get("timeInForce") or {}).get(name)) for f in feats) \
            if feats else name in ("GTC", "IOC")
    tifs = {TimeInForce.GTC}
    if tif_ok["IOC"]:
        tifs.add(TimeInForce.IOC)
    if tif_ok["FOK"]:
        tifs.add(TimeInForce.FOK)
    types = set()
    if yes("createMarketOrder") or has.get("createMarketOrder") is None:
        types.add(OrderType.MARKET)
    if yes("createLimitOrder") or has.get("createLimitOrder") is None:
        types.add(OrderType.LIMIT)
    trigger = all(bool(f.get("triggerPrice")) for f in feats) if feats else False
    if trigger or yes("createTriggerOrder") or yes("createStopMarketOrder"):
        types.add(OrderType.STOP)
    if trigger or yes("createStopLimitOrder"):
        types.add(OrderType.STOP_LIMIT)
    known = KNOWN.get(exchange_id)
    if amend is None:
        amend = yes("editOrder") and (known.edit_is_native_amend if known else False)
    return Capabilities(
        order_types=frozenset(types),
        time_in_force=frozenset(tifs),
        post_only=tif_ok["PO"] or yes("createPostOnlyOrder"),
        reduce_only="perpetual" in markets and yes("createReduceOnlyOrder"),
        amend=amend,
        bulk_cancel=yes("cancelAllOrders"),
        batch_place=False,  # ccxt createOrders exists on some venues; not wired in here yet
    )


def client_order_id_rules(exchange_id: str) -> ClientOrderIdRules:
    known = KNOWN.get(exchange_id)
    return known.client_order_id_rules if known else DEFAULT_RULES


def watch_fee_negated(exchange_id: str) -> bool:
    known = KNOWN.get(exchange_id)
    return known.watch_fee_negated if known else False


def queries_by_client_order_id(exchange_id: str) -> bool:
    known = KNOWN.get(exchange_id)
    return known.query_by_client_order_id if known else False
