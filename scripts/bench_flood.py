#!/usr/bin/env python3
"""A flooding client against a well-behaved one: does one session's flood cost another its
throughput?

``fixgw run`` (SQLite, in-process simulated venue, checks on) serves two sessions: CLIENT1
sends marketable orders at 1 in flight (each answered by its Fill), FLOOD sends Heartbeats as
fast as one process can write them. CLIENT1's orders/s is measured alone, then with the flood,
in interleaved rounds, first with the default inbound rate limit on FLOOD (1,000 messages/s),
then with none (``rate_limit = 0``, as before the default existed). Printed: CLIENT1's rate and
how many of the flood's messages the gateway processed per second.

    .venv/bin/python scripts/bench_flood.py            # ~1 min
"""

from __future__ import annotations

import argparse
import multiprocessing
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import native, procs  # noqa: E402
from benchlib.client import LeanClient, OrderSpec  # noqa: E402

BIN = Path(sys.executable).parent
MARKETABLE = OrderSpec()


def config(path: Path, tmp: Path, flood_limit: str) -> Path:
    path.write_text(f"""
[gateway]
host = "127.0.0.1"
port = 0
sender_comp_id = "GATEWAY"
store = "sqlite:///{tmp / (path.stem + '.db')}"
log_dir = "{tmp / (path.stem + '-log')}"

[[venue]]
name = "paper"
kind = "paper"
balances = {{ BTC = "1000", USDT = "100000000" }}

[[session]]
target_comp_id = "CLIENT1"
default_venue = "paper"
rate_limit = 0

[session.risk]
max_order_qty = "100"
price_band = "0.10"

[[session]]
target_comp_id = "FLOOD"
default_venue = "paper"
{flood_limit}
""")
    return path


def flood(host: str, port: int, stop: multiprocessing.synchronize.Event,
          sent: multiprocessing.sharedctypes.Synchronized[int]) -> None:
    for _ in range(300):  # the last round's connection may still hold the session a while
        c = LeanClient(host, port, sender=b"FLOOD")
        c.send(b"A", b"98=0\x01108=30\x01141=Y\x01")  # a new process each round: reset
        try:
            c.expect(b"A")
            break
        except Exception:
            c.sock.close()
            time.sleep(0.1)
    c.sock.settimeout(None)
    n = 0
    while not stop.is_set():
        c.sock.sendall(b"".join(c._msg(b"0") for _ in range(200)))
        n += 200
        sent.value = n


def rate(c: LeanClient, count: int, tag: str) -> float:
    return c.run_window(MARKETABLE, count, 1, tag, deadline_s=300).rate


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--orders", type=int, default=1500)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    native.refuse_stale()
    tmp = Path(tempfile.mkdtemp(prefix="fixgw-flood-"))
    try:
        cases = (("default rate limit on FLOOD", ""), ("no rate limit", "rate_limit = 0"))
        for label, limit in cases:
            cfg = config(tmp / f"gw{len(label)}.toml", tmp, limit)
            server = procs.start("fixgw", [str(BIN / "fixgw"), "run", "--config", str(cfg)],
                                 stderr_path=tmp / "fixgw.stderr", cwd=tmp)
            c = LeanClient(server.host, server.port)
            c.logon()
            try:
                rate(c, 300, "warm")
                alone, flooded, processed = [], [], []
                for r in range(args.rounds):
                    alone.append(rate(c, args.orders, f"a{r}x"))
                    stop = multiprocessing.Event()
                    sent = multiprocessing.Value("q", 0)
                    p = multiprocessing.Process(target=flood,
                                                args=(server.host, server.port, stop, sent))
                    p.start()
                    time.sleep(1.0)  # the flood is under way (benchmark pacing, not a test)
                    cpu0 = time.monotonic()
                    flooded.append(rate(c, args.orders, f"f{r}x"))
                    elapsed = time.monotonic() - cpu0
                    stop.set()
                    p.join(10)
                    if p.is_alive():
                        p.kill()
                    processed.append(sent.value / (elapsed + 1.0))
                print(f"{label}: CLIENT1 alone {statistics.median(alone):,.0f} orders/s, "
                      f"with the flood {statistics.median(flooded):,.0f} orders/s "
                      f"({statistics.median(flooded) / statistics.median(alone):.2f}x); "
                      f"the flooder wrote ~{statistics.median(processed):,.0f} Heartbeats/s",
                      flush=True)
            finally:
                c.logout()
                server.stop()
        return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
