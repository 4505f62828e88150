"""Charts a person would rather look at than read, with the numbers behind them kept.

A :class:`Chart` is plain data (labels, values, interval ends, which groups are small);
:func:`draw` turns it into a matplotlib figure and :func:`save` writes it as PNG or SVG. Tests
check what was *drawn* — bar heights, line points — against the numbers of the report, not
only that a file appeared. Figures are built without ``pyplot``: no global state, safe in a
server thread.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.text import Text
from matplotlib.ticker import PercentFormatter

from leadheat.analytics.backtest import Comparison, SweepRow
from leadheat.analytics.pipeline import FollowUps, Snapshot, Stage
from leadheat.analytics.rates import Rate

Kind = Literal["rates", "counts", "lines"]
FORMATS = ("png", "svg")
COLOURS = {"hot": "#d62728", "warm": "#ff7f0e", "cold": "#1f77b4"}
BAR = "#4c72b0"
SMALL = "#b0b7c3"
SIZE = (7.2, 4.2)
"""Every chart's size in inches. One size, so that pages showing charts side by side at one
width show their text at one size too (a chart as wide as its labels once shrank the grade
chart's twelve labels to specks)."""
EMPTY_TOP = 0.1
"""The rate axis's least top: 0–10 %, so an empty chart's ticks read 0 %, 2 %, … instead of
"0 %" six times."""


@dataclass(frozen=True)
class Chart:
    """What a chart shows. ``series`` maps a series name to one value per label."""

    name: str
    """The file name, without extension."""
    title: str
    kind: Kind
    labels: list[str]
    series: dict[str, list[float | None]]
    x_label: str = ""
    y_label: str = ""
    low: list[float] = field(default_factory=list)
    high: list[float] = field(default_factory=list)
    counts: list[int] = field(default_factory=list)
    """For rate charts: leads per bar, printed under its label."""
    small: list[bool] = field(default_factory=list)
    """For rate charts: bars drawn grey and hatched (too few leads to read the rate)."""
    log_x: bool = False


def rates_chart(name: str, title: str, rows: Sequence[Rate], x_label: str = "") -> Chart:
    """Conversion rate per bucket with its Wilson 95 % interval; small groups flagged."""
    return Chart(
        name=name,
        title=title,
        kind="rates",
        labels=[r.bucket for r in rows],
        series={"rate": [r.rate for r in rows]},
        x_label=x_label,
        y_label="converted (95 % interval)",
        low=[r.low for r in rows],
        high=[r.high for r in rows],
        counts=[r.leads for r in rows],
        small=[r.small for r in rows],
    )


def funnel_chart(stages: Sequence[Stage]) -> Chart:
    return Chart(
        name="funnel",
        title="Funnel: leads reaching each stage",
        kind="counts",
        labels=[s.stage for s in stages],
        series={"leads": [float(s.leads) for s in stages]},
        y_label="leads",
    )


def overdue_chart(rows: Sequence[FollowUps]) -> Chart:
    return Chart(
        name="overdue",
        title="Follow-up tasks per owner",
        kind="counts",
        labels=[r.owner for r in rows],
        series={
            "overdue": [float(r.overdue) for r in rows],
            "not yet due": [float(r.tasks - r.overdue) for r in rows],
        },
        y_label="tasks",
    )


def heat_chart(now: Snapshot) -> Chart:
    return Chart(
        name="heat_now",
        title=f"Heat of open leads at {now.at:%Y-%m-%d %H:%M} UTC",
        kind="counts",
        labels=[name for name, _ in now.heat],
        series={"leads": [float(n) for _, n in now.heat]},
        x_label="heat",
        y_label="open leads",
    )


def trend_chart(points: Sequence[Snapshot]) -> Chart:
    return Chart(
        name="temperature_trend",
        title="Open leads by temperature",
        kind="lines",
        labels=[f"{p.at:%Y-%m-%d}" for p in points],
        series={
            "hot": [float(p.hot) for p in points],
            "warm": [float(p.warm) for p in points],
            "cold": [float(p.cold) for p in points],
        },
        y_label="open leads",
    )


def sweep_chart(rows: Sequence[SweepRow], title: str = "Which half-life predicts best") -> Chart:
    return Chart(
        name="half_life_sweep",
        title=title,
        kind="lines",
        labels=[f"{r.half_life.total_seconds() / 86400:g}d" for r in rows],
        series={"ROC-AUC": [r.roc_auc for r in rows]},
        x_label="half-life",
        y_label="ROC-AUC of heat",
    )


def comparison_chart(result: Comparison) -> Chart:
    current = {r.bucket: r for r in result.current.by_temperature}
    candidate = {r.bucket: r for r in result.candidate.by_temperature}
    labels = list(current)
    return Chart(
        name="backtest_bands",
        title=f"Conversion by band: {result.current.name} vs {result.candidate.name}",
        kind="rates",
        labels=labels,
        series={
            result.current.name + " (current)": [current[b].rate for b in labels],
            result.candidate.name + " (candidate)": [candidate[b].rate for b in labels],
        },
        y_label="converted",
        counts=[current[b].leads for b in labels],
    )


def draw(chart: Chart) -> Figure:
    """The chart as a figure (its first axes hold the data, in ``chart`` order).

    Every text is plain: labels are owners, sources and playbook names anyone may type, and
    matplotlib would read one with two ``$`` as TeX math, failing the whole chart on
    ``$\\leadheat{$``. Each text is marked plain here, once made; the only ones made later,
    when the figure is rendered, are the value axis's numbers.

    >>> chart = Chart("sources", "Sources", "counts", ["$\\\\leadheat{$"], {"leads": [2]})
    >>> label = draw(chart).axes[0].get_xticklabels()[0]
    >>> label.get_text(), label.get_parse_math()
    ('$\\\\leadheat{$', False)
    """
    figure = Figure(figsize=SIZE, layout="constrained")
    axes = figure.add_subplot()
    axes.set_title(chart.title)
    if chart.kind == "lines":
        _lines(axes, chart)
    else:
        _bars(axes, chart)
    if len(chart.series) > 1:
        axes.legend()
    room = _room(chart.labels)
    names = [tick_label(label, room) for label in chart.labels]
    if chart.counts:
        names = [
            f"{name}\nn={count_label(n, room)}" for name, n in zip(names, chart.counts, strict=True)
        ]
    axes.set_xticks(range(len(chart.labels)), names, fontsize=8)
    if any(len(line) > room for name in names for line in name.split("\n")):
        axes.tick_params(axis="x", labelrotation=90)  # a word longer than its room
    if chart.kind == "rates":
        axes.yaxis.set_major_formatter(PercentFormatter(1.0))  # 2.5%, not "2%" and "8%"
        tops = [v or 0.0 for values in chart.series.values() for v in values]
        tops += [chart.high[i] for i, n in enumerate(chart.counts) if n and chart.high]
        axes.set_ylim(0, min(1.0, max([EMPTY_TOP, *tops]) * 1.1))
    if not any(v for values in chart.series.values() for v in values) and not any(chart.counts):
        axes.text(0.5, 0.5, "nothing to show for this period", transform=axes.transAxes,
                  ha="center", va="center", color="#57606a")  # fmt: skip
    axes.set_xlabel(chart.x_label)
    axes.set_ylabel(chart.y_label)
    axes.grid(axis="y", alpha=0.3)
    for text in figure.findobj(Text):
        text.set_parse_math(False)
    return figure


def _room(labels: Sequence[str]) -> int:
    """Characters of 8 pt text that fit under one label's bar at :data:`SIZE` (about
    0.075 in a character with a space between labels; the labels share the axes' 85 % of the
    width)."""
    return max(6, int(SIZE[0] * 0.85 / max(1, len(labels)) / 0.075))


def count_label(leads: int, room: int) -> str:
    """A bar's number of leads, shortened to thousands when ``n=1,234`` would not fit.

    >>> count_label(1234, 12), count_label(1234, 6), count_label(980, 6)
    ('1,234', '1.2k', '980')
    """
    full = f"{leads:,}"
    return full if len(full) + 2 <= room or leads < 1000 else f"{leads / 1000:.1f}k"


def tick_label(label: str, room: int) -> str:
    """A label wrapped at word breaks to ``room`` characters a line, so that long source or
    campaign names stand side by side instead of running into each other; a label that fits
    is left as typed.

    >>> tick_label("Google Ads – brand campaign", 12), tick_label("hot", 12)
    ('Google Ads –\\nbrand\\ncampaign', 'hot')
    """
    if len(label) <= room:
        return label
    return "\n".join(textwrap.wrap(label, room, break_long_words=False)) or label


def _lines(axes: Axes, chart: Chart) -> None:
    """One line per series; a missing value is a gap."""
    for name, values in chart.series.items():
        axes.plot(
            range(len(chart.labels)),
            [float("nan") if v is None else v for v in values],
            marker="o",
            label=name,
            color=COLOURS.get(name),
        )


def _bars(axes: Axes, chart: Chart) -> None:
    """Bars side by side per label, one per series; a single series is coloured by label
    (hot red, …) with small groups grey and hatched, and a rate's Wilson interval is an
    error bar (none for an empty group)."""
    width = 0.8 / len(chart.series)
    single = len(chart.series) == 1
    for i, (name, values) in enumerate(chart.series.items()):
        offset = (i - (len(chart.series) - 1) / 2) * width
        colours = [
            SMALL if chart.small and chart.small[j] else COLOURS.get(label, BAR)
            for j, label in enumerate(chart.labels)
        ]
        bars = axes.bar(
            [p + offset for p in range(len(chart.labels))],
            [0.0 if v is None else v for v in values],
            width=width,
            color=colours if single else None,
            label=name,
        )
        for j, bar in enumerate(bars):
            if chart.small and chart.small[j]:
                bar.set_hatch("//")
    shown = [i for i, v in enumerate(chart.series.get("rate", [])) if v is not None]
    if chart.low and chart.high and shown:
        centres = [chart.series["rate"][i] or 0.0 for i in shown]
        axes.errorbar(
            shown,
            centres,
            yerr=[
                [c - chart.low[i] for c, i in zip(centres, shown, strict=True)],
                [chart.high[i] - c for c, i in zip(centres, shown, strict=True)],
            ],
            fmt="none",
            ecolor="black",
            capsize=4,
        )


def save(chart: Chart, folder: Path, fmt: str = "png") -> Path:
    """Write the chart to ``folder/<name>.<fmt>`` (``png`` or ``svg``)."""
    if fmt not in FORMATS:
        raise ValueError(f"chart format {fmt!r} must be one of {', '.join(FORMATS)}")
    path = folder / f"{chart.name}.{fmt}"
    draw(chart).savefig(
        path, dpi=100, metadata={"Software": None} if fmt == "png" else {"Date": None}
    )
    return path
