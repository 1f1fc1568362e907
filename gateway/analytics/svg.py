"""Charts as inline SVG, written in Python (no script, no external resource): stacked bars,
a scatter plot with a zero line, a histogram. Coordinates are floats (pixels); the values
shown in labels and tooltips are formatted by the caller."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

W, H = 760, 260
LEFT, RIGHT, TOP, BOTTOM = 70, 16, 14, 44
AXIS = "#6b7280"
GRID = "#e5e7eb"


@dataclass(frozen=True, slots=True)
class Series:
    name: str
    color: str
    values: Sequence[float]
    """One per bar (bars), or the y of each point (scatter, with ``xs``)."""
    xs: Sequence[float] = ()
    tips: Sequence[str] = ()
    """A tooltip per bar or point."""


def nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """About ``n`` round values covering [lo, hi]."""
    if hi <= lo:
        hi = lo + 1
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.floor(lo / step) * step
    ticks = []
    t = first
    while t <= hi + step * 1e-9:
        ticks.append(round(t, 10))
        t += step
    if ticks[-1] < hi:
        ticks.append(round(t, 10))
    return ticks


def short(v: float) -> str:
    """A tick label: 1.2k, 3.5M, 0.25."""
    a = abs(v)
    for div, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if a >= div:
            return f"{v / div:.3g}{unit}"
    return f"{v:.3g}"


def _frame(chart_id: str, title: str, body: list[str], legend: Sequence[Series],
           width: int = W, height: int = H, fluid: bool = True) -> str:
    items = "".join(
        f'<span class="key"><i style="background:{s.color}"></i>{escape(s.name)}</span>'
        for s in legend)
    return (f'<figure class="chart" id="{chart_id}"><figcaption>{escape(title)}'
            f'<span class="legend">{items}</span></figcaption>'
            f'<svg viewBox="0 0 {width} {height}" '
            f'width="{"100%" if fluid else width}" role="img" '
            f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">'
            + "".join(body) + "</svg></figure>")


def _y_axis(ticks: list[float], y: Callable[[float], float], label: str,
            width: int = W) -> list[str]:
    out = []
    for t in ticks:
        yy = y(t)
        out.append(f'<line x1="{LEFT}" x2="{width - RIGHT}" y1="{yy:.1f}" y2="{yy:.1f}" '
                   f'stroke="{GRID}"/>')
        out.append(f'<text x="{LEFT - 6}" y="{yy + 4:.1f}" text-anchor="end" '
                   f'class="tick">{short(t)}</text>')
    out.append(f'<text x="14" y="{TOP + 4}" class="axis-label" transform="rotate(-90 14 '
               f'{TOP + 4})" text-anchor="end">{escape(label)}</text>')
    return out


def bars(chart_id: str, title: str, labels: Sequence[str], series: Sequence[Series],
         y_label: str) -> str:
    """Stacked bars, one per label."""
    n = len(labels)
    totals = [sum(s.values[i] for s in series) for i in range(n)]
    ticks = nice_ticks(0, max(totals, default=0) or 1)
    top = ticks[-1]
    plot_h = H - TOP - BOTTOM

    def y(v: float) -> float:
        return TOP + plot_h * (1 - v / top)

    body = _y_axis(ticks, y, y_label)
    slot = (W - LEFT - RIGHT) / max(n, 1)
    bar_w = max(slot * 0.8, 1)
    every = max(1, math.ceil(n / 8))
    for i, label in enumerate(labels):
        x = LEFT + i * slot + (slot - bar_w) / 2
        base = 0.0
        for s in series:
            v = s.values[i]
            if v <= 0:
                continue
            tip = s.tips[i] if s.tips else f"{label}: {short(v)}"
            body.append(f'<rect class="bar" x="{x:.1f}" y="{y(base + v):.1f}" '
                        f'width="{bar_w:.1f}" height="{y(base) - y(base + v):.1f}" '
                        f'fill="{s.color}"><title>{escape(tip)}</title></rect>')
            base += v
        if i % every == 0:
            body.append(f'<text x="{x + bar_w / 2:.1f}" y="{H - BOTTOM + 16}" '
                        f'text-anchor="middle" class="tick">{escape(label)}</text>')
    body.append(f'<line x1="{LEFT}" x2="{W - RIGHT}" y1="{y(0):.1f}" y2="{y(0):.1f}" '
                f'stroke="{AXIS}"/>')
    return _frame(chart_id, title, body, series)


def scatter(chart_id: str, title: str, series: Sequence[Series], x_range: tuple[float, float],
            x_label: Callable[[float], str], y_label: str) -> str:
    """Points (x, y) of each series over [x_range], with a line at y = 0."""
    ys = [v for s in series for v in s.values] or [0.0]
    lo, hi = min(min(ys), 0.0), max(max(ys), 0.0)
    pad = (hi - lo) * 0.08 or 1.0
    ticks = nice_ticks(lo - pad, hi + pad)
    y_lo, y_hi = ticks[0], ticks[-1]
    x0, x1 = x_range
    span = (x1 - x0) or 1.0
    plot_h = H - TOP - BOTTOM

    def y(v: float) -> float:
        return TOP + plot_h * (1 - (v - y_lo) / (y_hi - y_lo))

    def x(v: float) -> float:
        return LEFT + (W - LEFT - RIGHT) * (v - x0) / span

    body = _y_axis(ticks, y, y_label)
    body.append(f'<line x1="{LEFT}" x2="{W - RIGHT}" y1="{y(0):.1f}" y2="{y(0):.1f}" '
                f'stroke="{AXIS}" stroke-width="1.5"/>')
    for i in range(5):
        xv = x0 + span * i / 4
        anchor = "start" if i == 0 else "end" if i == 4 else "middle"
        body.append(f'<text x="{x(xv):.1f}" y="{H - BOTTOM + 16}" text-anchor="{anchor}" '
                    f'class="tick">{escape(x_label(xv))}</text>')
    for k, s in enumerate(series):
        for j, (xv, yv) in enumerate(zip(s.xs, s.values, strict=True)):
            tip = f"<title>{escape(s.tips[j])}</title>" if s.tips else ""
            cx, cy = x(xv), y(yv)
            if k % 2 == 0:
                body.append(f'<circle class="point" cx="{cx:.1f}" cy="{cy:.1f}" r="3.5" '
                            f'fill="{s.color}" fill-opacity="0.75">{tip}</circle>')
            else:
                body.append(f'<rect class="point" x="{cx - 3:.1f}" y="{cy - 3:.1f}" width="6" '
                            f'height="6" fill="{s.color}" fill-opacity="0.75">{tip}</rect>')
    return _frame(chart_id, title, body, series)


def histogram_svg(chart_id: str, title: str, bins: Sequence[str], counts: Sequence[int],
                  color: str) -> str:
    """Bars of ``counts``, one per bin, each labelled with its bin."""
    w, h = 370, 200
    ticks = nice_ticks(0, max(counts, default=0) or 1, 4)
    top = ticks[-1]
    plot_h = h - TOP - BOTTOM

    def y(v: float) -> float:
        return TOP + plot_h * (1 - v / top)

    body = []
    for t in ticks:
        body.append(f'<line x1="{LEFT - 30}" x2="{w - RIGHT}" y1="{y(t):.1f}" y2="{y(t):.1f}" '
                    f'stroke="{GRID}"/>')
        body.append(f'<text x="{LEFT - 36}" y="{y(t) + 4:.1f}" text-anchor="end" '
                    f'class="tick">{short(t)}</text>')
    left = LEFT - 30
    slot = (w - left - RIGHT) / max(len(bins), 1)
    for i, (label, n) in enumerate(zip(bins, counts, strict=True)):
        xx = left + i * slot
        if n:
            body.append(f'<rect class="bar" x="{xx + 1:.1f}" y="{y(n):.1f}" '
                        f'width="{slot - 2:.1f}" height="{y(0) - y(n):.1f}" fill="{color}">'
                        f'<title>{escape(label)} ms: {n}</title></rect>')
        if i % 2 == 0:
            body.append(f'<text x="{xx + slot / 2:.1f}" y="{h - BOTTOM + 14}" '
                        f'text-anchor="middle" class="tick">{escape(label)}</text>')
    body.append(f'<text x="{(left + w - RIGHT) / 2:.1f}" y="{h - 8}" text-anchor="middle" '
                f'class="axis-label">ms (upper bound of each bin)</text>')
    return _frame(chart_id, title, body, (), w, h, fluid=False)
