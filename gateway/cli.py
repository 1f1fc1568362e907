"""``fixgw`` command line: ``run`` (the gateway), ``conformance-server`` (the acceptance-test
application), ``venue-sim`` (the simulated venue as its own process), ``client`` (a small FIX
initiator for trying the gateway out), ``audit`` and ``replay`` (FIX logs checked, and played
again to a gateway: gateway/audit/), ``report`` (execution analytics from the order store:
gateway/analytics/)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gateway.logs import FORMATS
from gateway.logs import configure as configure_logging
from gateway.server.ports import SessionStorePort

if TYPE_CHECKING:
    from gateway.config import Config

log = logging.getLogger("fixgw")

GC_THRESHOLD_0 = 50_000
"""Allocations between young collections once started (CPython's default: 700)."""


def open_store(url: str, inline_commits: bool = True) -> SessionStorePort:
    if url == "memory:":
        from gateway.store.memory import MemoryStore

        return MemoryStore()
    from gateway.store.store import SessionStore

    return SessionStore(url, inline_commits=inline_commits)


@contextlib.asynccontextmanager
async def _started_store(
    url: str, inline_commits: bool = True
) -> AsyncIterator[SessionStorePort]:
    """The store at ``url`` (a sqlite file's folder created), started, and closed on exit."""
    if url.startswith("sqlite:///"):
        Path(url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
    store = open_store(url, inline_commits)
    start = getattr(store, "start", None)
    if start is not None:
        await start()
    try:
        yield store
    finally:
        close = getattr(store, "close", None)
        if close is not None:
            await close()


class _Stop(asyncio.Event):
    """Set by SIGINT/SIGTERM; :attr:`signal` names the one received."""

    signal = ""


def _stop_on_signal() -> _Stop:
    """An event set by SIGINT/SIGTERM. Install it before announcing "listening": whoever
    started us may stop us at once."""
    loop = asyncio.get_running_loop()
    stop = _Stop()

    def received(sig: signal.Signals) -> None:
        if not stop.is_set():
            stop.signal = sig.name
            logging.getLogger("fixgw").info("%s received: stopping", sig.name)
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, received, sig)
    return stop


async def _conformance(args: argparse.Namespace) -> int:
    from gateway.audit.filelog import FileLog
    from gateway.conformance import EchoApplication, conformance_sessions
    from gateway.fix.session import SessionID
    from gateway.server.acceptor import Acceptor

    file_log = None
    if args.log_dir:
        log_dir = Path(args.log_dir)

        def file_log(sid: SessionID) -> FileLog:
            return FileLog(log_dir, sid.file_prefix)

    async with _started_store(args.store) as store:
        sessions = conformance_sessions(not args.standard_bmr)
        acceptor = Acceptor(sessions, store, EchoApplication(), file_log=file_log)
        host, port = await acceptor.start(args.host, args.port)
        stop = _stop_on_signal()
        print(f"listening on {host}:{port}", flush=True)
        await stop.wait()
        await acceptor.stop()
    return 0


BUSY_POLL_US = 200
"""The longest busy-polling window of a gateway whose store commits on the event loop's thread
(``[gateway] busy_poll_us`` unset)."""


def busy_poll_us(cfg: Config) -> int:
    """``[gateway] busy_poll_us``, or its default: :data:`BUSY_POLL_US` where the order path
    hands no commit to another thread (a SQLite file committing inline, the memory store),
    else 0 (gateway.server.busypoll)."""
    from gateway.store.writer import commits_inline

    g = cfg.gateway
    if g.busy_poll_us is not None:
        return g.busy_poll_us
    inline = g.store == "memory:" or commits_inline(g.store, g.store_commits == "inline")
    return BUSY_POLL_US if inline else 0


def _run_gateway(args: argparse.Namespace) -> int:
    """``fixgw run``: the configuration read, then the gateway on an event loop whose
    selector polls before it sleeps (``[gateway] busy_poll_us``, gateway.server.busypoll)."""
    from gateway.config import ConfigError, load_config
    from gateway.server.busypoll import event_loop_factory

    try:
        cfg = load_config(args.config)
    except ConfigError as exc:
        print(f"fixgw: {exc}", file=sys.stderr)
        return 2
    with asyncio.Runner(loop_factory=event_loop_factory(busy_poll_us(cfg))) as runner:
        return runner.run(_run(cfg))


async def _run(cfg: Config) -> int:
    from connectors.base import VenueError
    from connectors.common.credentials import CredentialsError
    from gateway.app import build_gateway
    from gateway.config import ConfigError
    from gateway.server.busypoll import polls_up_to
    from gateway.store.nodes import NodeBusy, NodeFenced

    async with _started_store(cfg.gateway.store,
                              cfg.gateway.store_commits == "inline") as store:
        try:
            gw = build_gateway(cfg, store)
        except (CredentialsError, ConfigError) as exc:
            print(f"fixgw: {exc}", file=sys.stderr)
            return 2
        try:
            host, port = await gw.start()
        except (NodeBusy, NodeFenced) as exc:  # another process is (or became) this node
            print(f"fixgw: {exc}", file=sys.stderr)
            await gw.stop()
            return 3
        except VenueError as exc:  # the store's own venue state cannot be read
            print(f"fixgw: a venue cannot be reached: {exc}", file=sys.stderr)
            await gw.stop()
            return 1
        except OSError as exc:  # the FIX or the admin port is taken
            print(f"fixgw: cannot listen: {exc}", file=sys.stderr)
            await gw.stop()
            return 1
        names = ", ".join(f"{s.begin_string}:{s.target_comp_id}" for s in cfg.session)
        _tune_gc()
        stop = _stop_on_signal()
        print(f"listening on {host}:{port} as {cfg.gateway.sender_comp_id} ({names})",
              flush=True)
        admin = ""
        if gw.admin_address is not None:
            admin_host, admin_port = gw.admin_address
            admin = f"http://{admin_host}:{admin_port}"
            print(f"admin API on {admin}", flush=True)
        polls = polls_up_to(asyncio.get_running_loop())
        log.info("fixgw %s started: FIX on %s:%d, sessions %s, venues %s, store %s, admin API "
                 "%s, busy polling %s", _version(), host, port, names or "none",
                 ", ".join(v.name for v in cfg.venue) or "none",
                 _store_kind(cfg.gateway.store), admin or "off",
                 f"up to {polls:.0f} us" if polls else "off")
        fenced = asyncio.ensure_future(gw.fenced.wait())
        await asyncio.wait([asyncio.ensure_future(stop.wait()), fenced],
                           return_when=asyncio.FIRST_COMPLETED)
        why = stop.signal or ("fenced: " + gw.fenced_reason if gw.fenced.is_set() else "?")
        log.info("stopping (%s): ending the sessions, closing the venues and the store", why)
        await gw.stop()
        log.info("stopped")
        if gw.fenced.is_set():
            print(f"fixgw: stopped: {gw.fenced_reason}", file=sys.stderr)
            return 3
    return 0


def _store_kind(url: str) -> str:
    """The store's URL without credentials (a log line never carries a password): no user or
    password, before the host or in the query (``?user=...&password=...``, libpq's
    ``sslpassword``, a secret or a token)."""
    from sqlalchemy.engine import URL, make_url
    from sqlalchemy.exc import ArgumentError

    try:
        u = make_url(url)
    except ArgumentError:  # not a URL SQLAlchemy reads (the store refuses it anyway)
        scheme, sep, rest = url.partition("://")
        return f"{scheme}://{rest.rpartition('@')[2].partition('?')[0]}" if sep else url
    query = {k: v for k, v in u.query.items()
             if k.lower() != "user" and not any(w in k.lower() for w in ("pass", "secret",
                                                                           "token"))}
    return URL.create(u.drivername, host=u.host, port=u.port, database=u.database,
                      query=query).render_as_string(hide_password=True)


def _tune_gc() -> None:
    """Fewer, cheaper cyclic collections on the order path.

    The order path allocates many short-lived objects per order (messages, events, rows),
    almost none of them in reference cycles; CPython's default first threshold (700
    allocations) runs a young collection every few orders, and the oldest generation's
    collections walk every open order. Objects alive once the gateway has started (the
    dictionaries, configuration, orders loaded from the store) are moved out of the
    collector's sight (:func:`gc.freeze`) and the young threshold is raised. Measured with
    ``scripts/bench_orders.py``: p99 at 100 in flight about 40% lower (README, figures).
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_THRESHOLD_0, 20, 100)


async def _venue_sim(args: argparse.Namespace) -> int:
    from connectors.paper.config import PaperConfig
    from connectors.paper.server import VenueSimServer, VenueSimulator

    interval = args.tick_interval
    venue = VenueSimulator(PaperConfig(seed=args.seed, tick_interval_s=interval or 1.0))
    if interval:
        await venue.start()  # the market clock; 0: only the tick op moves the markets
    server = VenueSimServer(venue)
    host, port = await server.start(args.host, args.port)
    stop = _stop_on_signal()
    print(f"listening on {host}:{port}", flush=True)
    await stop.wait()
    await server.close()
    await venue.close()
    return 0


async def _venue_check(args: argparse.Namespace) -> int:
    from connectors.common.credentials import CredentialsError
    from gateway.app import build_connector
    from gateway.config import ConfigError, load_config
    from gateway.venuecheck import CheckFailed, check_venue, venue_of

    try:
        cfg = load_config(args.config)
        name = venue_of(cfg, args.venue)
        conn = build_connector(next(v for v in cfg.venue if v.name == name))
    except (ConfigError, CheckFailed, CredentialsError) as exc:
        print(f"fixgw: {exc}", file=sys.stderr)
        return 2
    try:
        await check_venue(conn, args.symbol, place=args.place,
                          say=lambda line: print(line, flush=True))
    except CheckFailed as exc:
        print(f"fixgw: venue {name}: {exc}", file=sys.stderr)
        return 1
    print(f"venue {name}: OK", flush=True)
    return 0


def _kill_switch(args: argparse.Namespace) -> int:
    """``fixgw kill-switch``: the admin API's kill switch from the command line."""
    import json

    if not args.status and not args.reason.strip():
        print("fixgw: --reason is required: say why (it is stored and logged)", file=sys.stderr)
        return 2

    def body(cfg: Config) -> bytes | None:
        if args.status:
            return None
        scope = "*" if args.all else _session_scope(cfg, args.session)
        return json.dumps({"scope": scope, "engaged": not args.release,
                           "reason": args.reason}).encode()

    answer = _admin_call(args, "/kill-switch", body)
    if isinstance(answer, int):
        return answer
    print(answer)
    return 0


def _routing(args: argparse.Namespace) -> int:
    """``fixgw routing ORDERID``: the smart order router's decisions for an order."""
    import json
    from decimal import Decimal
    from urllib.parse import quote

    answer = _admin_call(args, f"/orders/{quote(args.order_id, safe='')}/routing",
                         lambda cfg: None)
    if isinstance(answer, int):
        return answer
    if args.json:
        print(answer)
        return 0
    decisions = json.loads(answer)["decisions"]
    if not decisions:
        print(f"order {args.order_id}: not routed by the smart order router")
    for d in decisions:
        what = f"routing {d['round']}" if "round" in d else "a child's routing"
        print(f"{what} of order {args.order_id}: {d['quantity']} at "
              f"{'limit ' + d['limit'] if d['limit'] else 'market'}")
        for venue, v in d["venues"].items():
            best = v["levels"][0] if v["levels"] else None
            seen = f"best {best[1]} @ {best[0]}" if best else (
                "book not known" if not v["book_known"] else "book empty")
            print(f"  {venue:12} {seen}; taker fee {v['taker_fee']}; last "
                  f"{v['last_price']}; free {v['available'] or 'not known'}")
        for venue, why in d["left_out"].items():
            print(f"  {venue:12} left out: {why}")
        for s in d["shares"]:
            print(f"  -> {s['quantity']} at {s['venue']} (limit {s['price'] or 'market'}, "
                  f"expected {s['expected_px'] or '?'}): {s['why']}")
        if Decimal(d["unrouted"]) != 0:
            print(f"  not routed: {d['unrouted']}")
    return 0


def _admin_call(args: argparse.Namespace, path: str,
                body: Callable[[Config], bytes | None]) -> str | int:
    """GET (POST with ``body(cfg)``) ``path`` of the configured admin API: its answer, or
    the exit code after saying what went wrong."""
    import urllib.error
    import urllib.request

    from connectors.common.credentials import CredentialsError
    from gateway.app import admin_token
    from gateway.config import DEFAULT_CONFIG, ConfigError, load_config

    try:
        cfg = load_config(args.config)
        if cfg.admin is None:
            raise ConfigError(f"{args.config or DEFAULT_CONFIG}: no [admin] section: the admin "
                              "API is off")
        token = admin_token(cfg.admin.token_env)
    except (ConfigError, CredentialsError) as exc:
        print(f"fixgw: {exc}", file=sys.stderr)
        return 2
    # a wildcard listening address is reached on the loopback of its family (an IPv6
    # listener takes IPv6 only)
    host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(cfg.admin.host, cfg.admin.host)  # noqa: S104
    if ":" in host:
        host = f"[{host}]"
    url = f"http://{host}:{cfg.admin.port}{path}"
    data = body(cfg)
    req = urllib.request.Request(url, data=data, method="GET" if data is None else "POST")  # noqa: S310 - http to the configured admin API
    req.add_header("Content-Type", "application/json")
    if token is not None:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=args.timeout) as resp:  # noqa: S310
            answer: str = resp.read().decode()
    except urllib.error.HTTPError as exc:
        print(f"fixgw: {exc.code}: {exc.read().decode(errors='replace')}", file=sys.stderr)
        return 1
    except (urllib.error.URLError, OSError) as exc:
        print(f"fixgw: the admin API at {url} cannot be reached: {exc}", file=sys.stderr)
        return 1
    return answer


