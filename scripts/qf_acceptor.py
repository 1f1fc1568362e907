#!/usr/bin/env python3
"""The QuickFIX baseline of scripts/bench_orders.py: a QuickFIX acceptor (the ``quickfix``
package: C++ engine, this Python Application) that answers each NewOrderSingle with an
ExecutionReport New and an ExecutionReport Fill.

FileStore and FileLog are on (QuickFIX defaults: the store is flushed, not fsync'ed, per
message -- FileStoreSync=N), the FIX 4.4 dictionary validates every incoming message. One
FIX.4.4 session GATEWAY <-> CLIENT1. Prints ``listening on 127.0.0.1:PORT`` once started and
runs until SIGTERM/SIGINT.

    .venv/bin/python scripts/qf_acceptor.py --port 9877 --workdir /tmp/qf

With ``--native``, the same settings are served by the C++ application of
scripts/native/qf_echo.cpp instead (``.venv/bin/qf_echo``, built by ``scripts/setup.sh
--bench`` against Debian's libquickfix-dev): the same replies, no Python at all.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import quickfix as fix

REPO = Path(__file__).resolve().parents[1]


def settings(port: int, workdir: Path) -> str:
    return "\n".join([
        "[DEFAULT]",
        "ConnectionType=acceptor",
        f"SocketAcceptPort={port}",
        "SocketAcceptHost=127.0.0.1",
        "SocketNodelay=Y",
        "StartTime=00:00:00",
        "EndTime=00:00:00",
        f"FileStorePath={workdir / 'store'}",
        f"FileLogPath={workdir / 'log'}",
        "UseDataDictionary=Y",
        f"DataDictionary={REPO / 'gateway' / 'fix' / 'specs' / 'FIX44.xml'}",
        "",
        "[SESSION]",
        "BeginString=FIX.4.4",
        "SenderCompID=GATEWAY",
        "TargetCompID=CLIENT1",
        "",
    ])


def _now() -> str:
    return datetime.now(UTC).strftime("%Y%m%d-%H:%M:%S.%f")[:-3]


NATIVE = Path(sys.executable).parent / "qf_echo"


class OrderApp(fix.Application):  # type: ignore[misc]
    """Every NewOrderSingle: ER New (39=0/150=0), then ER Fill (39=2/150=F) at its price."""

    def __init__(self) -> None:
        super().__init__()
        self.next_id = 0

    def onCreate(self, sessionID: fix.SessionID) -> None:  # noqa: N802, N803
        pass

    def onLogon(self, sessionID: fix.SessionID) -> None:  # noqa: N802, N803
        pass

    def onLogout(self, sessionID: fix.SessionID) -> None:  # noqa: N802, N803
        pass

    def toAdmin(self, message: fix.Message, sessionID: fix.SessionID) -> None:  # noqa: N802, N803
        pass

    def fromAdmin(self, message: fix.Message, sessionID: fix.SessionID) -> None:  # noqa: N802, N803
        pass

    def toApp(self, message: fix.Message, sessionID: fix.SessionID) -> None:  # noqa: N802, N803
        pass

    def fromApp(self, message: fix.Message, sessionID: fix.SessionID) -> None:  # noqa: N802, N803
        msg_type = message.getHeader().getField(35)
        if msg_type != "D":
            return
        self.next_id += 1
        oid = str(self.next_id)
        cl = message.getField(11)
        side = message.getField(54)
        symbol = message.getField(55)
        qty = message.getField(38)
        px = message.getField(44) if message.isSetField(44) else "0"
        tif = message.getField(59) if message.isSetField(59) else "0"
        common = [(11, cl), (37, oid), (38, qty), (40, message.getField(40)), (44, px),
                  (54, side), (55, symbol), (59, tif)]
        for exec_type, status, extra in (
            ("0", "0", [(6, "0"), (14, "0"), (151, qty)]),
            ("F", "2", [(6, px), (14, qty), (151, "0"), (31, px), (32, qty)]),
        ):
            er = fix.Message()
            er.getHeader().setField(35, "8")
            for t, v in (*common, *extra, (17, f"{oid}.{exec_type}"), (39, status),
                         (150, exec_type), (60, _now())):
                er.setField(t, v)
            fix.Session.sendToTarget(er, sessionID)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", type=int, default=0, help="0: pick a free port")
    ap.add_argument("--workdir", type=Path, required=True)
    ap.add_argument("--native", action="store_true",
                    help=f"serve with the C++ application ({NATIVE})")
    args = ap.parse_args()
    port = args.port
    if port == 0:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
    args.workdir.mkdir(parents=True, exist_ok=True)
    cfg = args.workdir / "acceptor.cfg"
    cfg.write_text(settings(port, args.workdir))
    if args.native:
        os.execv(NATIVE, [str(NATIVE), str(cfg), str(port)])
    st = fix.SessionSettings(str(cfg))
    app = OrderApp()
    acceptor = fix.SocketAcceptor(app, fix.FileStoreFactory(st), st, fix.FileLogFactory(st))
    acceptor.start()
    print(f"listening on 127.0.0.1:{port}", flush=True)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.is_set():
        time.sleep(0.2)
    acceptor.stop()


if __name__ == "__main__":
    main()
