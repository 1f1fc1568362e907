"""Gateway configuration: a TOML file validated with pydantic; errors name the key at fault.

The embedded default is ``gateway/defaults/gateway.toml`` (:data:`DEFAULT_CONFIG`, shipped in
the package: ``fixgw run`` without ``--config`` uses it); the README documents every key.
"""

from __future__ import annotations

import ipaddress
import tomllib
from datetime import time
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from gateway.fix.validation_settings import ValidationSettings

WEEKDAYS = {"mon": 0, "tue": 1, "wed": 2, "thu": 3, "fri": 4, "sat": 5, "sun": 6}
BEGIN_STRINGS = ("FIX.4.4", "FIXT.1.1")
APPL_VERSIONS = ("FIX.5.0", "FIX.5.0SP2", "FIX.4.4")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ScheduleConfig(_Strict):
    non_stop: bool = True
    start_time: time = time(0, 0)
    end_time: time = time(0, 0)
    start_day: str | None = None
    end_day: str | None = None
    timezone: str = "UTC"

    @field_validator("start_day", "end_day")
    @classmethod
    def _day(cls, v: str | None) -> str | None:
        if v is not None and v[:3].lower() not in WEEKDAYS:
            raise ValueError(f"day must be one of {', '.join(WEEKDAYS)}")
        return v

    @model_validator(mode="after")
    def _days_together(self) -> ScheduleConfig:
        if (self.start_day is None) != (self.end_day is None):
            raise ValueError("start_day and end_day go together")
        return self


class LimitsConfig(_Strict):
    max_order_qty: Decimal | None = Field(default=None, gt=0)
    max_notional: Decimal | None = Field(default=None, gt=0)
    price_band: Decimal | None = Field(default=None, gt=0)
    """Largest distance of a limit price from the last price, as a fraction (0.05 = 5%)."""
    max_open_orders: int | None = Field(default=None, gt=0)
    max_orders_per_second: float | None = Field(default=None, gt=0)
    max_position: Decimal | None = Field(default=None, gt=0)
    """Largest net position in one base asset across the venues (open orders counted)."""
    max_gross_notional: Decimal | None = Field(default=None, gt=0)
    """Largest gross exposure across venues and assets, in the quote currency."""
    max_daily_loss: Decimal | None = Field(default=None, gt=0)
    """A loss (realized today + unrealized) beyond this engages the session's kill switch."""


class RiskConfig(LimitsConfig):
    kill_switch: bool = False
    accounts: dict[str, LimitsConfig] = {}
    """Per Account (1): limits of that account's orders (open orders and the rate counted per
    account); a key left out takes the session's value."""


