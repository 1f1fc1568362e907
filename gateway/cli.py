"""``fixgw`` command line: ``run`` (the gateway), ``conformance-server`` (the acceptance-test
application), ``client`` (a small FIX initiator for trying the gateway out)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from gateway.server.ports import SessionStorePort


def open_store(url: str) -> SessionStorePort:
    if url == "memory:":
        from gateway.store.memory import MemoryStore

        return MemoryStore()
    from gateway.store.sessions import SessionStore

    return SessionStore(url)


async def _serve_until_signal(stop_coro: object) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await stop.wait()


async def _conformance(args: argparse.Namespace) -> int:
    from gateway.audit.filelog import FileLog
    from gateway.conformance import EchoApplication, conformance_sessions
    from gateway.fix.session import SessionID
    from gateway.server.acceptor import Acceptor

    store = open_store(args.store)
    start = getattr(store, "start", None)
    if start is not None:
        await start()
    file_log = None
    if args.log_dir:
        log_dir = Path(args.log_dir)
        log_dir.mkdir(parents=True, exist_ok=True)

        def file_log(sid: SessionID) -> FileLog:
            return FileLog(log_dir, sid.file_prefix)

    acceptor = Acceptor(conformance_sessions(), store, EchoApplication(), file_log=file_log)
    host, port = await acceptor.start(args.host, args.port)
    print(f"listening on {host}:{port}", flush=True)
    await _serve_until_signal(None)
    await acceptor.stop()
    close = getattr(store, "close", None)
    if close is not None:
        await close()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="fixgw", description="FIX gateway for crypto venues")
    ap.add_argument("-v", "--verbose", action="store_true")
    sub = ap.add_subparsers(dest="command", required=True)

    c = sub.add_parser("conformance-server", help="run the acceptance-test application")
    c.add_argument("--host", default="127.0.0.1")
    c.add_argument("--port", type=int, default=9880)
    c.add_argument("--store", default="sqlite:///data/conformance.db",
                   help="store URL (sqlite:///..., postgresql+psycopg://..., memory:)")
    c.add_argument("--log-dir", default=None, help="write QuickFIX-format FIX log files here")

    args = ap.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if args.command == "conformance-server":
        if args.store.startswith("sqlite:///"):
            Path(args.store[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
        return asyncio.run(_conformance(args))
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
