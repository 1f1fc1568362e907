"""A trivial FIX "acceptor" to measure the benchmark client's own ceiling.

No session layer, no store, no validation: it answers a Logon with a Logon, each NewOrderSingle
with two ExecutionReports (New, then Fill) that carry its ClOrdID, a Logout with a Logout.
Prints ``listening on HOST:PORT`` and serves one connection at a time until killed.

    python scripts/benchlib/echo_acceptor.py [--port 0]
"""

from __future__ import annotations

import argparse
import socket
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchlib.fixwire import Clock, frame, split, tag  # noqa: E402

T11, T35, T54 = tag(11), tag(35), tag(54)


def _val(msg: bytes, t: bytes) -> bytes:
    i = msg.find(t)
    if i < 0:
        return b""
    i += len(t)
    return msg[i : msg.index(b"\x01", i)]


def serve(conn: socket.socket) -> None:
    clock = Clock()
    seq = 1
    buf = bytearray()
    oid = 0
    hdr = b"\x0149=GATEWAY\x0152=%s\x0156=CLIENT1\x01"
    while True:
        data = conn.recv(1 << 20)
        if not data:
            return
        buf += data
        out = []
        ts = clock.now()
        for m in split(buf):
            mt = _val(m, T35)
            if mt == b"D":
                cl, side = _val(m, T11), _val(m, T54)
                oid += 1
                for ex, st, extra in ((b"0", b"0", b""),
                                      (b"F", b"2", b"31=97000\x0132=0.001\x01")):
                    body = (b"35=8\x0134=%d" % seq + hdr % ts + b"6=0\x0111=" + cl
                            + b"\x0114=0\x0117=%d.%s\x01" % (oid, ex) + extra + b"37=%d" % oid
                            + b"\x0139=" + st + b"\x0154=" + side + b"\x0155=BTC/USDT\x01150="
                            + ex + b"\x01151=0\x01")
                    out.append(frame(b"FIX.4.4", body))
                    seq += 1
            elif mt in (b"A", b"5", b"1"):
                reply = {b"A": b"A", b"5": b"5", b"1": b"0"}[mt]
                extra = b"98=0\x01108=30\x01" if mt == b"A" else b""
                out.append(frame(b"FIX.4.4", b"35=" + reply + b"\x0134=%d" % seq + hdr % ts
                                 + extra))
                seq += 1
        if out:
            conn.sendall(b"".join(out))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    args = ap.parse_args()
    srv = socket.create_server(("127.0.0.1", args.port))
    print(f"listening on 127.0.0.1:{srv.getsockname()[1]}", flush=True)
    while True:
        conn, _ = srv.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            serve(conn)
        except OSError:
            pass
        finally:
            conn.close()


if __name__ == "__main__":
    main()
