"""``fixgw report --html``: one self-contained page (inline CSS and SVG, no script, no external
resource) -- the totals at a glance, the notional traded and the slippage over time, the rows
per account, venue and symbol, each venue's latency histograms, the reject reasons and the
orders."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from html import escape
from pathlib import Path

from . import svg
from .output import (
    fees,
    iso,
    latency_stats,
    money,
    num,
    outcomes,
    pct,
    period,
    sig,
    signed_bp,
    span,
)
from .report import LATENCY_BINS_MS, OrderResult, Report, histogram

BLUE, AMBER, GREEN, VIOLET, RED = "#2563eb", "#d97706", "#059669", "#7c3aed", "#dc2626"
PALETTE = (BLUE, GREEN, VIOLET, AMBER, RED)
SHOWN_ORDERS = 2000

CSS = """
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;
  color:#111827;background:#f3f4f6}
header{background:#111827;color:#f9fafb;padding:18px 28px}
header h1{margin:0;font-size:20px;font-weight:600}
header p{margin:4px 0 0;color:#d1d5db}
main{padding:20px 28px;max-width:1600px}
section{background:#fff;border-radius:8px;padding:16px 20px;margin:0 0 18px;
  box-shadow:0 1px 2px rgba(0,0,0,.06)}
h2{font-size:16px;margin:0 0 12px}
.cards{display:flex;flex-wrap:wrap;gap:12px}
.card{flex:1 1 120px;min-width:0;background:#f9fafb;border:1px solid #e5e7eb;border-radius:8px;
  padding:10px 14px}
.card .label{color:#6b7280;font-size:12px;text-transform:uppercase;letter-spacing:.03em}
.card .value{font-size:20px;font-weight:600;margin-top:2px;white-space:nowrap}
.card .value.small{font-size:13px;line-height:1.3;white-space:normal;overflow-wrap:anywhere}
.card .note{color:#6b7280;font-size:12px}
.cost{color:#b91c1c}.gain{color:#047857}
.charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(520px,1fr));gap:16px}
figure.chart{margin:0}
figcaption{font-weight:600;margin-bottom:4px}
.legend{font-weight:400;color:#4b5563;margin-left:12px;font-size:12px}
.key{margin-right:10px}.key i{display:inline-block;width:10px;height:10px;border-radius:2px;
  margin-right:4px;vertical-align:-1px}
svg text.tick{font-size:11px;fill:#6b7280}
svg text.axis-label{font-size:11px;fill:#374151}
table{border-collapse:collapse;width:100%;font-variant-numeric:tabular-nums}
th,td{padding:5px 8px;border-bottom:1px solid #e5e7eb;text-align:left;white-space:nowrap}
td.wrap{white-space:normal;min-width:9em}
th{font-size:12px;color:#4b5563;background:#f9fafb;position:sticky;top:0}
td.n,th.n{text-align:right}
.venues{display:grid;grid-template-columns:repeat(auto-fit,minmax(760px,1fr));gap:16px}
.venue h3{margin:0 0 6px;font-size:15px}
.hists{display:flex;gap:8px;flex-wrap:wrap}
.hists figure{flex:1 1 360px}
.muted{color:#6b7280}
.scroll{max-height:520px;overflow:auto}
"""


def _bp_class(v: Decimal | None) -> str:
    if v is None or v == 0:
        return ""
    return "cost" if v > 0 else "gain"


def _card(card_id: str, label: str, value: str, note: str = "", cls: str = "") -> str:
    shown = "<br>".join(escape(v) for v in value.split("\n"))
    return (f'<div class="card" id="{card_id}"><div class="label">{escape(label)}</div>'
            f'<div class="value {cls}">{shown}</div>'
            f'<div class="note">{escape(note)}</div></div>')


def _when(ns: float) -> str:
    return datetime.fromtimestamp(ns / 1e9, UTC).strftime("%m-%d %H:%M:%S")


def _stamp(ns: int) -> str:
    """An order's time in the table (the year is in the header)."""
    t = datetime.fromtimestamp(ns / 1e9, UTC)
    return t.strftime("%m-%d %H:%M:%S.") + f"{t.microsecond // 1000:03d}"


def _bucket_label(ns: int, bucket_ns: int) -> str:
    fmt = "%H:%M:%S" if bucket_ns < 60_000_000_000 else "%m-%d %H:%M"
    return datetime.fromtimestamp(ns / 1e9, UTC).strftime(fmt)


def _volume_chart(rep: Report) -> str:
    quotes = rep.quote_currencies
    labels = [_bucket_label(b.start_ns, rep.bucket_ns) for b in rep.buckets]
    series = [svg.Series(q, PALETTE[i % len(PALETTE)],
                         [float(b.notional.get(q, 0)) for b in rep.buckets],
                         tips=[f"{_bucket_label(b.start_ns, rep.bucket_ns)}: "
                               f"{num(b.notional.get(q, Decimal(0)), 2)} {q}"
                               for b in rep.buckets])
              for i, q in enumerate(quotes)]
    return svg.bars("chart-volume", f"Notional traded per {span(rep.bucket_ns)}", labels, series,
                    f"notional ({', '.join(quotes) or 'quote'})")


def _slippage_chart(rep: Report) -> str:
    arrival = [o for o in rep.orders if o.slip_arrival_bp is not None]
    vwap = [o for o in rep.orders if o.slip_vwap_bp is not None]

    def tip(o: OrderResult, which: str, v: Decimal | None) -> str:
        return (f"order {o.order_id} {o.cl_ord_id} {o.side.value} {num(o.cum_qty)} "
                f"{o.symbol} @ {sig(o.avg_px)}: {signed_bp(v)} bp vs {which}")

    series = [
        svg.Series("vs arrival mid", BLUE, [float(o.slip_arrival_bp or 0) for o in arrival],
                   xs=[float(o.created_ns) for o in arrival],
                   tips=[tip(o, "arrival mid", o.slip_arrival_bp) for o in arrival]),
        svg.Series("vs market VWAP over its life", AMBER,
                   [float(o.slip_vwap_bp or 0) for o in vwap],
                   xs=[float(o.created_ns) for o in vwap],
                   tips=[tip(o, "market VWAP", o.slip_vwap_bp) for o in vwap]),
    ]
    pad = max((rep.last_ns - rep.first_ns) * 0.03, 1e9)
    return svg.scatter("chart-slippage", "Slippage of each order at its arrival (bp; above 0: "
                       "a cost)", series, (rep.first_ns - pad, rep.last_ns + pad), _when, "bp")


def _rows(rep: Report) -> str:
    head = ("account", "venue", "symbol", "orders", "outcomes", "fill rate", "fills",
            "volume", "notional", "fees", "realized PnL", "slip/arrival bp", "slip/VWAP bp")
    right = {3, 5, 6, 7, 8, 10, 11, 12}
    th = "".join(f'<th class="{"n" if i in right else ""}">{h}</th>' for i, h in enumerate(head))
    trs = []
    for r, total in [*((r, False) for r in rep.rows), (rep.totals, True)]:
        cells = [r.account or ("all" if total else "-"), r.venue or "", r.symbol or "",
                 str(r.orders), outcomes(r) or "-", pct(r.fill_rate), str(r.fills),
                 num(r.volume) if not total else "", num(r.notional, 2), fees(r.fees),
                 money(r.realized)]
        wrap = {4, 9}
        tds = "".join(f'<td class="{"n" if i in right else "wrap" if i in wrap else ""}">'
                      f"{escape(c)}</td>" for i, c in enumerate(cells))
        for v, n in ((r.slip_arrival_bp, r.n_arrival), (r.slip_vwap_bp, r.n_vwap)):
            tds += (f'<td class="n {_bp_class(v)}">{signed_bp(v)} '
                    f'<span class="muted">({n})</span></td>')
        cls = "total" if total else "row"
        key = "" if total else f' data-key="{escape(r.account)}|{escape(r.venue)}|' \
                               f'{escape(r.symbol)}"'
        trs.append(f'<tr class="{cls}"{key}>{tds}</tr>')
    return (f'<section id="rows"><h2>Per account, venue and symbol</h2>'
            '<p class="muted">Orders, outcomes, fill rate and slippage in the row of the '
            "order's venue (SOR: routed across venues); fills, volume, fees and realized PnL "
            "in the row of the venue that executed them. Slippage: notional-weighted, over "
            "the orders with the benchmark (their number in brackets).</p>"
            f'<div class="scroll"><table class="rows"><thead><tr>{th}</tr></thead>'
            f'<tbody>{"".join(trs)}</tbody></table></div></section>')


def _latency(rep: Report) -> str:
    bins = [*(f"≤{b:g}" for b in LATENCY_BINS_MS), f">{LATENCY_BINS_MS[-1]:g}"]
    blocks = []
    for lat in rep.latency:
        stats = []
        for name, values in (("ack", lat.ack_ms), ("fill", lat.fill_ms)):
            s = latency_stats(values)
            cells = "".join(f'<td class="n">{num(v, 2) if isinstance(v, Decimal) else "-"}</td>'
                            for v in (s["p50"], s["p90"], s["p99"], s["max"]))
            stats.append(f'<tr class="latency" data-venue="{escape(lat.venue)}" '
                         f'data-kind="{name}"><td>{name}</td><td class="n">{s["n"]}</td>'
                         f"{cells}</tr>")
        ack = svg.histogram_svg(f"hist-ack-{escape(lat.venue)}", "ack: intent stored -> "
                                "acknowledged", bins, histogram(lat.ack_ms), BLUE)
        fill = svg.histogram_svg(f"hist-fill-{escape(lat.venue)}", "fill: acknowledged -> "
                                 "first fill", bins, histogram(lat.fill_ms), GREEN)
        blocks.append(
            f'<div class="venue"><h3>{escape(lat.venue)}</h3><table class="stats">'
            '<thead><tr><th></th><th class="n">n</th><th class="n">p50 ms</th>'
            '<th class="n">p90 ms</th><th class="n">p99 ms</th><th class="n">max ms</th>'
            f'</tr></thead><tbody>{"".join(stats)}</tbody></table>'
            f'<div class="hists">{ack}{fill}</div></div>')
    if not blocks:
        blocks.append('<p class="muted">No order reached a venue in this range.</p>')
    return (f'<section id="latency"><h2>Venue latency</h2><div class="venues">'
            f'{"".join(blocks)}</div></section>')


def _rejects(rep: Report) -> str:
    t = rep.totals
    if not t.rejects:
        body = '<p class="muted">No order was rejected.</p>'
    else:
        trs = "".join(f'<tr class="reject"><td class="n">{n}</td><td>{escape(reason)}</td></tr>'
                      for reason, n in t.rejects.most_common())
        body = (f'<table><thead><tr><th class="n">orders</th><th>reason (numbers as N)</th>'
                f'</tr></thead><tbody>{trs}</tbody></table>')
    return f'<section id="rejects"><h2>Reject reasons</h2>{body}</section>'


def _orders(rep: Report) -> str:
    head = ("created (UTC)", "order", "ClOrdID", "account", "venue", "symbol", "side", "qty",
            "filled", "avg px", "outcome", "arrival mid", "slip/arrival bp", "market VWAP",
            "slip/VWAP bp")
    right = {7, 8, 9, 11, 12, 13, 14}
    th = "".join(f'<th class="{"n" if i in right else ""}">{h}</th>' for i, h in enumerate(head))
    trs = []
    for o in rep.orders[:SHOWN_ORDERS]:
        cells = [_stamp(o.created_ns), o.order_id, o.cl_ord_id, o.account or "-", o.venue,
                 o.symbol, o.side.value, num(o.quantity), num(o.cum_qty), sig(o.avg_px),
                 o.outcome, sig(o.arrival_mid)]
        tds = "".join(f'<td class="{"n" if i in right else ""}">{escape(c)}</td>'
                      for i, c in enumerate(cells))
        tds += f'<td class="n {_bp_class(o.slip_arrival_bp)}">{signed_bp(o.slip_arrival_bp)}</td>'
        tds += f'<td class="n">{sig(o.market_vwap)}</td>'
        tds += f'<td class="n {_bp_class(o.slip_vwap_bp)}">{signed_bp(o.slip_vwap_bp)}</td>'
        trs.append(f'<tr class="order" data-outcome="{o.outcome}">{tds}</tr>')
    more = (f'<p class="muted">The first {SHOWN_ORDERS:,} of {len(rep.orders):,} orders '
            "(all are in --json).</p>" if len(rep.orders) > SHOWN_ORDERS else "")
    return (f'<section id="orders"><h2>Orders ({len(rep.orders):,})</h2>{more}'
            f'<div class="scroll"><table><thead><tr>{th}</tr></thead>'
            f'<tbody>{"".join(trs)}</tbody></table></div></section>')


def render(rep: Report) -> str:
    t = rep.totals
    cards = "".join((
        _card("card-orders", "orders", f"{t.orders:,}", outcomes(t) or "none"),
        _card("card-fill-rate", "fill rate", pct(t.fill_rate), "quantity filled / ordered"),
        _card("card-fills", "fills", f"{t.fills:,}"),
        _card("card-notional", "notional", num(t.notional, 2),
              ", ".join(rep.quote_currencies) or "quote currency"),
        _card("card-fees", "fees", fees(t.fees).replace(", ", "\n"), "", "small"),
        _card("card-pnl", "realized PnL", money(t.realized), "quote currency, before fees",
              "gain" if t.realized > 0 else "cost" if t.realized < 0 else ""),
        _card("card-slip-arrival", "slippage vs arrival mid", f"{signed_bp(t.slip_arrival_bp)} "
              "bp", f"{t.n_arrival} orders with an arrival mid", _bp_class(t.slip_arrival_bp)),
        _card("card-slip-vwap", "slippage vs market VWAP", f"{signed_bp(t.slip_vwap_bp)} bp",
              f"{t.n_vwap} orders with the market's trades", _bp_class(t.slip_vwap_bp)),
    ))
    return (
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
        f"<title>fixgw report</title><style>{CSS}</style></head><body>"
        f"<header><h1>fixgw report</h1><p id=\"range\">{escape(rep.source)} &middot; "
        f"{escape(period(rep))} &middot; generated "
        f"{iso(rep.generated_ns)}</p></header><main>"
        f'<section id="summary"><div class="cards">{cards}</div></section>'
        f'<section id="charts"><h2>Over time</h2><div class="charts">{_volume_chart(rep)}'
        f"{_slippage_chart(rep)}</div></section>"
        f"{_rows(rep)}{_latency(rep)}{_rejects(rep)}{_orders(rep)}"
        "</main></body></html>\n")


def write_html(path: Path, rep: Report) -> None:
    path.write_text(render(rep), encoding="utf-8")
