"""Server-rendered SVG line charts for the admin: no JavaScript, readable in a screenshot.

Pure: takes numbers, returns markup. Labels and names are escaped.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from html import escape

PALETTE = ("#2f6fb0", "#d9822b", "#3a9a5b", "#b03a6f", "#7a5fb0", "#6b6b6b")


def line_chart(
    *,
    title: str,
    labels: Sequence[str],
    series: dict[str, Sequence[float | None]],
    y_format: Callable[[float], str] = lambda value: f"{value:g}",
    width: int = 560,
    height: int = 220,
) -> str:
    """One line per series over shared x labels; None leaves a gap in that line."""
    left, right, top, bottom = 48, 12, 28, 40
    plot_w, plot_h = width - left - right, height - top - bottom
    values = [v for points in series.values() for v in points if v is not None]
    top_value = max(values, default=0) or 1.0
    count = max(len(labels), 1)

    def x(index: int) -> float:
        return left + (plot_w * index / (count - 1) if count > 1 else plot_w / 2)

    def y(value: float) -> float:
        return top + plot_h - plot_h * value / top_value

    parts = [
        f'<svg class="recsys-chart" xmlns="http://www.w3.org/2000/svg" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(title)}">',
        f'<text x="{left}" y="16" class="chart-title">{escape(title)}</text>',
    ]
    for fraction in (0, 0.5, 1):
        gy = y(top_value * fraction)
        parts.append(
            f'<line x1="{left}" y1="{gy:.1f}" x2="{width - right}" y2="{gy:.1f}" '
            'stroke="#ddd" stroke-width="1"/>'
            f'<text x="{left - 6}" y="{gy + 4:.1f}" text-anchor="end" class="chart-axis">'
            f"{escape(y_format(top_value * fraction))}</text>"
        )
    step = max(1, count // 7)
    for index in range(0, len(labels), step):
        parts.append(
            f'<text x="{x(index):.1f}" y="{height - bottom + 16}" text-anchor="middle" '
            f'class="chart-axis">{escape(labels[index])}</text>'
        )
    for number, (name, points) in enumerate(series.items()):
        colour = PALETTE[number % len(PALETTE)]
        segments, current = [], []
        for index, value in enumerate(points):
            if value is None:
                if current:
                    segments.append(current)
                current = []
            else:
                current.append(f"{x(index):.1f},{y(value):.1f}")
        if current:
            segments.append(current)
        for segment in segments:
            if len(segment) == 1:
                cx, cy = segment[0].split(",")
                parts.append(f'<circle cx="{cx}" cy="{cy}" r="3" fill="{colour}"/>')
            else:
                parts.append(
                    f'<polyline class="series" data-series="{escape(name)}" fill="none" '
                    f'stroke="{colour}" stroke-width="2" points="{" ".join(segment)}"/>'
                )
        legend_x = left + number * 130
        parts.append(
            f'<rect x="{legend_x}" y="{height - 14}" width="10" height="10" fill="{colour}"/>'
            f'<text x="{legend_x + 14}" y="{height - 5}" class="chart-legend">{escape(name)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def forest_plot(
    *,
    title: str,
    rows: Sequence[tuple[str, float | None, float | None, float | None]],
    x_format: Callable[[float], str] = lambda value: f"{value:+.1%}",
    width: int = 560,
    row_height: int = 22,
) -> str:
    """One horizontal interval per row (label, estimate, low, high) around a zero line: the
    confidence intervals of lifts side by side. A row without an interval shows its label only."""
    left, right, top, bottom = 190, 16, 28, 30
    height = top + bottom + row_height * max(len(rows), 1)
    plot_w = width - left - right
    bounds = [v for _, _, low, high in rows for v in (low, high) if v is not None]
    reach = max([abs(v) for v in bounds] or [1.0]) or 1.0

    def x(value: float) -> float:
        return left + plot_w * (value + reach) / (2 * reach)

    parts = [
        f'<svg class="recsys-chart" xmlns="http://www.w3.org/2000/svg" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(title)}">',
        f'<text x="8" y="16" class="chart-title">{escape(title)}</text>',
        f'<line x1="{x(0):.1f}" y1="{top - 4}" x2="{x(0):.1f}" y2="{height - bottom + 4}" '
        'stroke="#999" stroke-dasharray="3,3"/>',
    ]
    for index, (label, estimate, low, high) in enumerate(rows):
        y = top + row_height * index + row_height / 2
        parts.append(f'<text x="8" y="{y + 4:.1f}" font-size="11">{escape(label)}</text>')
        if low is None or high is None or estimate is None:
            parts.append(f'<text x="{left}" y="{y + 4:.1f}" font-size="11">no interval</text>')
            continue
        colour = PALETTE[0] if low > 0 else PALETTE[3] if high < 0 else "#6b6b6b"
        parts.append(
            f'<line x1="{x(low):.1f}" y1="{y:.1f}" x2="{x(high):.1f}" y2="{y:.1f}" '
            f'stroke="{colour}" stroke-width="2"/>'
            f'<circle cx="{x(estimate):.1f}" cy="{y:.1f}" r="3.5" fill="{colour}"/>'
        )
    for value in (-reach, 0.0, reach):
        parts.append(
            f'<text x="{x(value):.1f}" y="{height - 10}" font-size="10" text-anchor="middle">'
            f"{escape(x_format(value))}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)
