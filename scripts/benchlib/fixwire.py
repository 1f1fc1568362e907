"""Minimal FIX 4.4 wire helpers for the benchmark client: build with a checksum, split frames,
pick single fields. Deliberately no dictionary, no validation (see bench_orders.py)."""

from __future__ import annotations

import time

SOH = b"\x01"
_TRAILER = b"\x0110="


class Clock:
    """UTC SendingTime/TransactTime as ``YYYYMMDD-HH:MM:SS.sss``, formatted once per millisecond."""

    __slots__ = ("_ms", "_text")

    def __init__(self) -> None:
        self._ms = -1
        self._text = b""

    def now(self) -> bytes:
        ms = int(time.time() * 1000)
        if ms != self._ms:
            sec, frac = divmod(ms, 1000)
            self._text = time.strftime("%Y%m%d-%H:%M:%S", time.gmtime(sec)).encode() + (
                b".%03d" % frac
            )
            self._ms = ms
        return self._text


def frame(begin: bytes, body: bytes) -> bytes:
    """``body`` (``35=...`` up to its last SOH) with BeginString, BodyLength and CheckSum."""
    head = b"8=%s\x019=%d\x01" % (begin, len(body))
    msg = head + body
    return msg + b"10=%03d\x01" % (sum(msg) & 0xFF)


def split(buf: bytearray) -> list[bytes]:
    """Remove every complete message from ``buf`` and return them (the trailer ends a frame)."""
    out: list[bytes] = []
    start = 0
    find = buf.find
    while True:
        i = find(_TRAILER, start)
        if i < 0 or len(buf) < i + 8:
            break
        end = i + 8
        out.append(bytes(buf[start:end]))
        start = end
    if start:
        del buf[:start]
    return out


def field(msg: bytes, tag: bytes) -> bytes | None:
    """Value of the first ``tag`` (given as ``b"\\x0111="``) in ``msg``."""
    i = msg.find(tag)
    if i < 0:
        return None
    i += len(tag)
    return msg[i : msg.index(SOH, i)]


def tag(n: int) -> bytes:
    return b"\x01%d=" % n
