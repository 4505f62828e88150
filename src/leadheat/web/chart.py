"""Charts drawn on the server as SVG: no chart library, no script, readable without colour
(every line is labelled) and crisp on a phone."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from markupsafe import Markup, escape

WIDTH, HEIGHT = 640, 220
LEFT, RIGHT, TOP, BOTTOM = 44, 12, 12, 28


@dataclass(frozen=True)
class Threshold:
    label: str
    value: float
    css: str


def _path(points: Sequence[tuple[float, float]]) -> str:
    return " ".join(f"{'M' if i == 0 else 'L'}{x:.1f},{y:.1f}" for i, (x, y) in enumerate(points))


def heat_chart(
    series: Sequence[tuple[datetime, float]], thresholds: Sequence[Threshold], title: str
) -> Markup:
    """A line of heat over time with dashed threshold lines, as an accessible ``<svg>``.

    >>> from datetime import UTC, timedelta
    >>> t0 = datetime(2026, 11, 1, tzinfo=UTC)
    >>> svg = heat_chart([(t0, 30.0), (t0 + timedelta(days=7), 15.0)],
    ...                  [Threshold("hot", 20, "hot"), Threshold("warm", 5, "warm")], "Heat")
    >>> svg.startswith("<svg") and "hot 20" in svg and 'role="img"' in svg
    True
    """
    if not series:
        return Markup('<p class="muted">No engagement yet.</p>')
    start, end = series[0][0], series[-1][0]
    total = max((end - start).total_seconds(), 1.0)
    top = max([v for _, v in series] + [t.value for t in thresholds]) * 1.1 or 1.0
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(at: datetime) -> float:
        return LEFT + plot_w * (at - start).total_seconds() / total

    def y(value: float) -> float:  # heat below 0 (negative signals) is drawn on the axis
        return TOP + plot_h * (1 - max(value, 0.0) / top)

    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
        f'<line class="axis" x1="{LEFT}" y1="{TOP + plot_h}" x2="{WIDTH - RIGHT}" '
        f'y2="{TOP + plot_h}"/>',
        f'<line class="axis" x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{TOP + plot_h}"/>',
    ]
    for threshold in thresholds:
        ty = y(threshold.value)
        parts.append(
            f'<line class="threshold {threshold.css}" x1="{LEFT}" y1="{ty:.1f}" '
            f'x2="{WIDTH - RIGHT}" y2="{ty:.1f}"/>'
            f'<text class="label {threshold.css}" x="{WIDTH - RIGHT - 4}" y="{ty - 4:.1f}" '
            f'text-anchor="end">{escape(threshold.label)} {threshold.value:g}</text>'
        )
    area = [(x(at), y(v)) for at, v in series]
    parts.append(
        f'<path class="area" d="{_path(area)} L{area[-1][0]:.1f},{TOP + plot_h} '
        f'L{area[0][0]:.1f},{TOP + plot_h} Z"/>'
    )
    parts.append(f'<path class="line" d="{_path(area)}"/>')
    parts.append(
        f'<text class="tick" x="{LEFT - 6}" y="{TOP + 10}" text-anchor="end">{top:.0f}</text>'
        f'<text class="tick" x="{LEFT - 6}" y="{TOP + plot_h}" text-anchor="end">0</text>'
        f'<text class="tick" x="{LEFT}" y="{HEIGHT - 8}">{start:%b %d}</text>'
        f'<text class="tick" x="{WIDTH - RIGHT}" y="{HEIGHT - 8}" text-anchor="end">'
        f"{end:%b %d %H:%M}</text>"
    )
    parts.append("</svg>")
    return Markup("".join(parts))