class SessionOptions(_Strict):
    """Options shared by [[session]] and [[template]] entries (and [defaults])."""

    begin_string: Literal["FIX.4.4", "FIXT.1.1"] = "FIX.4.4"
    default_appl_ver_id: Literal["FIX.5.0", "FIX.5.0SP2"] | None = None
    data_dictionary: Path | None = None
    """A user dictionary (QuickFIX XML) for FIX.4.4 sessions; for FIXT the application one."""
    username: str | None = None
    password_hash: str | None = None
    """bcrypt hash of the Logon Password (554): `fixgw hash-password`."""
    allowed_addresses: list[str] | None = None
    max_latency: float = 120.0
    logon_timeout: float = 10.0
    logout_timeout: float = 2.0
    reset_on_logon: bool = False
    reset_on_logout: bool = False
    reset_on_disconnect: bool = False
    send_next_expected_msg_seq_num: bool = False
    timestamp_precision: Literal[0, 3, 6, 9] = 3
    max_message_size: int = Field(default=1 << 20, gt=64)
    max_outbound_bytes: int = Field(default=8 << 20, gt=1024)
    partial_message_timeout: float = Field(default=30.0, gt=0)
    rate_limit: float = Field(default=1000.0, ge=0)
    """Inbound messages per second (token bucket); 0: no limit."""
    rate_burst: int = Field(default=2000, gt=0)
    rate_action: Literal["reject", "logout"] = "reject"
    validation: ValidationSettings = ValidationSettings()
    """[session.validation]: gateway.fix.validation_settings.ValidationSettings, key for key."""
    schedule: ScheduleConfig = ScheduleConfig()
    # the order path
    default_venue: str | None = None
    """Where orders go without ExDestination (100) / SecurityExchange (207) / Account (1)."""
    venues: list[str] | None = None
    """Venues this session may trade (default: the default venue)."""
    accounts: dict[str, str] = {}
    """Account (1) -> venue name."""
    routing: Literal["static", "sor"] = "static"
    """static: an order without ExDestination (100) goes to the account's or the default venue;
    sor: the smart order router chooses among the session's venues (also for one with
    ExDestination SOR under "static")."""
    cancel_on_disconnect: Literal["off", "disconnect", "logout", "both"] = "off"
    cancel_on_disconnect_grace: float = Field(default=0.0, ge=0)
    report_pending_new: bool = False
    default_time_in_force: Literal["day", "gtc"] = "day"
    """TimeInForce of a NewOrderSingle without 59: FIX's Day, or GTC (crypto venues have no Day
    orders, so an OMS that omits 59 wants "gtc" there; reports carry 59 either way)."""
    risk: RiskConfig = RiskConfig()

    @field_validator("allowed_addresses")
    @classmethod
    def _networks(cls, v: list[str] | None) -> list[str] | None:
        for net in v or []:
            ipaddress.ip_network(net, strict=False)
        return v

    @field_validator("password_hash")
    @classmethod
    def _bcrypt(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith(("$2a$", "$2b$", "$2y$")):
            raise ValueError("password_hash must be a bcrypt hash ($2b$...): fixgw hash-password")
        return v

    @model_validator(mode="after")
    def _fixt(self) -> SessionOptions:
        if self.begin_string == "FIXT.1.1" and self.default_appl_ver_id is None:
            raise ValueError("a FIXT.1.1 session needs default_appl_ver_id")
        if self.begin_string == "FIX.4.4" and self.default_appl_ver_id is not None:
            raise ValueError("default_appl_ver_id is for FIXT.1.1 sessions only")
        return self


class SessionConfig(SessionOptions):
    target_comp_id: str = Field(min_length=1)
    drop_copy_of: list[str] | None = Field(default=None, min_length=1)
    """A drop copy session (gateway.orders.dropcopy): it receives a copy of every
    ExecutionReport of these sessions (TargetCompIDs, session ids like
    ``FIX.4.4:GATEWAY->CLIENT1``, or ``*``: every session with order routing) and may send
    no application message."""
    drop_copy_accounts: list[str] | None = Field(default=None, min_length=1)
    """Only the reports of orders with one of these Accounts (1) (default: every order)."""

    @model_validator(mode="after")
    def _drop_copy(self) -> SessionConfig:
        if self.drop_copy_of is None:
            if self.drop_copy_accounts is not None:
                raise ValueError("drop_copy_accounts is for a drop copy session (drop_copy_of)")
            return self
        routing = [k for k in ("default_venue", "venues", "accounts", "routing")
                   if k in self.model_fields_set]
        if routing:
            raise ValueError(f"a drop copy session (drop_copy_of) sends no orders: "
                             f"{', '.join(routing)} do not apply to it")
        return self


class TemplateConfig(SessionOptions):
    allowed_target_comp_ids: list[str] = Field(min_length=1)


class TLSConfig(_Strict):
    cert_file: Path
    key_file: Path
    client_ca_file: Path | None = None
    """When set, clients must present a certificate signed by this CA."""


_PAPER_ONLY = ("seed", "maker_fee", "balances", "tick_interval", "market")
_NATIVE = ("binance", "okx", "bybit", "ccxt")
_EXCHANGE_ONLY = ("credentials_env", "secrets_file", "testnet", "urls", "markets", "symbols",
                  "dead_man_switch", "recv_window_ms", "request_timeout", "exchange_id",
                  "ccxt_options", "poll_interval")


class PaperMarketConfig(_Strict):
    """One instrument's synthetic market on the simulated venue (``[[venue.market]]``): the
    keys given replace the defaults of ``connectors.paper.market.default_markets``."""

    symbol: str = Field(min_length=1)
    mid: Decimal | None = Field(default=None, gt=0)
    """The starting mid price."""
    volatility: Decimal | None = Field(default=None, ge=0)
    """Standard deviation of one tick's relative mid move (0: the mid stays put)."""
    levels: int | None = Field(default=None, ge=0)
    level_size: Decimal | None = Field(default=None, gt=0)
    half_spread_ticks: int | None = Field(default=None, ge=1)
    level_step_ticks: int | None = Field(default=None, ge=1)
    recorded: Path | None = None
    """A CSV file of ``timestamp,mid`` lines replayed instead of the random walk, from the
    gateway's start, at the recorded pace."""
    trade_rate: Decimal | None = Field(default=None, ge=0)
    """Synthetic market trades: their mean number per tick (Poisson; default 0, none), each an
    outside taker's market order, buy or sell, crossing the book (our resting orders
    included) and shown on the public feed."""
    trade_size: Decimal | None = Field(default=None, gt=0)
    """The mean size of a synthetic trade (exponential; default a tenth of level_size)."""


class VenueConfig(_Strict):
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    kind: Literal["paper", "paper-remote", "binance", "okx", "bybit", "ccxt"] = "paper"
    """paper: the simulated venue inside the gateway; paper-remote: the simulated venue of a
    ``fixgw venue-sim`` process at ``host``:``port`` (it outlives the gateway); binance, okx,
    bybit: the native connectors; ccxt: any venue ccxt knows (``exchange_id``)."""
    host: str | None = None
    """paper-remote: the venue simulator's address (default 127.0.0.1)."""
    port: int | None = Field(default=None, ge=1, le=65535)
    """paper-remote: the venue simulator's port (required)."""
    seed: int = 1
    maker_fee: Decimal = Decimal("0.0002")
    taker_fee: Decimal = Decimal("0.0005")
    """The simulated venue: the fee it charges for taking liquidity. An exchange: the account's
    taker fee rate the smart order router counts (default 0.001, the venues' base tier)."""
    balances: dict[str, Decimal] = {"BTC": Decimal(10), "ETH": Decimal(100),
                                    "SOL": Decimal(1000), "USDT": Decimal(1_000_000)}
    tick_interval: float = Field(default=0.5, gt=0)
    amend: bool = True
    """The simulated venue amends natively; false makes the gateway cancel, then place."""
    market: list[PaperMarketConfig] = []
    """The simulated venue's markets, per instrument (the others keep their defaults)."""
    # ---- exchanges (binance, okx, bybit, ccxt) ----
    credentials_env: str | None = Field(default=None, pattern=r"^[A-Z][A-Z0-9_]*$")
    """Prefix of the environment variables with the API credentials: ``<P>_API_KEY``,
    ``<P>_API_SECRET``, ``<P>_API_PASSPHRASE`` (OKX), ``<P>_PRIVATE_KEY_FILE`` (Binance Ed25519)."""
    secrets_file: Path | None = None
    """A TOML file with ``api_key``, ``api_secret``, ``passphrase``, ``private_key_file``."""
    testnet: bool = False
    """The venue's testnet / demo-trading endpoints."""
    urls: dict[str, str] = {}
    """Endpoint overrides by the connector's keys (``rest``, ``ws_private``, ``ws_api``)."""
    markets: list[Literal["spot", "perpetual"]] = ["spot"]
    symbols: list[str] | None = None
    """Canonical symbols to trade (default: every instrument of the markets)."""
    dead_man_switch: float | None = Field(default=60, ge=0)
    """Seconds of the venue-side cancel-all-after timer, refreshed while the gateway runs (0 or
    absent where the venue has none: no timer)."""
    recv_window_ms: int = Field(default=5000, ge=100, le=60000)
    request_timeout: float = Field(default=10.0, gt=0)
    exchange_id: str | None = None
    """ccxt: the exchange's ccxt id (``kraken``, ``coinbase``, ...)."""
    ccxt_options: dict[str, Any] = {}
    poll_interval: float = Field(default=1.0, gt=0)
    """ccxt: how often orders and trades are polled where the venue has no watcher."""

    @model_validator(mode="after")
    def _kind_keys(self) -> VenueConfig:
        if self.kind == "paper-remote":
            if self.port is None:
                raise ValueError('kind = "paper-remote" needs port (the port of fixgw venue-sim)')
            misplaced = [k for k in _PAPER_ONLY if k in self.model_fields_set]
            if misplaced:
                raise ValueError(
                    f'{", ".join(misplaced)}: not for kind = "paper-remote" (the venue simulator '
                    "has its own: fixgw venue-sim --seed N --tick-interval S)"
                )
        elif self.host is not None or self.port is not None:
            raise ValueError('host and port are for kind = "paper-remote" only')
        if self.kind in _NATIVE:
            misplaced = [k for k in _PAPER_ONLY if k in self.model_fields_set]
            if misplaced:
                raise ValueError(f'{", ".join(misplaced)}: for the simulated venue only')
            if self.credentials_env is None and self.secrets_file is None:
                raise ValueError(f'kind = "{self.kind}" needs credentials_env or secrets_file')
            if self.kind == "ccxt" and not self.exchange_id:
                raise ValueError('kind = "ccxt" needs exchange_id (e.g. "kraken")')
        else:
            misplaced = [k for k in _EXCHANGE_ONLY if k in self.model_fields_set]
            if misplaced:
                raise ValueError(f'{", ".join(misplaced)}: for exchange venues only '
                                 '(kind = "binance", "okx", "bybit" or "ccxt")')
        return self


class VwapConfig(_Strict):
    """The VWAP (TargetStrategy 847=1, ``gateway.orders.vwap``): its buckets and the volume
    profile they follow."""

    bucket_seconds: float = Field(default=10, gt=0)
    """One bucket (a child) per this many seconds of the window (1 to 100 buckets)."""
    profile: list[Decimal] = [Decimal(1)]
    """Weights of the volume curve's equal bins over ``profile_period`` (24 over a day: per UTC
    hour); the default, one bin, is flat."""
    profile_period: float = Field(default=86400, gt=0)
    """Seconds the curve spans and repeats over, its first bin at UTC midnight for a day."""
    recorded: Path | None = None
    """Instead of ``profile``: a CSV file of ``timestamp,volume`` lines, summed per bin of the
    period (``recorded_bins`` bins)."""
    recorded_bins: int = Field(default=24, ge=1, le=100_000)

    @model_validator(mode="after")
    def _one_profile(self) -> VwapConfig:
        if self.recorded is not None and "profile" in self.model_fields_set:
            raise ValueError("profile and recorded: one or the other")
        if not self.profile or any(w < 0 for w in self.profile) or sum(self.profile) <= 0:
            raise ValueError("profile: weights not negative, at least one above zero")
        return self


class MessageLogTo(NamedTuple):
    """Whether every FIX message is logged to the store's ``message_log`` table, and to the
    files in ``log_dir`` (:attr:`GatewayConfig.message_log_to`)."""

    store: bool
    files: bool


class GatewayConfig(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(default=9876, ge=0, le=65535)
    sender_comp_id: str = Field(default="GATEWAY", min_length=1)
    store: str = "sqlite:///data/fixgw.db"
    log_dir: Path | None = Path("data/log")
    """The QuickFIX-format file logs' directory; ``""``: none (the message log is then the
    store's; the numbers taken while the store is down are journaled beside a SQLite store's
    file)."""
    message_log: Literal["file", "store", "both"] | None = None
    """Where every FIX message read or written is logged for audit: ``file`` (the
    QuickFIX-format logs in ``log_dir``, written by a thread of their own), ``store`` (the
    store's ``message_log`` table, in the order path's commits) or ``both``. Default: ``file``
    with a ``log_dir``, else ``store``."""
    store_commits: Literal["inline", "thread"] = "inline"
    """A SQLite file store: ``inline`` commits a turn's writes on the event loop's thread when
    the writer thread has nothing queued (no hand-off between threads per order, as QuickFIX's
    FileStore writes on its session's thread); ``thread``: always by the writer thread. A
    PostgreSQL store always commits on the writer thread (gateway.store.writer)."""
    busy_poll_us: int | None = Field(default=None, ge=0, le=1000)
    """Microseconds the event loop's thread may poll its sockets before it sleeps (the window
    adapts: gateway.server.busypoll); 0: never. Lowers the round trip of a client with one
    order in flight; while anything arrives on the loop's sockets (sessions, venue feeds, the
    admin API) less than this apart the thread never sleeps (up to a core). Default: 200 with
    a SQLite file committing inline or the memory store, 0 where commits are handed to the
    writer thread (PostgreSQL, SQLite in memory, ``store_commits = "thread"``: a polling loop
    delays that thread's hand-offs)."""
    tls: TLSConfig | None = None
    node: str | None = Field(default=None, min_length=1, max_length=64,
                             pattern=r"^[A-Za-z0-9_.:-]+$")
    """This gateway's node name among those sharing the store (hot standby); default: one
    name per process (``<host>-<pid>``)."""
    lease: float = Field(default=5.0, ge=0.5, le=300)
    """Seconds a node's lease runs without renewal; another node takes over the sessions of
    one whose lease ran out (within about a fifth of this)."""
    advertise: str | None = None
    """The address other nodes name when they refuse this node's sessions (default: the
    listening host and port)."""
    reconcile_interval: float = Field(default=300.0, ge=1.0)
    """Seconds between two comparisons of the positions computed from the fills with the
    venues' own (also done at start and after every reconnection to a venue)."""
    benchmark_books: bool = False
    """Watch the public book of every instrument a client order is placed on (from the first
    such order on), so that each later order records its arrival mid and the market's trades
    over its life for ``fixgw report`` (gateway.orders.benchmarks). Off: only books watched
    for other reasons (market data subscribers, strategies, the router) give benchmarks."""

    @field_validator("log_dir", mode="before")
    @classmethod
    def _no_log_dir(cls, v: Any) -> Any:
        """``log_dir = ""``: no file logs (TOML has no null; an empty path would be the
        working directory)."""
        return None if v == "" else v

    @model_validator(mode="after")
    def _message_log_has_files(self) -> GatewayConfig:
        if self.message_log in ("file", "both") and self.log_dir is None:
            raise ValueError(f'message_log = "{self.message_log}" needs a log_dir')
        return self

    @property
    def message_log_to(self) -> MessageLogTo:
        """Where every message is logged: the store's ``message_log`` table, the files in
        ``log_dir``, or both."""
        where = self.message_log or ("store" if self.log_dir is None else "file")
        return MessageLogTo(store=where != "file", files=where != "store")


class AdminConfig(_Strict):
    """The HTTP admin API (gateway.admin.api): the kill switch and health."""

    host: str = "127.0.0.1"
    port: int = Field(default=9877, ge=0, le=65535)
    token_env: str | None = None
    """Environment variable holding the bearer token every request must carry; without it
    the API takes no token, and must then listen on a loopback address."""

    @model_validator(mode="after")
    def _loopback_without_token(self) -> AdminConfig:
        if self.token_env is None:
            try:
                loopback = ipaddress.ip_address(self.host).is_loopback
            except ValueError:
                loopback = self.host == "localhost"
            if not loopback:
                raise ValueError("an admin API off the loopback address needs token_env")
        return self


class AlertsConfig(_Strict):
    """Alerts (gateway.admin.alerts): an ERROR line in the log, and a JSON POST to each
    webhook (Slack-compatible: ``{"text": ...}``)."""

    webhooks: list[str] = []
    """URLs (http or https) the alerts are POSTed to; none: the log only."""
    reject_rate: float = Field(default=0.0, ge=0)
    """Rejects a minute of one session over which an alert fires (0: none)."""
    latency: float = Field(default=0.0, ge=0)
    """Seconds a venue call or a report may take before an alert fires (0: none)."""
    repeat_after: float = Field(default=600.0, gt=0)
    """An alert still firing is said again after this many seconds."""
    timeout: float = Field(default=5.0, gt=0)
    """Seconds a webhook's answer may take."""
    retry_for: float = Field(default=300.0, ge=0)
    """Seconds from when an alert is said during which a webhook that cannot be reached or
    answers 408, 429 or 5xx is asked again (1, 2, 4 ... 30 s apart; 0: never)."""

    @field_validator("webhooks")
    @classmethod
    def _urls(cls, v: list[str]) -> list[str]:
        for url in v:
            if not url.startswith(("http://", "https://")):
                raise ValueError("a webhook is an http:// or https:// URL")
        return v


class Config(_Strict):
    gateway: GatewayConfig = GatewayConfig()
    admin: AdminConfig | None = None
    alerts: AlertsConfig | None = None
    session: list[SessionConfig] = []
    template: list[TemplateConfig] = []
    venue: list[VenueConfig] = []
    vwap: VwapConfig = VwapConfig()

    @model_validator(mode="after")
    def _venues_known(self) -> Config:
        names = {v.name for v in self.venue}
        if len(names) != len(self.venue):
            raise ValueError("two [[venue]] entries have the same name")
        for s in [*self.session, *self.template]:
            used = {*(s.venues or []), *s.accounts.values()}
            if s.default_venue:
                used.add(s.default_venue)
            unknown = used - names
            if unknown:
                raise ValueError(f"unknown venue(s) {', '.join(sorted(unknown))}")
        return self

    @model_validator(mode="after")
    def _drop_copies_known(self) -> Config:
        ours = self.gateway.sender_comp_id
        trading = [s for s in self.session if s.drop_copy_of is None]
        names = {"*"} | {s.target_comp_id for s in trading} | {
            f"{s.begin_string}:{ours}->{s.target_comp_id}" for s in trading}
        for s in self.session:
            unknown = [n for n in s.drop_copy_of or () if n not in names]
            if unknown:
                raise ValueError(f"session {s.target_comp_id}: drop_copy_of names "
                                 f"{', '.join(unknown)}: no [[session]] of that TargetCompID or "
                                 "id that trades (a drop copy does not copy a drop copy)")
        return self

    @model_validator(mode="after")
    def _unique(self) -> Config:
        seen: set[tuple[str, str]] = set()
        for s in self.session:
            key = (s.begin_string, s.target_comp_id)
            if key in seen:
                raise ValueError(f"session {s.begin_string} {s.target_comp_id} defined twice")
            seen.add(key)
        return self


class ConfigError(ValueError):
    """The configuration file is unreadable or invalid; the message says where."""


DEFAULT_CONFIG = Path(__file__).resolve().parent / "defaults" / "gateway.toml"
"""The embedded default configuration (the simulated venue, SQLite under ./data)."""


def load_config(path: str | Path | None = None) -> Config:
    """The configuration in ``path`` (None: the embedded default, :data:`DEFAULT_CONFIG`)."""
    p = DEFAULT_CONFIG if path is None else Path(path)
    try:
        raw = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{p}: no such file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: not valid TOML: {exc}") from None
    try:
        cfg = Config.model_validate(raw)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            where = ".".join(str(x) for x in err["loc"])
            lines.append(f"  {where}: {err['msg']}")
        raise ConfigError(f"{p}: invalid configuration:\n" + "\n".join(lines)) from None
    base = p.resolve().parent
    return _resolve_paths(cfg, base)


def _resolve_paths(cfg: Config, base: Path) -> Config:
    def fix(opt: Path | None) -> Path | None:
        return None if opt is None else opt if opt.is_absolute() else base / opt

    sessions = [
        s.model_copy(update={"data_dictionary": fix(s.data_dictionary)}) if s.data_dictionary else s
        for s in cfg.session
    ]
    templates = [
        t.model_copy(update={"data_dictionary": fix(t.data_dictionary)}) if t.data_dictionary else t
        for t in cfg.template
    ]
    tls = cfg.gateway.tls
    if tls is not None:
        tls = tls.model_copy(update={
            "cert_file": fix(tls.cert_file) or tls.cert_file,
            "key_file": fix(tls.key_file) or tls.key_file,
            "client_ca_file": fix(tls.client_ca_file),
        })
    gw = cfg.gateway.model_copy(update={"tls": tls})
    venues = [
        v.model_copy(update={
            "secrets_file": fix(v.secrets_file),
            "market": [m.model_copy(update={"recorded": fix(m.recorded)}) for m in v.market],
        })
        for v in cfg.venue
    ]
    vwap = cfg.vwap.model_copy(update={"recorded": fix(cfg.vwap.recorded)})
    return cfg.model_copy(update={"session": sessions, "template": templates, "gateway": gw,
                                  "venue": venues, "vwap": vwap})
