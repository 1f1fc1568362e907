"""Small FIX logs written by hand for the audit tests: a :class:`LogWriter` that writes
``<timestamp> : <message>`` lines (the file log format of fixgw and QuickFIX) with each side's
MsgSeqNum kept, and the benchmark's generator of long realistic logs."""

from __future__ import annotations

import importlib.util
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType

SOH = b"\x01"
REPO = Path(__file__).resolve().parents[2]


def encode(begin: bytes, fields: list[tuple[int, bytes]]) -> bytes:
    body = b"".join(b"%d=%s\x01" % f for f in fields)
    msg = b"8=%s\x019=%d\x01" % (begin, len(body)) + body
    return msg + b"10=%03d\x01" % (sum(msg) & 0xFF)


class LogWriter:
    """Messages between a client and the gateway, as a file log (the gateway's side)."""

    def __init__(self, begin: bytes = b"FIX.4.4", client: bytes = b"CLIENT1",
                 gateway: bytes = b"GATEWAY") -> None:
        self.begin = begin
        self.client, self.gateway = client, gateway
        self.seq = {client: 1, gateway: 1}
        self.t = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
        self.lines: list[bytes] = []

    def send(self, sender: bytes, msg_type: bytes, *body: tuple[int, bytes],
             step: float = 0.01) -> None:
        self.t += timedelta(seconds=step)
        stamp = self.t.strftime("%Y%m%d-%H:%M:%S.%f").encode()
        target = self.gateway if sender == self.client else self.client
        seq = self.seq[sender]
        self.seq[sender] = seq + 1
        raw = encode(self.begin, [(35, msg_type), (34, b"%d" % seq), (49, sender),
                                  (52, stamp[:-3]), (56, target), *body])
        self.lines.append(stamp + b" : " + raw + b"\n")

    def client_sends(self, msg_type: bytes, *body: tuple[int, bytes]) -> None:
        self.send(self.client, msg_type, *body)

    def gateway_sends(self, msg_type: bytes, *body: tuple[int, bytes]) -> None:
        self.send(self.gateway, msg_type, *body)

    def logon(self) -> None:
        self.client_sends(b"A", (98, b"0"), (108, b"30"))
        self.gateway_sends(b"A", (98, b"0"), (108, b"30"))

    def write(self, directory: Path) -> Path:
        name = f"{self.begin.decode()}-{self.gateway.decode()}-{self.client.decode()}"
        path = directory / f"{name}.messages.current.log"
        path.write_bytes(b"".join(self.lines))
        return path


def bench_module() -> ModuleType:
    """``scripts/bench_audit.py`` (its log generator and fault injection)."""
    name = "bench_audit"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / "bench_audit.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
