"""Parse and encode throughput of the fixgw codec against simplefix, on the same bytes.

    .venv/bin/python scripts/bench_codec.py            # N=10000 messages, best of 5 runs
    .venv/bin/python scripts/bench_codec.py -n 50000 --runs 7

Messages are a typical crypto NewOrderSingle (35=D) and ExecutionReport (35=8), each one
distinct (MsgSeqNum, ClOrdID, ExecID vary). Operations:

* parse, frame+split: what the receive path does before validation. fixgw: ``FrameParser.feed``
  + ``frames()`` + ``split_fields``; simplefix: ``FixParser.append_buffer`` + ``get_message``.
* parse_message: fixgw's framing + ``parse_message`` (CheckSum and BodyLength verified,
  header/body/trailer and groups resolved with the FIX 4.4 dictionary), against the same
  simplefix figure (simplefix checks neither).
* encode: full message bytes from a field list. fixgw: ``encode``; simplefix:
  ``FixMessage.append_pair`` for each field + ``encode()``. Both produce identical bytes
  (asserted before timing).

Each case gets one warm-up run, then the best of ``--runs`` timed runs (``time.perf_counter``).
Two read patterns: one message per read, and the whole stream in 64 KiB reads.
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import TypeVar

import simplefix  # type: ignore[import-untyped]

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchlib import native  # noqa: E402

from gateway.fix.codec import Frame, FrameParser, encode, split_fields  # noqa: E402
from gateway.fix.dictionary import standard  # noqa: E402
from gateway.fix.validation import parse_message  # noqa: E402

BEGIN = b"FIX.4.4"
T = TypeVar("T")
Fields = list[tuple[int, bytes]]


def _header(msg_type: bytes, seq: int, sender: bytes, target: bytes) -> Fields:
    return [
        (35, msg_type),
        (34, b"%d" % seq),
        (49, sender),
        (52, b"20250114-09:30:15.%03d" % (seq % 1000)),
        (56, target),
    ]


def new_order_single(i: int) -> Fields:
    return [
        *_header(b"D", 1000 + i, b"CLIENT", b"GW"),
        (1, b"ACC-7731"),
        (11, b"cl-%08d" % i),
        (21, b"1"),
        (38, b"0.015"),
        (40, b"2"),
        (44, b"97123.45"),
        (54, b"1"),
        (55, b"BTC/USDT"),
        (59, b"1"),
        (60, b"20250114-09:30:15.%03d" % (i % 1000)),
    ]


def execution_report(i: int) -> Fields:
    return [
        *_header(b"8", 5000 + i, b"GW", b"CLIENT"),
        (37, b"%d" % (4_418_000_000 + i)),
        (11, b"cl-%08d" % i),
        (17, b"ex-%010d" % i),
        (150, b"F"),
        (39, b"1"),
        (55, b"BTC/USDT"),
        (54, b"1"),
        (38, b"0.015"),
        (44, b"97123.45"),
        (32, b"0.010"),
        (31, b"97120.10"),
        (151, b"0.005"),
        (14, b"0.010"),
        (6, b"97120.10"),
        (60, b"20250114-09:30:15.%03d" % (i % 1000)),
    ]


def simplefix_encode(fields: Fields) -> bytes:
    m = simplefix.FixMessage()
    m.append_pair(8, BEGIN)
    for t, v in fields:
        m.append_pair(t, v)
    data: bytes = m.encode()
    return data


def chunks_of(msgs: list[bytes], size: int) -> list[bytes]:
    if size <= 0:
        return msgs
    stream = b"".join(msgs)
    return [stream[i : i + size] for i in range(0, len(stream), size)]


# ----------------------------------------------------------------------------------------------
# the measured loops: each returns the number of messages it handled


def fixgw_split(chunks: list[bytes]) -> int:
    parser = FrameParser()
    n = 0
    for c in chunks:
        parser.feed(c)
        for ev in parser.frames():
            if isinstance(ev, Frame):
                split_fields(ev.data)
                n += 1
    return n


def make_fixgw_parse_message() -> Callable[[list[bytes]], int]:
    dd = standard("FIX.4.4")

    def run(chunks: list[bytes]) -> int:
        parser = FrameParser()
        n = 0
        for c in chunks:
            parser.feed(c)
            for ev in parser.frames():
                if isinstance(ev, Frame):
                    parse_message(ev.data, dd, dd)
                    n += 1
        return n

    return run


def simplefix_parse(chunks: list[bytes]) -> int:
    parser = simplefix.FixParser()
    n = 0
    for c in chunks:
        parser.append_buffer(c)
        while parser.get_message() is not None:
            n += 1
    return n


def fixgw_encode(field_lists: list[Fields]) -> int:
    for fields in field_lists:
        encode(BEGIN, fields)
    return len(field_lists)


def simplefix_encode_all(field_lists: list[Fields]) -> int:
    for fields in field_lists:
        simplefix_encode(fields)
    return len(field_lists)


# ----------------------------------------------------------------------------------------------


def best_rate(fn: Callable[[T], int], arg: T, expected: int, runs: int) -> float:
    """Messages per second: one warm-up, then the best of ``runs`` (GC off, as timeit does)."""
    if fn(arg) != expected:
        raise AssertionError(f"{fn.__name__} handled the wrong number of messages")
    best = float("inf")
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(runs):
            t0 = time.perf_counter()
            fn(arg)
            best = min(best, time.perf_counter() - t0)
    finally:
        if gc_was_enabled:
            gc.enable()
    return expected / best


@dataclass(frozen=True, slots=True)
class Row:
    message: str
    operation: str
    fixgw: float
    simplefix: float

    @property
    def ratio(self) -> float:
        return self.fixgw / self.simplefix


def run(n: int, runs: int) -> list[Row]:
    rows: list[Row] = []
    parse_message_run = make_fixgw_parse_message()
    cases = (("NewOrderSingle", new_order_single), ("ExecutionReport", execution_report))
    for name, build in cases:
        field_lists = [build(i) for i in range(n)]
        msgs = [encode(BEGIN, f) for f in field_lists]
        for f, m in zip(field_lists[:50], msgs[:50], strict=True):
            if simplefix_encode(f) != m:
                raise AssertionError("fixgw and simplefix do not encode the same bytes")
        size = sum(map(len, msgs)) // n
        label = f"{name} ({size} B)"
        for read_name, chunk in (("1 msg/read", 0), ("64 KiB reads", 1 << 16)):
            chunks = chunks_of(msgs, chunk)
            sf = best_rate(simplefix_parse, chunks, n, runs)
            rows.append(Row(label, f"parse: frame+split, {read_name}",
                            best_rate(fixgw_split, chunks, n, runs), sf))
            rows.append(Row(label, f"parse_message, {read_name}",
                            best_rate(parse_message_run, chunks, n, runs), sf))
        rows.append(Row(label, "encode", best_rate(fixgw_encode, field_lists, n, runs),
                        best_rate(simplefix_encode_all, field_lists, n, runs)))
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("-n", type=int, default=10_000, help="messages per run (default 10000)")
    ap.add_argument("--runs", type=int, default=5, help="timed runs, best kept (default 5)")
    args = ap.parse_args(argv)
    native.refuse_stale()
    print(f"python {sys.version.split()[0]}, simplefix {version('simplefix')}, "
          f"N={args.n} messages, best of {args.runs} runs")
    rows = run(args.n, args.runs)
    w1 = max(len(r.message) for r in rows)
    w2 = max(len(r.operation) for r in rows)
    print(f"{'message':<{w1}}  {'operation':<{w2}}  {'fixgw msg/s':>12}  "
          f"{'simplefix msg/s':>15}  {'ratio':>6}")
    for r in rows:
        print(f"{r.message:<{w1}}  {r.operation:<{w2}}  {r.fixgw:>12,.0f}  "
              f"{r.simplefix:>15,.0f}  {r.ratio:>5.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
