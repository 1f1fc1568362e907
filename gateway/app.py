"""Composition root: configuration -> store -> sessions -> acceptor (STYLE 13).

Everything else receives what it needs as arguments; this is the one module that knows how the
pieces fit.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import ipaddress
import logging
import os
import ssl
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from connectors.base import Connector, Side, TimeInForce
from connectors.common.credentials import CredentialsError, load_credentials
from connectors.common.settings import VenueSettings
from connectors.paper.config import PaperConfig
from connectors.paper.market import MarketConfig, default_markets, read_points, read_recorded
from connectors.paper.remote import RemotePaperConnector
from connectors.paper.venue import PaperConnector
from connectors.registry import exchange_connector
from gateway.audit.filelog import FileLog
from gateway.cluster import Ownership
from gateway.config import (
    WEEKDAYS,
    Config,
    ConfigError,
    SessionOptions,
    TLSConfig,
    VenueConfig,
)
from gateway.fix import dictionary
from gateway.fix.custom import ICEBERG, SOR, TWAP
from gateway.fix.dictionary import DataDictionary
from gateway.fix.message import Message
from gateway.fix.schedule import Schedule
from gateway.fix.session import Session, SessionID, SessionSettings
from gateway.fix.tags import BR_APPLICATION_NOT_AVAILABLE
from gateway.marketdata.feeds import MarketData
from gateway.marketdata.instruments import SecurityListRequests
from gateway.marketdata.requests import MarketDataRequests
from gateway.marketview import FeedView
from gateway.orders.benchmarks import Benchmarks
from gateway.orders.dropcopy import DropCopyRule, rules_for
from gateway.orders.iceberg import Iceberg
from gateway.orders.manager import OrderManager, SessionPolicy, StrategyFactory
from gateway.orders.model import Order
from gateway.orders.ports import OrderStorePort
from gateway.orders.pov import POV, Pov
from gateway.orders.sor import SmartRouter
from gateway.orders.twap import Twap
from gateway.orders.vwap import VWAP, VolumeProfile, Vwap
from gateway.positions.balance_book import BalanceBook
from gateway.positions.balances import Access, CollateralInquiries
from gateway.positions.book import Positions
from gateway.positions.exposure import LossGuard, Mark, exposure
from gateway.positions.reconcile import Reconciler
from gateway.positions.requests import PositionRequests
from gateway.risk.checks import RiskEngine, RiskLimits
from gateway.routing.router import SessionRouting
from gateway.server.acceptor import Acceptor, Limits, SessionDef, Template
from gateway.server.journal import SeqJournal
from gateway.server.ports import Application, SessionStorePort
from gateway.store.nodes import NodeStore
from gateway.store.records import FillRecord

if TYPE_CHECKING:
    from gateway.admin.alerts import AlertMonitor
    from gateway.admin.api import AdminServer
    from gateway.admin.metrics import Metrics

log = logging.getLogger("fixgw")


@dataclass
class Services:
    """What the gateway tells its clients besides orders, over the order path."""

    app: SessionApplication
    market_data: MarketDataRequests
    positions: Positions
    reconciler: Reconciler
    balances: BalanceBook
    mark: Mark
    """(venue, symbol) -> the price positions are marked at."""


def _services(store: OrderStorePort, orders: OrderManager, connectors: Mapping[str, Connector],
              policies: Mapping[str, SessionPolicy], risk: RiskEngine,
              fees: Mapping[str, Decimal], benchmark_books: bool = False) -> Services:
    """Market data, instruments, balances and positions, and the risk limits that look
    across venues, wired to the order path."""

    def venues_for(s: Session) -> frozenset[str] | None:
        p = policies.get(str(s.sid))
        return p.routing.venues if p is not None else None

    def access_for(s: Session) -> Access | None:
        p = policies.get(str(s.sid))
        return Access(p.routing.venues, p.routing.accounts) if p is not None else None

    feeds = MarketData(connectors)

    def mark(venue: str, symbol: str) -> Decimal | None:
        """The venue's mid while its book is watched and live, else its last price (a routed
        order, at no venue of its own: the first venue's that has one)."""
        if venue not in connectors:
            return next((p for p in (mark(v, symbol) for v in connectors) if p is not None),
                        None)
        book = feeds.book(venue, symbol)
        mid = book.mid() if book is not None and book.synced else None
        if mid is not None:
            return mid
        conn = connectors.get(venue)
        return conn.last_price(symbol) if conn is not None else None

    def working() -> Iterator[Order]:
        return (o for o in orders.book.client_orders() if o.is_open)

    def loss_limit(sid: str, account: str | None) -> Decimal | None:
        if account is not None and f"{sid}/{account}" not in risk.limits:
            return None  # the account has no limits of its own: the session's apply
        limits = risk.limits_for(sid, account)
        return limits.max_daily_loss if limits is not None else None

    def engage(sid: str, reason: str) -> None:
        log.warning("%s: %s: the kill switch is engaged", sid, reason)
        orders.tasks.spawn(orders.kill_switch(sid, True, reason))

    positions = Positions()
    risk.exposure = lambda sid, account, asset: exposure(
        positions, working(), mark, sid, account, asset)
    guard = LossGuard(positions, mark, loss_limit, engage, time.time_ns)
    position_requests = PositionRequests(positions, mark, orders.serves)
    orders.recorder.fill_listeners.append(
        functools.partial(_count_fill, positions, guard, position_requests))
    market_data = MarketDataRequests(feeds, venues_for)
    balances = BalanceBook(connectors)
    view = FeedView(feeds, balances, fees)
    orders.children.market = view
    orders.recorder.benchmarks = Benchmarks(view, watch=benchmark_books, tasks=orders.tasks)
    app = SessionApplication(orders, market_data,
                             SecurityListRequests(connectors, venues_for),
                             CollateralInquiries(balances, access_for), position_requests)
    async def settle() -> None:
        """What the order path is applying now (bounded: a cancel-on-disconnect grace period
        is work in progress too)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(orders.idle(), 5.0)

    return Services(app, market_data, positions,
                    Reconciler(positions, connectors, store.save_adjustment, settle), balances,
                    mark)


def _count_fill(positions: Positions, guard: LossGuard, requests: PositionRequests, o: Order,
                fill: FillRecord) -> None:
    p = positions.fill(o.session_id, o.account or "", o.venue, o.symbol, o.side, fill.trade_id,
                       fill.quantity, fill.price, fill.fee, fill.fee_currency, fill.ts_ns)
    if p is not None:
        guard.after_fill(o.session_id, o.account)
        if requests.watched(p.session_id):
            # after the fill's own ExecutionReport, which is being queued now
            asyncio.get_running_loop().call_soon(requests.changed, p)


class SessionApplication:
    """The application behind the sessions: MarketDataRequest (V) to the market data, every
    other application message to the order path."""

    def __init__(self, orders: OrderManager, market_data: MarketDataRequests,
                 instruments: SecurityListRequests, balances: CollateralInquiries,
                 positions: PositionRequests) -> None:
        self.orders = orders
        self.market_data = market_data
        self.instruments = instruments
        self.balances = balances
        self.positions = positions

    def on_logon(self, session: Session, now: float) -> None:
        self.orders.on_logon(session, now)

    def on_logout(self, session: Session, now: float) -> None:
        self.market_data.on_logout(session)
        self.positions.on_logout(session)
        self.balances.on_logout(session)
        self.orders.on_logout(session, now)

    def may_resend(self, message: Message) -> bool:
        """Market data is not resent on a ResendRequest (gap-filled): a book resent later is
        stale, and the subscriber asks for a snapshot again."""
        return message.msg_type not in (b"W", b"X")

    def on_message(
        self, session: Session, message: Message, now: float
    ) -> Awaitable[bool | None] | None:
        mt = message.msg_type
        if self.orders.serves(session):
            if mt == b"V":
                return self.market_data.on_request(session, message, now)
            if mt == b"x":
                return self.instruments.on_request(session, message, now)
            if mt == b"BB":
                return self.balances.on_inquiry(session, message, now)
            if mt == b"AN":
                self.positions.on_request(session, message, now)
                return None
        return self.orders.on_message(session, message, now)


class UnavailableApplication:
    """Answers every application message with BusinessMessageReject (380=4). Used until an
    order path is configured; the session layer works in full."""

    def on_logon(self, session: Session, now: float) -> None:
        pass  # said by the acceptor (gateway.server.traffic)

    def on_logout(self, session: Session, now: float) -> None:
        pass

    def on_message(self, session: Session, message: Message, now: float) -> None:
        session.business_reject(message, BR_APPLICATION_NOT_AVAILABLE, now)


@functools.cache
def _user_dictionary(path: Path) -> DataDictionary:
    return dictionary.load_dictionary(path)


def _dictionaries(opts: SessionOptions) -> tuple[DataDictionary, dict[str, DataDictionary]]:
    if opts.begin_string == "FIXT.1.1":
        apps = {name: dictionary.standard(name) for name in ("FIX.5.0", "FIX.5.0SP2")}
        if opts.data_dictionary is not None:
            assert opts.default_appl_ver_id is not None
            apps[opts.default_appl_ver_id] = _user_dictionary(opts.data_dictionary)
        return dictionary.standard("FIXT.1.1"), apps
    dd = (
        _user_dictionary(opts.data_dictionary)
        if opts.data_dictionary is not None
        else dictionary.standard(opts.begin_string)
    )
    return dd, {opts.begin_string: dd}


def _schedule(opts: SessionOptions) -> Schedule:
    s = opts.schedule
    return Schedule(
        start=s.start_time,
        end=s.end_time,
        start_day=WEEKDAYS[s.start_day[:3].lower()] if s.start_day else None,
        end_day=WEEKDAYS[s.end_day[:3].lower()] if s.end_day else None,
        timezone=s.timezone,
        non_stop=s.non_stop,
    )


def _shared(record: type[Any], opts: SessionOptions) -> dict[str, Any]:
    """The options ``record`` (a settings dataclass) declares under the same name: a setting
    is declared once, in the record the code uses, and the configuration's key is its field."""
    return {f.name: getattr(opts, f.name) for f in dataclasses.fields(record)
            if f.name in SessionOptions.model_fields}


