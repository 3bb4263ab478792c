"""Inline SVG charts drawn by hand: no JavaScript, no fonts or files fetched, readable offline."""
from __future__ import annotations

import math
from html import escape
from typing import Callable, Sequence

PALETTE = ("#d9480f", "#1971c2", "#2f9e44", "#9c36b5", "#e67700", "#0c8599", "#c2255c", "#5c940d")
FONT = "font-family='Noto Sans CJK SC, PingFang SC, Microsoft YaHei, sans-serif'"


def nice_max(value: float) -> float:
    """A round axis maximum >= value (1, 2, 2.5, 5 x 10^k)."""
    if value <= 0:
        return 1.0
    exp = 10 ** math.floor(math.log10(value))
    for m in (1, 2, 2.5, 5, 10):
        if value <= m * exp:
            return m * exp
    return 10 * exp


def _num(v: float) -> str:
    if v >= 10000:
        return f"{v / 10000:.1f}万"
    return f"{v:.0f}" if v == int(v) else f"{v:.2g}"


def line_chart(labels: Sequence[str], series: Sequence[tuple[str, Sequence[float]]], *, title: str,
               width: int = 760, height: int = 280, y_format: Callable[[float], str] = _num,
               y_max: float | None = None) -> str:
    """One line per series over shared x labels; legend on top, 5 grid lines."""
    left, right, top, bottom = 56, 40, 48, 40
    w, h = width - left - right, height - top - bottom
    top_value = y_max if y_max is not None else nice_max(max((max(v) for _, v in series if len(v)), default=0.0))
    n = max(len(labels), 1)
    x = (lambda i: left + (w * i / (n - 1) if n > 1 else w / 2))
    y = (lambda v: top + h - (h * v / top_value if top_value else 0))
    out = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' "
           f"viewBox='0 0 {width} {height}' class='chart-svg' role='img' aria-label='{escape(title)}' {FONT}>",
           f"<rect width='{width}' height='{height}' fill='#ffffff'/>",
           f"<text x='{left}' y='20' font-size='15' font-weight='bold' fill='#212529'>{escape(title)}</text>"]
    for i in range(6):
        v = top_value * i / 5
        yy = y(v)
        out.append(f"<line x1='{left}' y1='{yy:.1f}' x2='{left + w}' y2='{yy:.1f}' stroke='#e9ecef'/>")
        out.append(f"<text x='{left - 6}' y='{yy + 4:.1f}' font-size='11' text-anchor='end' fill='#495057'>"
                   f"{escape(y_format(v))}</text>")
    step = max(1, math.ceil(n / 12))
    for i, label in enumerate(labels):
        if i % step == 0 or i == n - 1:
            out.append(f"<text x='{x(i):.1f}' y='{top + h + 18}' font-size='11' text-anchor='middle' "
                       f"fill='#495057'>{escape(label)}</text>")
    out.append(f"<line x1='{left}' y1='{top + h}' x2='{left + w}' y2='{top + h}' stroke='#868e96'/>")
    lx = left
    for k, (name, values) in enumerate(series):
        color = PALETTE[k % len(PALETTE)]
        pts = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(values))
        if len(values) > 1:
            out.append(f"<polyline points='{pts}' fill='none' stroke='{color}' stroke-width='2.5'/>")
        for i, v in enumerate(values):
            out.append(f"<circle cx='{x(i):.1f}' cy='{y(v):.1f}' r='3' fill='{color}'>"
                       f"<title>{escape(name)} {escape(labels[i] if i < len(labels) else '')}: {escape(y_format(v))}</title></circle>")
        out.append(f"<rect x='{lx}' y='30' width='12' height='12' fill='{color}'/>"
                   f"<text x='{lx + 16}' y='40' font-size='12' fill='#212529'>{escape(name)}</text>")
        lx += 28 + 13 * len(name)
    out.append("</svg>")
    return "".join(out)


def bar_chart(items: Sequence[tuple[str, float]], *, title: str, width: int = 760,
              value_format: Callable[[float], str] = _num, colors: Sequence[str] | None = None) -> str:
    """Horizontal bars, one per item; negative values drawn to the left of the zero line."""
    row, top, left, right = 26, 36, 200, 70
    height = top + row * max(len(items), 1) + 10
    w = width - left - right
    lo = min(0.0, min((v for _, v in items), default=0.0))
    hi = max(0.0, max((v for _, v in items), default=0.0))
    span = (hi - lo) or 1.0
    zero = left + w * (-lo / span)
    out = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' "
           f"viewBox='0 0 {width} {height}' class='chart-svg' role='img' aria-label='{escape(title)}' {FONT}>",
           f"<rect width='{width}' height='{height}' fill='#ffffff'/>",
           f"<text x='8' y='20' font-size='15' font-weight='bold' fill='#212529'>{escape(title)}</text>"]
    for i, (label, v) in enumerate(items):
        yy = top + i * row
        bw = w * abs(v) / span
        bx = zero if v >= 0 else zero - bw
        color = (colors[i] if colors else None) or (PALETTE[0] if v >= 0 else PALETTE[1])
        out.append(f"<text x='{left - 8}' y='{yy + 15}' font-size='12' text-anchor='end' fill='#212529'>{escape(label)}</text>")
        out.append(f"<rect x='{bx:.1f}' y='{yy + 3}' width='{max(bw, 1):.1f}' height='{row - 8}' fill='{color}'/>")
        out.append(f"<text x='{(bx + bw if v >= 0 else zero) + 6:.1f}' y='{yy + 15}' font-size='11' "
                   f"fill='#495057'>{escape(value_format(v))}</text>")
    out.append(f"<line x1='{zero:.1f}' y1='{top - 4}' x2='{zero:.1f}' y2='{height - 6}' stroke='#868e96'/>")
    out.append("</svg>")
    return "".join(out)