def _audit(args: argparse.Namespace) -> int:
    """``fixgw audit``: gateway.audit.run with the store wired in."""
    from gateway.audit.errors import InputError
    from gateway.audit.run import EXIT_USAGE, AuditOptions, run_audit
    from gateway.audit.sources import parse_time

    try:
        since = parse_time(args.since) if args.since else b""
        until = parse_time(args.until) if args.until else b""
    except ValueError as exc:
        print(f"fixgw audit: {exc}", file=sys.stderr)
        return EXIT_USAGE
    types = None
    if args.message_types:
        types = frozenset(t.strip().encode() for t in args.message_types.split(",") if t.strip())
    store = None
    if args.store:
        from gateway.store.auditview import StoreAuditView

        try:
            store = StoreAuditView(args.store)
        except InputError as exc:
            print(f"fixgw audit: {exc}", file=sys.stderr)
            return EXIT_USAGE
    opts = AuditOptions(
        paths=list(args.paths), session=args.session, since=since, until=until,
        message_types=types, json_path=Path(args.json) if args.json else None,
        html_path=Path(args.html) if args.html else None, order=args.order,
        follow=args.follow, store_name=store.name if store is not None else "store")
    stop = [False]
    if args.follow:
        def on_signal(signum: int, frame: object) -> None:
            stop[0] = True

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
    try:
        return run_audit(opts, store=store, stopped=lambda: stop[0])
    finally:
        if store is not None:
            store.close()


