"""What ``fixgw audit`` tells: the terminal summary, one order's story (``--order``) and the
JSON document (``--json``).

The orders reach the outputs one by one as the audit lets go of them (:class:`Outputs`), so the
JSON's order list and the HTML's timelines are spooled to temporary files and never held in
memory; the findings are counted and the first :data:`~gateway.audit.findings.MAX_KEPT` kept.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, Any, TextIO

import orjson

from .chains import Chain
from .checker import Auditor, Session
from .decode import decode, message_name, value_meaning
from .findings import Findings, Kind
from .sources import format_stamp
from .states import status_name

SHOWN_FINDINGS = 20
"""Findings listed on the terminal (all are in --json and --html)."""
HIDDEN_IN_STORY = frozenset({8, 9, 10})


def _t(v: bytes | None) -> str:
    return "none" if v is None else v.decode("utf-8", "replace")


class Outputs:
    """Receives every order (``add``) and hands it to what was asked for: the counts, the
    JSON spool, the HTML report, the ``--order`` story, the store comparison."""

    def __init__(self, *, json_wanted: bool = False,
                 sinks: Iterable[Callable[[Chain], None]] = ()) -> None:
        self.orders = 0
        self.open_orders = 0
        self.fills = 0
        self.with_findings = 0
        self.sinks = list(sinks)
        self._json: IO[bytes] | None = (
            tempfile.TemporaryFile(prefix="fixgw-audit-") if json_wanted else None)  # noqa: SIM115

    def add(self, chain: Chain) -> None:
        self.orders += 1
        self.fills += chain.n_fills
        if not chain.is_done:
            self.open_orders += 1
        if chain.findings:
            self.with_findings += 1
        if self._json is not None:
            self._json.write(orjson.dumps(chain.summary()) + b"\n")
        for sink in self.sinks:
            sink(chain)

    def add_summary(self, lines: bytes, orders: int, fills: int, open_orders: int) -> None:
        """Orders the compiled fast path let go, summed up by it: their JSON lines
        (:meth:`Chain.summary`, one a line) and counts; only when no sink wants Chains
        (:data:`gateway.audit.checker.Summary`)."""
        self.orders += orders
        self.fills += fills
        self.open_orders += open_orders
        if self._json is not None:
            self._json.write(lines)

    def json_orders(self) -> Iterable[bytes]:
        """The spooled orders, one JSON object each (once)."""
        if self._json is None:
            return
        self._json.seek(0)
        for line in self._json:
            yield line.rstrip(b"\n")
        self._json.close()
        self._json = None


def session_line(s: Session) -> str:
    out = s.messages - s.incoming
    return (f"{s.key}: {s.messages:,} messages ({s.incoming:,} in, {out:,} out), "
            f"{s.book.orders:,} orders, {s.book.fills:,} fills, "
            f"{format_stamp(s.first_stamp)} to {format_stamp(s.last_stamp)}")


def summary_text(auditor: Auditor, outputs: Outputs, findings: Findings, inputs: list[str],
                 elapsed: float) -> str:
    rate = f", {auditor.messages / elapsed:,.0f} msg/s" if elapsed > 0.5 else ""
    lines = [f"fixgw audit: {auditor.messages:,} messages from {len(inputs)} input"
             f"{'s' if len(inputs) != 1 else ''}, {len(auditor.sessions)} session"
             f"{'s' if len(auditor.sessions) != 1 else ''}, {outputs.orders:,} orders "
             f"({outputs.open_orders:,} open at the end), {outputs.fills:,} fills "
             f"({elapsed:.1f} s{rate})"]
    if auditor.skipped:
        lines.append(f"  {auditor.skipped:,} messages of other sessions left out (--session)")
    for s in auditor.sessions.values():
        lines.append("  " + session_line(s))
    events = findings.event_counts
    if events:
        parts = [f"{n} {kind}" for kind, n in sorted(events.items())]
        lines.append("session events: " + ", ".join(parts))
        for e in findings.events:
            if e.kind in ("logon-rejected", "logon-unanswered", "reset"):
                lines.append(f"  {e.session} {format_stamp(e.stamp)} {e.where} [{e.kind}] "
                             f"{e.text}")
    total = findings.total
    if not total:
        lines.append("findings: none")
        return "\n".join(lines)
    orders = len({(f.session, f.order) for f in findings.kept if f.order is not None})
    lines.append(f"findings: {total:,} ({orders:,} orders with findings)")
    width = max(len(k.value) for k in findings.counts)
    for kind in Kind:
        n = findings.counts.get(kind)
        if n:
            lines.append(f"  {kind.value:<{width}}  {n:>7,}  {kind.meaning}")
    lines.append("")
    for f in findings.kept[:SHOWN_FINDINGS]:
        order = f" order #{f.order}" if f.order is not None else ""
        lines.append(f"  {f.session} {format_stamp(f.stamp)} {f.where} [{f.kind.value}]"
                     f"{order}: {f.text}")
    if total > SHOWN_FINDINGS:
        lines.append(f"  (the first {SHOWN_FINDINGS} of {total:,}: --json FILE or --html FILE "
                     "lists them all)")
    return "\n".join(lines)


def describe(chain: Chain) -> str:
    side = {b"1": "buy", b"2": "sell"}.get(chain.side or b"", _t(chain.side))
    price = f" @ {_t(chain.price)}" if chain.price is not None else ""
    oid = f", OrderID {_t(chain.order_id)}" if chain.order_id is not None else ""
    ids = " -> ".join(_t(c) for c in chain.cl_ord_ids) or "?"
    return (f"order #{chain.number} in {chain.session}: ClOrdID {ids}{oid}, "
            f"{_t(chain.symbol)} {side} {_t(chain.qty)}{price}")


def story_text(chain: Chain, session: Session | None,
               message_types: frozenset[bytes] | None = None) -> str:
    """One order's whole story: every message, both directions, decoded, with its findings."""
    begin = session.begin if session is not None else "FIX.4.4"
    appl = session.appl_ver if session is not None else None
    local = session.local if session is not None else None
    lines = [describe(chain),
             f"status {status_name(chain.status)}, CumQty {_t(chain.cum_text)}, AvgPx "
             f"{_t(chain.avg_text)}, {chain.n_fills} fills, {len(chain.findings)} findings"]
    for stamp, raw, where, notes in chain.messages or []:
        assert isinstance(stamp, bytes) and isinstance(raw, bytes)
        fields = decode(raw, begin, appl)
        mt = next((f.value for f in fields if f.tag == 35), "?")
        if message_types is not None and mt.encode() not in message_types:
            continue
        sender = next((f.value for f in fields if f.tag == 49), "?")
        target = next((f.value for f in fields if f.tag == 56), "?")
        seq = next((f.value for f in fields if f.tag == 34), "?")
        direction = "out" if local is not None and sender.encode() == local else "in "
        head = message_name(mt.encode(), begin, appl)
        if mt == "8":
            et = next((f.value for f in fields if f.tag == 150), "")
            os_ = next((f.value for f in fields if f.tag == 39), "")
            head += (f" ExecType={et} ({value_meaning(150, et.encode(), begin, appl)}) "
                     f"OrdStatus={os_} ({value_meaning(39, os_.encode(), begin, appl)})")
        lines.append("")
        lines.append(f"{format_stamp(stamp)}  {direction} {sender} -> {target}  {head}  "
                     f"MsgSeqNum {seq}  ({where})")
        for fld in fields:
            if fld.tag in HIDDEN_IN_STORY:
                continue
            meaning = f" ({fld.meaning})" if fld.meaning else ""
            lines.append(f"    {fld.tag:>5} {fld.name:<24} {fld.value}{meaning}")
        for note in notes or []:  # type: ignore[attr-defined]
            lines.append(f"    !! [{note.kind.value}] {note.text}")
    for f in chain.findings:
        if not any(f in (m[3] or []) for m in chain.messages or []):  # type: ignore[operator]
            lines.append(f"!! [{f.kind.value}] {f.text}")
    return "\n".join(lines)


