"""What ``fixgw report`` tells: a terminal summary and a JSON document (the HTML page is
:mod:`.html`). Amounts are written as exact decimal strings in the JSON, rounded for reading
on the terminal; times are UTC."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson

from .report import (
    LATENCY_BINS_MS,
    ZERO,
    Latency,
    OrderResult,
    Report,
    Row,
    histogram,
    percentile,
)

Q = (Decimal("0.5"), Decimal("0.9"), Decimal("0.99"))
SHOWN_REJECTS = 10


def iso(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, UTC).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z")


def num(v: Decimal | None, places: int | None = None) -> str:
    """A Decimal for reading: rounded to ``places`` (None: as it is, no exponent, no
    trailing zeros)."""
    if v is None:
        return "-"
    if places is not None:
        v = v.quantize(Decimal(1).scaleb(-places))
        return f"{v:,.{places}f}"
    return format(v.normalize(), "f") if v != ZERO else "0"


def sig(v: Decimal | None, digits: int = 10) -> str:
    """A price for reading: at most ``digits`` significant digits, no exponent."""
    if v is None:
        return "-"
    if v == ZERO:
        return "0"
    exp = v.adjusted() - digits + 1
    return format(v.quantize(Decimal(1).scaleb(exp)).normalize(), "f") if exp < 0 else \
        format(v.normalize(), "f")


def money(v: Decimal | None) -> str:
    """An amount of the quote currency (PnL): 4 places."""
    return num(v, 4)


def span(ns: int) -> str:
    """A length of time for reading: 5 s, 1 min, 6 h, 1 d."""
    s = ns // 1_000_000_000
    for unit, size in (("d", 86_400), ("h", 3600), ("min", 60)):
        if s >= size and s % size == 0:
            return f"{s // size} {unit}"
    return f"{s} s"


def period(rep: Report) -> str:
    """The report's range for reading."""
    start = iso(rep.since_ns) if rep.since_ns > 0 else "the first order"
    return f"{start} .. {iso(rep.until_ns)}"


def exact(v: Decimal | None) -> str | None:
    """A Decimal for the JSON: exact, no exponent."""
    return None if v is None else (format(v.normalize(), "f") if v != ZERO else "0")


def signed_bp(v: Decimal | None) -> str:
    return "-" if v is None else f"{v.quantize(Decimal('0.01')):+}"


def plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def pct(v: Decimal | None) -> str:
    return "-" if v is None else f"{(v * 100).quantize(Decimal('0.1'))}%"


def fees(f: dict[str, Decimal]) -> str:
    return ", ".join(f"{sig(v, 8)} {c}" for c, v in sorted(f.items())) or "0"


def latency_stats(values: list[Decimal]) -> dict[str, Decimal | int | None]:
    return {"n": len(values), "p50": percentile(values, Q[0]), "p90": percentile(values, Q[1]),
            "p99": percentile(values, Q[2]), "max": max(values) if values else None}


# ---- the terminal ----------------------------------------------------------------------------


def _table(head: list[str], rows: list[list[str]], right: set[int]) -> list[str]:
    widths = [max(len(x) for x in col) for col in zip(head, *rows, strict=True)]

    def line(cells: list[str]) -> str:
        return "  ".join(c.rjust(w) if i in right else c.ljust(w)
                         for i, (c, w) in enumerate(zip(cells, widths, strict=True))).rstrip()

    return [line(head), *(line(r) for r in rows)]


def outcomes(r: Row) -> str:
    order = ("filled", "partial", "canceled", "expired", "rejected", "open")
    return ", ".join(f"{r.outcomes[k]} {k}" for k in order if r.outcomes[k])