def _report(args: argparse.Namespace) -> int:
    """``fixgw report``: gateway.analytics.run with the store wired in."""
    from gateway.analytics.run import EXIT_USAGE, ReportOptions, parse_when, run_report
    from gateway.audit.errors import InputError
    from gateway.config import ConfigError, load_config
    from gateway.store.reportview import StoreReportView

    try:
        since = parse_when(args.since) if args.since else 0
        until = parse_when(args.until) if args.until else None
    except ValueError as exc:
        print(f"fixgw report: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if until is not None and until <= since:
        print("fixgw report: --until must be after --since", file=sys.stderr)
        return EXIT_USAGE
    url = args.store
    if url is None:
        try:
            url = load_config(args.config).gateway.store
        except ConfigError as exc:
            print(f"fixgw report: {exc}", file=sys.stderr)
            return EXIT_USAGE
    try:
        source = StoreReportView(url)
    except InputError as exc:
        print(f"fixgw report: {exc}", file=sys.stderr)
        return EXIT_USAGE
    opts = ReportOptions(since_ns=since, until_ns=until,
                         json_path=Path(args.json) if args.json else None,
                         html_path=Path(args.html) if args.html else None)
    try:
        return run_report(opts, source)
    except InputError as exc:
        print(f"fixgw report: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:  # (piped into head: the rest is not wanted)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    finally:
        source.close()


def _replay(args: argparse.Namespace) -> int:
    """``fixgw replay``: gateway.audit.replay."""
    from gateway.audit.replay import EXIT_USAGE, ReplayOptions, replay
    from gateway.audit.sources import parse_time

    host, sep, port = args.to.rpartition(":")
    if not sep or not port.isdigit() or args.speed < 0:
        print("fixgw replay: --to HOST:PORT, and --speed >= 0", file=sys.stderr)
        return EXIT_USAGE
    try:
        since = parse_time(args.since) if args.since else b""
        until = parse_time(args.until) if args.until else b""
    except ValueError as exc:
        print(f"fixgw replay: {exc}", file=sys.stderr)
        return EXIT_USAGE
    opts = ReplayOptions(list(args.paths), args.session, host.strip("[]") or "127.0.0.1",
                         int(port), args.speed, args.wait, since, until, args.password_env)
    return asyncio.run(replay(opts, sys.stdout, sys.stderr))


def _session_scope(cfg: Config, name: str) -> str:
    """A session id as given, or the id of the configured session whose TargetCompID it is."""
    for s in cfg.session:
        if name == s.target_comp_id:
            return f"{s.begin_string}:{cfg.gateway.sender_comp_id}->{s.target_comp_id}"
    return name


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("fixgw")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown"


def main(argv: Sequence[str] | None = None) -> int:
    # -v and --log-format are taken before the command and after it (fixgw run -v)
    logging_opts = argparse.ArgumentParser(add_help=False)
    logging_opts.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                              help="log at DEBUG (every order event, every session note)")
    logging_opts.add_argument("--log-format", choices=FORMATS, default=argparse.SUPPRESS,
                              help="text (default) or json: one object per line")
    ap = argparse.ArgumentParser(prog="fixgw", description="FIX gateway for crypto venues",
                                 parents=[logging_opts])
    ap.add_argument("--version", action="version", version=f"fixgw {_version()}")
    sub = ap.add_subparsers(dest="command", required=True)
    add_parser = sub.add_parser

    def with_logging(*a: Any, **kw: Any) -> argparse.ArgumentParser:
        return add_parser(*a, parents=[logging_opts], **kw)

    sub.add_parser = with_logging  # type: ignore[method-assign]

    c = sub.add_parser("conformance-server", help="run the acceptance-test application")
    c.add_argument("--host", default="127.0.0.1")
    c.add_argument("--port", type=int, default=9880)
    c.add_argument("--store", default="sqlite:///data/conformance.db",
                   help="store URL (sqlite:///..., postgresql+psycopg://..., memory:)")
    c.add_argument("--log-dir", default=None, help="write QuickFIX-format FIX log files here")
    c.add_argument("--standard-bmr", action="store_true",
                   help="no DefaultApplVerID (1137) in BusinessMessageReject (QuickFIX puts it "
                        "there; the FIX 5.0SP2 dictionary does not allow it)")

    r = sub.add_parser("run", help="run the gateway")
    r.add_argument("--config", help="a TOML file (default: the embedded one, "
                   "gateway/defaults/gateway.toml)")

    v = sub.add_parser("venue-sim", help="run the simulated venue as its own process "
                       "(for [[venue]] kind = \"paper-remote\")")
    v.add_argument("--host", default="127.0.0.1")
    v.add_argument("--port", type=int, required=True, help="0: any free port (printed)")
    v.add_argument("--seed", type=int, default=1)
    v.add_argument("--tick-interval", type=float, default=0.5,
                   help="seconds between market ticks; 0: only the tick op advances the market")

    cl = sub.add_parser("client", help="a small FIX client: buy, sell, cancel, replace, status, "
                        "orders, cancel-all (fixgw client -h)", add_help=False)
    cl.add_argument("client_args", nargs=argparse.REMAINDER)

    vc = sub.add_parser("venue-check", help="start one configured venue's connector and report "
                        "what the gateway relies on; --place: an order round trip")
    vc.add_argument("--config", help="default: the embedded configuration")
    vc.add_argument("--venue", help="the [[venue]] name (default: the only one)")
    vc.add_argument("--symbol", default="BTC/USDT")
    vc.add_argument("--place", action="store_true",
                    help="place the smallest post-only buy at half the last price, then cancel")

    k = sub.add_parser("kill-switch", help="engage (or --release) the kill switch through the "
                       "admin API: new orders refused, open orders cancelled")
    k.add_argument("--config", help="default: the embedded configuration")
    which = k.add_mutually_exclusive_group(required=True)
    which.add_argument("--session", help="a session id, or a configured TargetCompID")
    which.add_argument("--all", action="store_true", help="every session")
    which.add_argument("--status", action="store_true", help="print what is engaged")
    k.add_argument("--release", action="store_true", help="release instead of engaging")
    k.add_argument("--reason", default="", help="why (required to engage or release: stored "
                   "and logged)")
    k.add_argument("--timeout", type=float, default=30.0)

    ro = sub.add_parser("routing", help="the smart order router's decisions for an order "
                        "(through the admin API): what it saw, what it chose and why")
    ro.add_argument("order_id", help="the gateway's OrderID (37) of the routed order")
    ro.add_argument("--config", help="default: the embedded configuration")
    ro.add_argument("--json", action="store_true", help="print the admin API's JSON")
    ro.add_argument("--timeout", type=float, default=30.0)

    au = sub.add_parser(
        "audit", help="check FIX logs: every order chain, sequence numbers, answers (exit 0: "
        "clean, 1: findings, 2: bad usage or unreadable input)",
        description="Reads fixgw's and QuickFIX's message logs, captures with SOH or | "
        "delimiters (gzip'ed or not), or the store's message_log, and checks every order "
        "chain and session (README, \"Audit\").")
    au.add_argument("paths", nargs="*", metavar="PATH",
                    help="log files or directories of them (none: the --store message_log, "
                    "kept with [gateway] message_log = store or both)")
    au.add_argument("--store", metavar="URL",
                    help="compare the orders with this store (and read its message_log when "
                    "no PATH is given)")
    au.add_argument("--session", help="one session: an id (FIX.4.4:GATEWAY->CLIENT1), "
                    "OURS->THEIRS, or a CompID")
    au.add_argument("--since", "--from", dest="since", metavar="TIME",
                    help="report on messages from this time (UTC; earlier ones are read for "
                    "the orders' state)")
    au.add_argument("--until", "--to", dest="until", metavar="TIME",
                    help="read messages up to this time (UTC)")
    au.add_argument("--message-types", metavar="TYPES",
                    help="show only these MsgTypes in timelines and stories, e.g. D,8")
    au.add_argument("--json", metavar="FILE", help="write the findings and orders as JSON")
    au.add_argument("--html", metavar="FILE", help="write a self-contained HTML report")
    au.add_argument("--order", metavar="CLORDID", help="print one order's whole story "
                    "(any ClOrdID of its chain, or its OrderID)")
    au.add_argument("--follow", action="store_true",
                    help="keep reading the files as they grow; findings are printed as they "
                    "are found (stop with Ctrl-C)")

    rp = sub.add_parser(
        "replay", help="send a client's messages from a log again to a gateway and compare "
        "the answers with the log's (exit 0: the same, 1: differences, 2: bad usage)")
    rp.add_argument("paths", nargs="+", metavar="LOG")
    rp.add_argument("--session", required=True,
                    help="the session: an id, OURS->THEIRS, or the client's CompID")
    rp.add_argument("--to", required=True, metavar="HOST:PORT",
                    help="the gateway to log on to (one on the simulated venue)")
    rp.add_argument("--speed", type=float, default=1.0,
                    help="N times the original pace (0: as fast as possible)")
    rp.add_argument("--wait", type=float, default=5.0,
                    help="seconds without an answer before the replay ends")
    rp.add_argument("--since", "--from", dest="since", metavar="TIME")
    rp.add_argument("--until", dest="until", metavar="TIME")
    rp.add_argument("--password-env", metavar="VAR",
                    help="the Logon Password (554) is read from this environment variable")

    rr = sub.add_parser(
        "report", help="execution analytics from the order store: per account, venue and "
        "symbol, slippage, fill rates, reject reasons, venue latency (exit 0, or 2: bad usage "
        "or an unreadable store)",
        description="Reads the order store (orders, their events, fills) and reports what was "
        "executed (README, \"Audit\").")
    rr.add_argument("--store", metavar="URL",
                    help="the store (default: the --config's, else the embedded default's)")
    rr.add_argument("--config", help="take the store from this configuration")
    rr.add_argument("--since", "--from", dest="since", metavar="TIME",
                    help="orders created and fills from this time (UTC; default: the first)")
    rr.add_argument("--until", "--to", dest="until", metavar="TIME",
                    help="up to this time, excluded (UTC; default: now)")
    rr.add_argument("--json", metavar="FILE", help="write the report as JSON")
    rr.add_argument("--html", metavar="FILE", help="write a self-contained HTML report")

    h = sub.add_parser("hash-password", help="print the bcrypt hash of a Logon password")
    h.add_argument("password", nargs="?", help="read from stdin when omitted")

    raw = list(sys.argv[1:] if argv is None else argv)
    if raw[:1] == ["client"]:  # everything after "client" is the client's own (incl. -h)
        from gateway.client import main as client_main

        return client_main(raw[1:])
    args = ap.parse_args(raw)
    configure_logging(getattr(args, "verbose", False), getattr(args, "log_format", "text"))
    if args.command == "conformance-server":
        if args.log_dir:
            Path(args.log_dir).mkdir(parents=True, exist_ok=True)
        return asyncio.run(_conformance(args))
    if args.command == "run":
        return _run_gateway(args)
    if args.command == "venue-check":
        return asyncio.run(_venue_check(args))
    if args.command == "venue-sim":
        if args.tick_interval < 0:
            ap.error("--tick-interval must not be negative")
        return asyncio.run(_venue_sim(args))
    if args.command == "kill-switch":
        return _kill_switch(args)
    if args.command == "routing":
        return _routing(args)
    if args.command == "audit":
        return _audit(args)
    if args.command == "replay":
        return _replay(args)
    if args.command == "report":
        return _report(args)
    if args.command == "hash-password":
        import bcrypt

        pw = args.password if args.password is not None else sys.stdin.readline().rstrip("\n")
        print(bcrypt.hashpw(pw.encode(), bcrypt.gensalt()).decode())
        return 0
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