def write_json(path: Path, auditor: Auditor, outputs: Outputs, findings: Findings,
               inputs: list[str], elapsed: float, extra: dict[str, Any] | None = None) -> None:
    """The JSON document (``--json``): summary, sessions, findings, events, orders."""
    head = {
        "tool": "fixgw audit", "format": 1, "inputs": inputs, "messages": auditor.messages,
        "elapsed_s": round(elapsed, 3),
        "summary": {
            "sessions": len(auditor.sessions), "orders": outputs.orders,
            "open_orders": outputs.open_orders, "fills": outputs.fills,
            "findings": findings.total,
            "findings_by_kind": {k.value: n for k, n in findings.counts.items()},
            "events_by_kind": dict(findings.event_counts),
        },
        "sessions": [{
            "session": s.key, "messages": s.messages, "in": s.incoming,
            "out": s.messages - s.incoming, "orders": s.book.orders, "fills": s.book.fills,
            "first": s.first_stamp.decode("ascii", "replace"),
            "last": s.last_stamp.decode("ascii", "replace"),
        } for s in auditor.sessions.values()],
        "findings": [f.to_json() for f in findings.kept],
        "findings_complete": len(findings.kept) == findings.total,
        "events": [e.to_json() for e in findings.events],
        **(extra or {}),
    }
    text = orjson.dumps(head, option=orjson.OPT_INDENT_2)
    assert text.endswith(b"}")
    with open(path, "wb") as out:
        out.write(text[:-1].rstrip() + b',\n  "orders": [')
        first = True
        for line in outputs.json_orders():
            out.write((b"\n    " if first else b",\n    ") + line)
            first = False
        out.write(b"\n  ]\n}\n")


def print_lines(stream: TextIO, text: str) -> None:
    stream.write(text + "\n")
    stream.flush()