def session_definition(sid: SessionID, opts: SessionOptions) -> SessionDef:
    settings = SessionSettings(
        sid, **_shared(SessionSettings, opts),
        require_authentication=opts.password_hash is not None or opts.username is not None,
    )
    session_dd, app_dds = _dictionaries(opts)
    networks = (
        [ipaddress.ip_network(n, strict=False) for n in opts.allowed_addresses]
        if opts.allowed_addresses is not None
        else None
    )
    limits = Limits(**{**_shared(Limits, opts), "rate_limit": opts.rate_limit or None,
                       "first_message_timeout": opts.logon_timeout})
    return SessionDef(
        settings, session_dd, app_dds,
        username=opts.username,
        password_hash=opts.password_hash.encode() if opts.password_hash else None,
        allowed_networks=networks,
        limits=limits,
        schedule=_schedule(opts),
    )


def tls_context(cfg: TLSConfig) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(str(cfg.cert_file), str(cfg.key_file))
    if cfg.client_ca_file is not None:
        ctx.load_verify_locations(str(cfg.client_ca_file))
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


@dataclass
class Gateway:
    config: Config
    store: SessionStorePort
    acceptor: Acceptor
    orders: OrderManager | None = None
    admin: AdminServer | None = None
    market_data: MarketDataRequests | None = None
    positions: Positions | None = None
    """What the sessions hold, computed from the gateway's fills."""
    reconciler: Reconciler | None = None
    reconcile_interval: float = 300.0
    """Seconds between two reconciliations of the positions with the venues."""
    balances: BalanceBook | None = None
    """The venue accounts' balances, kept from their streams (BA and ``GET /balances``)."""
    admin_address: tuple[str, int] | None = None
    """Where the admin API listens, once started."""
    ownership: Ownership | None = None
    """This gateway as a node among those sharing the store (None: a store without nodes)."""
    fenced: asyncio.Event = field(default_factory=asyncio.Event)
    """Set when another process has taken this node's place: the gateway must stop."""
    fenced_reason: str = ""
    alerts: AlertMonitor | None = None
    """The alerts of ``[alerts]`` (None: none configured)."""
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _reconciling: asyncio.Task[None] | None = None

    async def start(self) -> tuple[str, int]:
        """Start the order path (reconciling with the venues), then accept connections, then
        the admin API."""
        g = self.config.gateway
        own = self.ownership
        if own is not None:
            configured = [str(SessionID(s.begin_string, g.sender_comp_id, s.target_comp_id))
                          for s in self.config.session]
            await own.start(g.advertise or f"{g.host}:{g.port}", configured)
            if self.orders is not None:
                self.orders.venues_shared = lambda: own.others_alive
                self.orders.venue_gate = own.wait_lease
            # with other nodes on the store, a Logout written while the store is down could
            # carry a number another node will use: none is written then
            self.acceptor.logout_while_down = lambda: not own.others_alive
        if self.positions is not None and isinstance(self.store, OrderStorePort):
            for fill, order in await self.store.fills_with_orders():
                self.positions.fill(order["session_id"], order.get("account") or "",
                                    order["venue"], order["symbol"], Side(order["side"]),
                                    fill.trade_id, fill.quantity, fill.price, fill.fee,
                                    fill.fee_currency, fill.ts_ns)
        if self.positions is not None and isinstance(self.store, OrderStorePort):
            for a in await self.store.load_adjustments():
                self.positions.adjust(a.venue, a.symbol, a.delta)
        if self.orders is not None:
            await self.orders.start(own.owned if own is not None else None)
        if self.balances is not None:
            await self.balances.start()  # the venues are connected: read, then followed
        if self.reconciler is not None:  # now (the order path has caught up), then and again
            self._reconciling = asyncio.get_running_loop().create_task(
                self._reconcile_now_and_then(), name="positions-reconcile")
        tls = g.tls
        address = await self.acceptor.start(
            g.host, g.port, tls_context(tls) if tls is not None else None,
        )
        if own is not None:
            if g.advertise is None and g.port == 0:
                await own.store.set_node_address(f"{address[0]}:{address[1]}")
            self.acceptor.owner_check = own.logon_check
            own.watch(self._adopt, self._on_fenced)
        self.watch_store()
        if self.admin is not None:
            self.admin_address = await self.admin.start()
        if self.alerts is not None:
            listen = getattr(self.store, "add_availability_listener", None)
            if listen is not None:
                listen(self.alerts.store_changed)
            self.alerts.venues.start()
            self.alerts.start()
        return address

    async def _reconcile_now_and_then(self) -> None:
        assert self.reconciler is not None
        while True:
            try:
                await self.reconciler.reconcile()
            except Exception:
                log.exception("reconciling the positions with the venues failed")
            await asyncio.sleep(self.reconcile_interval)

    async def settled(self) -> None:
        """Until the gateway's own background work is done (catching up after an outage)."""
        while self._tasks:
            await asyncio.wait(list(self._tasks))

    def watch_store(self) -> None:
        """Follow the store's outages (a store that reports them)."""
        listen = getattr(self.store, "add_availability_listener", None)
        if listen is not None:
            listen(self._store_availability)

    def _store_availability(self, available: bool, why: str) -> None:
        """Invariant 8 when the store fails: every session ends with a Logout saying so, and
        Logons are refused, until the store is back and what was kept meanwhile is stored."""
        if not available:
            if getattr(self.store, "fenced", None):
                self._on_fenced(why)
            else:
                self.acceptor.store_lost(why)
            return
        task = asyncio.get_running_loop().create_task(self._catch_up_after_outage())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _catch_up_after_outage(self) -> None:
        """Store what the outage left, then accept Logons; tried again (backing off) while the
        store is up and it fails, for whatever reason."""
        delay = 0.1
        while True:
            try:
                if self.orders is not None:
                    await self.orders.store_back()
                await self.acceptor.store_back()
            except Exception as exc:
                if not getattr(self.store, "available", True):
                    return  # down again: its coming back starts another catch-up
                log.error("catching up after the store outage failed (%s); again in %.1f s",
                          exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            break
        if self.acceptor.store_down is None:
            log.warning("the store is back: Logons are accepted again")

    async def hand_over(self, session_id: str, to: str | None) -> None:
        """Give a session this node serves to node ``to`` (None: to whichever node a Logon
        reaches first) -- to hand it back to a node that was down, say. Its client gets a
        Logout saying so and logs on at the other node, which takes it over from the store.
        Raises KeyError (not served here), LookupError (``to`` not running), RuntimeError
        (requests in flight: try again)."""
        own = self.ownership
        if own is None:
            raise KeyError(session_id)

        async def let_go() -> None:
            if self.orders is not None:
                self.orders.let_go(session_id)  # first: refuses while requests are in flight
            where = f"node {to}" if to else "another node"
            await self.acceptor.end_session(session_id, f"session handed over to {where}")

        await own.hand_over(session_id, to, let_go)

    async def _adopt(self, taken: dict[str, str]) -> None:
        """Sessions taken over from a node that is gone: their state from the store."""
        sids = set(taken)
        await self.acceptor.reload(sids)
        if self.orders is not None:
            await self.orders.adopt(sids)

    def _on_fenced(self, why: str) -> None:
        if self.fenced.is_set():
            return
        log.critical("%s: ending every connection and stopping", why)
        self.fenced_reason = why
        self.acceptor.abort_all(why)
        self.fenced.set()

    async def stop(self) -> None:
        if self.alerts is not None:
            await self.alerts.stop()
            await self.alerts.venues.stop()
        if self.admin is not None:
            await self.admin.stop()
        await self.acceptor.stop()
        if self._reconciling is not None:
            self._reconciling.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reconciling
        if self.market_data is not None:
            await self.market_data.close()
        if self.balances is not None:
            await self.balances.close()
        if self.orders is not None:
            await self.orders.close()
        if self.market_data is not None:
            # the feeds the order path still watches (a POV's public trades)
            await self.market_data.md.close()
        if self.ownership is not None:
            await self.ownership.stop()


def build_connector(v: VenueConfig) -> Connector:
    if v.kind == "paper":
        try:
            conn = PaperConnector(PaperConfig(
                markets=paper_markets(v), balances=dict(v.balances), maker_fee=v.maker_fee,
                taker_fee=v.taker_fee, seed=v.seed, tick_interval_s=v.tick_interval, name=v.name,
            ))
        except ConfigError:
            raise
        except ValueError as exc:  # a market the simulator refuses (its own checks)
            raise ConfigError(f"[[venue]] {v.name}: {exc}") from None
        if not v.amend:
            conn.info = replace(conn.info, capabilities=replace(conn.capabilities, amend=False))
        return conn
    if v.kind == "paper-remote":
        assert v.port is not None  # the config requires it
        return RemotePaperConnector(v.host or "127.0.0.1", v.port, name=v.name, amend=v.amend)
    try:
        creds = load_credentials(v.credentials_env, v.secrets_file)
    except CredentialsError as exc:
        raise CredentialsError(f"[[venue]] {v.name}: {exc}") from None
    settings = VenueSettings(
        name=v.name, credentials=creds, testnet=v.testnet, urls=dict(v.urls),
        markets=frozenset(v.markets), symbols=tuple(v.symbols) if v.symbols else None,
        dead_man_s=v.dead_man_switch or None, recv_window_ms=v.recv_window_ms,
        request_timeout_s=v.request_timeout,
    )
    return exchange_connector(v.kind, settings, exchange_id=v.exchange_id,
                              options=v.ccxt_options, poll_interval=v.poll_interval)


def paper_markets(v: VenueConfig) -> tuple[MarketConfig, ...]:
    """The simulated venue's markets: the defaults, with each ``[[venue.market]]`` applied.
    Raises ConfigError for an unknown symbol or an unreadable recorded market (the simulator
    checks the rest when it is built)."""
    markets = {m.instrument.symbol: m for m in default_markets()}
    start_ns = time.time_ns()
    for entry in v.market:
        base = markets.get(entry.symbol)
        if base is None:
            raise ConfigError(f"[[venue]] {v.name}: [[venue.market]] symbol {entry.symbol!r} is "
                              f"not simulated (one of {', '.join(sorted(markets))})")
        changes: dict[str, object] = {
            k: val for k in ("mid", "volatility", "levels", "level_size", "half_spread_ticks",
                             "level_step_ticks", "trade_rate", "trade_size")
            if (val := getattr(entry, k)) is not None
        }
        if entry.recorded is not None:
            try:
                with entry.recorded.open(encoding="utf-8") as f:
                    changes["path"] = read_recorded(f, start_ns)
            except (OSError, ValueError) as exc:
                raise ConfigError(f"[[venue]] {v.name}: recorded market {entry.recorded}: "
                                  f"{exc}") from None
        markets[entry.symbol] = replace(base, **changes)  # type: ignore[arg-type]
    return tuple(markets.values())


def session_policy(opts: SessionOptions, venues: list[str]) -> SessionPolicy | None:
    default = opts.default_venue or (venues[0] if len(venues) == 1 else None)
    if default is None:
        return None
    allowed = frozenset(opts.venues or [default]) | frozenset(opts.accounts.values())
    return SessionPolicy(
        SessionRouting(default, allowed | {default}, dict(opts.accounts),
                       sor=opts.routing == "sor", order=tuple(venues)),
        cancel_on_disconnect=opts.cancel_on_disconnect,
        cod_grace=opts.cancel_on_disconnect_grace,
        report_pending_new=opts.report_pending_new,
        default_time_in_force=TimeInForce.GTC if opts.default_time_in_force == "gtc"
        else TimeInForce.DAY,
    )


def drop_copy_rules(cfg: Config, policies: Mapping[str, SessionPolicy]) -> dict[str, DropCopyRule]:
    """The drop copy sessions (``drop_copy_of``) and what each receives, among the sessions
    with order routing (``policies``). Raises ConfigError for a name that is none of them."""
    ours = cfg.gateway.sender_comp_id
    trading = [SessionID(s.begin_string, ours, s.target_comp_id) for s in cfg.session
               if str(SessionID(s.begin_string, ours, s.target_comp_id)) in policies]
    named = {str(SessionID(s.begin_string, ours, s.target_comp_id)):
             (s.drop_copy_of, s.drop_copy_accounts)
             for s in cfg.session if s.drop_copy_of is not None}
    try:
        return rules_for(named, trading)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


_LIMITS = tuple(f.name for f in dataclasses.fields(RiskLimits))


def risk_limits(opts: SessionOptions) -> RiskLimits:
    r = opts.risk
    return RiskLimits(**{k: getattr(r, k) for k in _LIMITS})


def account_risk_limits(opts: SessionOptions) -> dict[str, RiskLimits]:
    """Account (1) -> its limits: the session's, with the keys of ``[session.risk.accounts.X]``
    replaced."""
    session = risk_limits(opts)
    return {
        account: replace(session, **{k: getattr(a, k) for k in a.model_fields_set})
        for account, a in opts.risk.accounts.items()
    }


def taker_fees(cfg: Config) -> dict[str, Decimal]:
    """Venue -> the taker fee rate the router counts: the simulated venue's own, an exchange's
    when configured (else :attr:`FeedView.DEFAULT_TAKER_FEE`)."""
    return {v.name: v.taker_fee for v in cfg.venue
            if v.kind == "paper" or "taker_fee" in v.model_fields_set}


STRATEGIES: Mapping[str, StrategyFactory] = {
    TWAP: Twap, VWAP: Vwap, POV: Pov, ICEBERG: Iceberg, SOR: SmartRouter}
"""The execution algorithms offered (TargetStrategy 847 -> strategy): TWAP (847=1000), VWAP
(847=1, its profile from the configuration: :func:`configured`), POV (847=2); and the
iceberg, chosen by MaxFloor (111), and the smart order router (ExDestination SOR, or a
session's ``routing = "sor"``), under their internal names (never a client's 847)."""


def configured(cfg: Config) -> Mapping[str, StrategyFactory]:
    """:data:`STRATEGIES`, the VWAP's buckets and profile as ``[vwap]`` says. Raises
    ConfigError for a recorded profile that cannot be read."""
    v = cfg.vwap
    period = int(v.profile_period * 1_000_000_000)
    try:
        if v.recorded is not None:
            with v.recorded.open(encoding="utf-8") as f:
                profile = VolumeProfile.from_volumes(read_points(f, "volume"), v.recorded_bins,
                                                     period)
        else:
            profile = VolumeProfile(tuple(v.profile), period)
    except (OSError, ValueError) as exc:
        where = f"recorded profile {v.recorded}" if v.recorded is not None else "profile"
        raise ConfigError(f"[vwap] {where}: {exc}") from None
    return {**STRATEGIES, VWAP: functools.partial(
        Vwap, profile=profile, bucket_seconds=v.bucket_seconds)}


def build_gateway(
    cfg: Config,
    store: SessionStorePort,
    app: Application | None = None,
    *,
    strategies: Mapping[str, StrategyFactory] | None = None,
) -> Gateway:
    """The gateway ``cfg`` describes, on ``store``: the order path as its application unless
    ``app`` is given; ``strategies`` work orders with TargetStrategy (847) of their names
    (None: :data:`STRATEGIES` as configured, :func:`configured`)."""
    offered = strategies
    ours = cfg.gateway.sender_comp_id
    orders: OrderManager | None = None
    market_data: MarketDataRequests | None = None
    positions: Positions | None = None
    reconciler: Reconciler | None = None
    balances: BalanceBook | None = None
    if app is None and cfg.venue:
        connectors = {v.name: build_connector(v) for v in cfg.venue}
        names = [v.name for v in cfg.venue]
        policies: dict[str, SessionPolicy] = {}
        risk = RiskEngine()
        for s in cfg.session:
            sid = str(SessionID(s.begin_string, ours, s.target_comp_id))
            if s.drop_copy_of is not None:
                continue  # sends no orders (drop_copy_rules)
            policy = session_policy(s, names)
            if policy is not None:
                policies[sid] = policy
                risk.limits[sid] = risk_limits(s)
                for account, limits in account_risk_limits(s).items():
                    risk.limits[f"{sid}/{account}"] = limits
                if s.risk.kill_switch:
                    risk.killed[sid] = ""
        if not isinstance(store, OrderStorePort):
            raise TypeError(f"{type(store).__name__} cannot keep orders")
        orders = OrderManager(store, connectors, policies, risk,
                              strategies=configured(cfg) if offered is None else offered,
                              drop_copies=drop_copy_rules(cfg, policies))
        services = _services(store, orders, connectors, policies, risk, taker_fees(cfg),
                             cfg.gateway.benchmark_books)
        app, market_data, positions = services.app, services.market_data, services.positions
        reconciler, balances = services.reconciler, services.balances
        for name, conn in connectors.items():
            hooks = getattr(conn, "on_reconnect", None)
            if isinstance(hooks, list):
                # Invariant 4: what happened at the venue while we were cut off is reconciled
                # (the orders first: the positions compare what their fills make)
                hooks.append(functools.partial(orders.reconcile, name))
                hooks.append(functools.partial(reconciler.reconcile, name))
                # the balances pushed while the stream was down are read over REST
                hooks.append(functools.partial(balances.reseed, name))
    defs = [
        session_definition(SessionID(s.begin_string, ours, s.target_comp_id), s)
        for s in cfg.session
    ]
    templates = []
    for t in cfg.template:
        def make(sid: SessionID, opts: SessionOptions = t) -> SessionDef:
            return session_definition(sid, opts)

        templates.append(
            Template(t.begin_string, ours, frozenset(t.allowed_target_comp_ids), make)
        )
    file_log = None
    log_dir = cfg.gateway.log_dir
    if log_dir is not None:
        log_dir.mkdir(parents=True, exist_ok=True)

        def file_log(sid: SessionID) -> FileLog:
            assert log_dir is not None
            return FileLog(log_dir, sid.file_prefix)

    journal_dir = log_dir if log_dir is not None else _store_dir(cfg.gateway.store)
    acceptor = Acceptor(
        defs, store, app or UnavailableApplication(), templates=templates, file_log=file_log,
        message_log=cfg.gateway.message_log_to,
        journal=SeqJournal(journal_dir) if journal_dir is not None else None,
    )
    admin = None
    monitor = None
    if cfg.admin is not None and orders is None:
        log.warning("[admin] is ignored: the admin API needs the order path ([[venue]] entries)")
    if cfg.alerts is not None and orders is None:
        log.warning("[alerts] is ignored: the alerts watch the order path ([[venue]] entries)")
    if orders is not None:
        orders.bind(acceptor.flush)
        assert market_data is not None  # made with the order path
        market_data.bind(acceptor.flush)
        if cfg.admin is not None:
            a = cfg.admin
            from gateway.admin.api import AdminServer  # aiohttp's server: only when asked for

            admin = AdminServer(orders, acceptor, host=a.host, port=a.port,
                                token=admin_token(a.token_env), positions=positions,
                                balances=balances, mark=services.mark, store=store)
            admin.metrics = _metrics(admin, acceptor, orders, store)
        if cfg.alerts is not None:
            monitor = _alerts(cfg, acceptor, orders, admin, reconciler)
    gateway = Gateway(cfg, store, acceptor, orders, admin, market_data, positions,
                      reconciler, cfg.gateway.reconcile_interval, balances=balances)
    gateway.alerts = monitor
    if admin is not None:
        admin.hand_over = gateway.hand_over
    if isinstance(store, NodeStore):
        node = cfg.gateway.node or f"{os.uname().nodename[:48]}-{os.getpid()}"
        gateway.ownership = Ownership(store, node, cfg.gateway.lease)
    return gateway


def _metrics(admin: AdminServer, acceptor: Acceptor, orders: OrderManager,
             store: SessionStorePort) -> Metrics:
    """The Prometheus metrics, fed by the order path's and the store's hooks."""
    from gateway.admin.metrics import Metrics

    metrics = Metrics(acceptor, orders, admin.venues, store)
    orders.venue.timing = metrics.timing
    orders.recorder.timing = metrics.timing
    orders.recorder.fill_listeners.append(metrics.fill)
    orders.closed_listeners.append(metrics.order_closed)
    writer = getattr(store, "writer", None)
    if writer is not None and hasattr(writer, "on_commit"):
        writer.on_commit = metrics.commit
    return metrics


def _alerts(cfg: Config, acceptor: Acceptor, orders: OrderManager, admin: AdminServer | None,
            reconciler: Reconciler | None) -> AlertMonitor:
    """The alerts of ``[alerts]``, watching what the admin API watches (or a watch of their
    own without it)."""
    from gateway.admin.alerts import AlertMonitor, Alerts
    from gateway.admin.venues import VenueWatch

    c = cfg.alerts
    assert c is not None
    venues = admin.venues if admin is not None else VenueWatch(orders.connectors, orders.down)
    monitor = AlertMonitor(
        Alerts(c.webhooks, node=cfg.gateway.node or os.uname().nodename, timeout=c.timeout,
               repeat_after=c.repeat_after, retry_for=c.retry_for),
        acceptor, orders, venues, reject_rate=c.reject_rate, latency=c.latency)
    for part in (orders.venue, orders.recorder):
        part.timing = _both(part.timing, monitor.timing)
    if reconciler is not None:
        reconciler.alerts.append(monitor.position_adjusted)
    return monitor


def _both(first: Callable[[str, str, float], None] | None,
          second: Callable[[str, str, float], None]) -> Callable[[str, str, float], None]:
    if first is None:
        return second

    def both(kind: str, venue: str, seconds: float) -> None:
        first(kind, venue, seconds)
        second(kind, venue, seconds)

    return both


def _store_dir(url: str) -> Path | None:
    """The folder of a SQLite store file (None for other stores)."""
    if url.startswith("sqlite:///") and len(url) > len("sqlite:///"):
        return Path(url[len("sqlite:///"):]).parent
    return None


def admin_token(env: str | None) -> str | None:
    """The admin API's bearer token from the environment variable ``[admin] token_env`` names
    (None: no token is asked for)."""
    if env is None:
        return None
    token = os.environ.get(env, "").strip()
    if not token:
        raise CredentialsError(f"[admin] token_env: the environment variable {env} is not set")
    return token