def summary_text(rep: Report) -> str:
    t = rep.totals
    lines = [
        f"fixgw report: {rep.source}, {period(rep)}",
        f"orders {t.orders} ({outcomes(t) or 'none'}), fills {t.fills}, notional "
        f"{num(t.notional, 2)}, fees {fees(t.fees)}, realized PnL {money(t.realized)}",
        f"slippage: {signed_bp(t.slip_arrival_bp)} bp against the arrival mid "
        f"({plural(t.n_arrival, 'order')}), {signed_bp(t.slip_vwap_bp)} bp against the market "
        f"VWAP ({plural(t.n_vwap, 'order')}); positive: a cost",
        "",
    ]
    if rep.rows:
        head = ["account", "venue", "symbol", "orders", "fill rate", "fills", "volume",
                "notional", "fees", "realized", "slip/arrival bp", "slip/VWAP bp"]
        body = [[r.account or "-", r.venue, r.symbol, str(r.orders), pct(r.fill_rate),
                 str(r.fills), num(r.volume), num(r.notional, 2), fees(r.fees),
                 money(r.realized), f"{signed_bp(r.slip_arrival_bp)} ({r.n_arrival})",
                 f"{signed_bp(r.slip_vwap_bp)} ({r.n_vwap})"] for r in rep.rows]
        lines += _table(head, body, {3, 4, 5, 6, 7, 9, 10, 11})
    else:
        lines.append("no orders or fills in this range")
    if t.rejects:
        lines += ["", "reject reasons:"]
        for reason, n in t.rejects.most_common(SHOWN_REJECTS):
            lines.append(f"  {n:>6}  {reason}")
    if rep.latency:
        lines += ["", "venue latency (ms): ack = intent stored -> the venue's acknowledgement; "
                  "fill = acknowledgement -> first fill"]
        head = ["venue", "", "n", "p50", "p90", "p99", "max"]
        body = []
        for lat in rep.latency:
            for name, values in (("ack", lat.ack_ms), ("fill", lat.fill_ms)):
                s = latency_stats(values)
                body.append([lat.venue, name, str(s["n"]), *(
                    num(s[k], 2) if isinstance(s[k], Decimal) else "-"  # type: ignore[arg-type]
                    for k in ("p50", "p90", "p99", "max"))])
        lines += ["  " + x for x in _table(head, body, {2, 3, 4, 5, 6})]
    return "\n".join(lines)


# ---- JSON ------------------------------------------------------------------------------------


def _row_json(r: Row) -> dict[str, Any]:
    return {
        "account": r.account, "venue": r.venue, "symbol": r.symbol, "orders": r.orders,
        "outcomes": dict(r.outcomes), "ordered_qty": exact(r.ordered_qty),
        "filled_qty": exact(r.filled_qty), "fill_rate": exact(r.fill_rate),
        "fills": r.fills, "volume": exact(r.volume), "notional": exact(r.notional),
        "fees": {c: exact(v) for c, v in sorted(r.fees.items())},
        "realized_pnl": exact(r.realized),
        "slippage_arrival_bp": exact(r.slip_arrival_bp), "orders_with_arrival_mid": r.n_arrival,
        "slippage_vwap_bp": exact(r.slip_vwap_bp), "orders_with_market_vwap": r.n_vwap,
        "reject_reasons": dict(r.rejects.most_common()),
    }


def _order_json(o: OrderResult) -> dict[str, Any]:
    return {
        "order_id": o.order_id, "session_id": o.session_id, "cl_ord_id": o.cl_ord_id,
        "account": o.account, "venue": o.venue, "symbol": o.symbol, "side": o.side.value,
        "created": iso(o.created_ns), "strategy": o.strategy, "outcome": o.outcome,
        "quantity": exact(o.quantity), "cum_qty": exact(o.cum_qty), "avg_px": exact(o.avg_px),
        "arrival_mid": exact(o.arrival_mid), "market_vwap": exact(o.market_vwap),
        "slippage_arrival_bp": exact(o.slip_arrival_bp),
        "slippage_vwap_bp": exact(o.slip_vwap_bp), "reject": o.reject_text,
    }


def _latency_json(lat: Latency) -> dict[str, Any]:
    out: dict[str, Any] = {"venue": lat.venue}
    for name, values in (("ack_ms", lat.ack_ms), ("fill_ms", lat.fill_ms)):
        s = latency_stats(values)
        out[name] = {k: v if isinstance(v, int) or v is None else exact(v)
                     for k, v in s.items()}
        out[name]["histogram"] = {"bins_ms": [str(b) for b in LATENCY_BINS_MS],
                                  "counts": histogram(values)}
    return out


def to_json(rep: Report) -> dict[str, Any]:
    return {
        "source": rep.source, "since": iso(rep.since_ns), "until": iso(rep.until_ns),
        "generated": iso(rep.generated_ns),
        "totals": _row_json(rep.totals) | {"account": None, "venue": None, "symbol": None},
        "rows": [_row_json(r) for r in rep.rows],
        "latency": [_latency_json(x) for x in rep.latency],
        "volume_over_time": {
            "bucket_seconds": rep.bucket_ns // 1_000_000_000,
            "buckets": [{"start": iso(b.start_ns),
                         "notional": {c: exact(v) for c, v in sorted(b.notional.items())}}
                        for b in rep.buckets]},
        "orders": [_order_json(o) for o in rep.orders],
    }


def write_json(path: Path, rep: Report) -> None:
    path.write_bytes(orjson.dumps(to_json(rep), option=orjson.OPT_INDENT_2) + b"\n")
