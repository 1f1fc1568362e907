#!/usr/bin/env python3
"""Venue events decoded and turned into ExecutionReports, per second, per native venue.

For each venue (binance, okx, bybit) one process runs the venue's emulator, the gateway (SQLite
store in a temp dir, pre-trade checks on, the connector pointed at the emulator) and a minimal
FIX client. The client rests one large buy; then an outside seller trades against it ``--fills``
times in a burst, so the emulator pushes that many fill events over the venue's private
WebSocket. Two figures:

* ``end to end``: fills per second from the first trade until the client has read the last
  fill ExecutionReport (stream decode, dedup, order state, the report and its event committed,
  the FIX write). The emulator runs on the same event loop and its JSON encoding and WebSocket
  sends are inside this figure, so the gateway's own share is higher than printed;
* ``decode``: the raw private-stream messages captured during that run, fed again to the
  connector's stream handler (venue JSON -> schemas -> VenueEvent, duplicates dropped), in
  messages/s and events/s -- no I/O.

    .venv/bin/python scripts/bench_venues.py                 # 2,000 fills, every venue
    .venv/bin/python scripts/bench_venues.py --fills 5000 --venue okx
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchlib import native  # noqa: E402
from benchlib.fixwire import Clock, field, frame, split, tag  # noqa: E402

from connectors.base import Side  # noqa: E402
from connectors.common.credentials import Credentials  # noqa: E402
from connectors.common.stream import WsStream  # noqa: E402
from connectors.common.venue import StreamingConnector  # noqa: E402
from emulators import emulator_class  # noqa: E402
from emulators.core import EmulatorServer  # noqa: E402
from gateway.app import build_gateway  # noqa: E402
from gateway.config import Config  # noqa: E402
from gateway.store.store import SessionStore  # noqa: E402

KINDS = ("binance", "okx", "bybit")
CREDS = Credentials("bench-key-000001", "bench-secret-000001", passphrase="bench-Pass-1")
T35, T39, T150 = tag(35), tag(39), tag(150)
SYMBOL = "BTC/USDT"


class Client:
    def __init__(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        self.r, self.w, self.seq, self.buf, self.clock = r, w, 1, bytearray(), Clock()

    def send(self, mt: bytes, body: bytes) -> None:
        b = (b"35=" + mt + b"\x0134=%d\x0149=CLIENT1\x0152=" % self.seq + self.clock.now()
             + b"\x0156=GATEWAY\x01" + body)
        self.seq += 1
        self.w.write(frame(b"FIX.4.4", b))

    async def read(self, limit_s: float = 30) -> list[bytes]:
        async with asyncio.timeout(limit_s):
            data = await self.r.read(1 << 20)
        if not data:
            raise RuntimeError("the gateway closed the connection")
        self.buf += data
        return split(self.buf)

    async def until(self, pred: Any, limit_s: float = 30) -> bytes:
        deadline = time.monotonic() + limit_s
        while time.monotonic() < deadline:
            for m in await self.read(limit_s):
                if pred(m):
                    return m
        raise RuntimeError("timed out")


def config(kind: str, emu: EmulatorServer, store: str) -> Config:
    return Config.model_validate({
        "gateway": {"host": "127.0.0.1", "port": 0, "store": store, "log_dir": None},
        "venue": [{"name": kind, "kind": kind, "credentials_env": "BENCH", "urls": emu.urls,
                   "symbols": [SYMBOL], "dead_man_switch": 0}],
        "session": [{"target_comp_id": "CLIENT1", "default_venue": kind,
                     "risk": {"max_order_qty": "1000", "max_notional": "100000000",
                              "max_open_orders": 1000}}],
    })


def streams_of(conn: Any) -> list[WsStream]:
    return [v for v in vars(conn).values() if isinstance(v, WsStream)]


async def bench(kind: str, n: int) -> dict[str, float]:
    emu = emulator_class(kind)(CREDS)  # type: ignore[call-arg]
    await emu.start()
    with tempfile.TemporaryDirectory(prefix="fixgw-venues-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'b.db'}"
        store = SessionStore(url)
        await store.start()
        gw = build_gateway(config(kind, emu, url), store)
        host, port = await gw.start()
        assert gw.orders is not None
        conn = gw.orders.connectors[kind]
        assert isinstance(conn, StreamingConnector)
        captured: list[str] = []
        handlers = [s.on_message for s in streams_of(conn)]
        for s, handler in zip(streams_of(conn), handlers, strict=True):

            def tap(raw: str, handler: Any = handler) -> None:
                captured.append(raw)
                handler(raw)

            s.on_message = tap
        try:
            r, w = await asyncio.open_connection(host, port)
            c = Client(r, w)
            c.send(b"A", b"98=0\x01108=30\x01141=Y\x01")
            await c.until(lambda m: field(m, T35) == b"A")
            bid = emu.core.exchange.book(SYMBOL).best_bid()
            assert bid is not None
            price = bid + Decimal("0.01")
            qty = Decimal("0.0001") * n
            c.send(b"D", b"11=big\x0121=1\x0138=%s\x0140=2\x0144=%s\x0154=1\x0155=BTC/USDT"
                   b"\x0159=1\x0160=%s\x01" % (str(qty).encode(), str(price).encode(),
                                              c.clock.now()))
            await c.until(lambda m: field(m, T35) == b"8" and field(m, T150) == b"0")
            captured.clear()
            t0 = time.perf_counter()
            for _ in range(n):
                emu.core.trade_against(SYMBOL, Side.SELL, Decimal("0.0001"), price)
            t_venue = time.perf_counter()
            got = 0
            while got < n:
                for m in await c.read():
                    if field(m, T35) == b"8" and field(m, T150) == b"F":
                        got += 1
            t1 = time.perf_counter()
            w.close()
        finally:
            await gw.stop()
            await store.close()
            await emu.stop()
    # decode only: the captured messages through the connector's own handlers, 5 rounds
    handler = handlers[0]  # the connector's own (not the tap)
    best = float("inf")
    events = 0
    for _ in range(5):
        conn._seen = type(conn._seen)()  # noqa: SLF001 - every round decodes anew
        while not conn._events.empty():  # noqa: SLF001
            conn._events.get_nowait()  # noqa: SLF001
        s0 = time.perf_counter()
        for raw in captured:
            handler(raw)
        best = min(best, time.perf_counter() - s0)
        events = conn._events.qsize()  # noqa: SLF001
    return {"fills": n, "e2e_s": t1 - t0, "venue_s": t_venue - t0,
            "messages": len(captured), "decode_s": best, "events": events}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--fills", type=int, default=2000)
    ap.add_argument("--venue", choices=KINDS, action="append")
    args = ap.parse_args()
    native.refuse_stale()
    logging.basicConfig(level=logging.WARNING)
    os.environ["BENCH_API_KEY"], os.environ["BENCH_API_SECRET"] = CREDS.api_key, CREDS.secret
    os.environ["BENCH_API_PASSPHRASE"] = CREDS.passphrase or ""
    for kind in args.venue or KINDS:
        r = asyncio.run(bench(kind, args.fills))
        print(f"{kind:8s} end to end: {r['fills'] / r['e2e_s']:8,.0f} fills/s -> ERs "
              f"({r['fills']} fills in {r['e2e_s'] * 1000:.0f} ms; the emulator's matching took "
              f"{r['venue_s'] * 1000:.0f} ms of it)")
        print(f"{'':8s} decode:     {r['messages'] / r['decode_s']:8,.0f} messages/s, "
              f"{r['events'] / r['decode_s']:8,.0f} events/s ({r['messages']} messages, "
              f"{r['events']} events)", flush=True)


if __name__ == "__main__":
    main()
