"""``leadheat report``, ``leadheat backtest`` and ``leadheat expect``: thin shells over
:mod:`leadheat.analytics.report` and :mod:`leadheat.analytics.team`.

Registered in :mod:`leadheat.cli.app` one line each; errors (a bad date, an unknown lead, a
playbook with a mistake) are one line with exit status 1, as everywhere in the CLI.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from rich.table import Table

from leadheat.analytics.backtest import SWEEP, SweepRow, best
from leadheat.analytics.decisions import DEFAULT_HORIZON
from leadheat.analytics.expect import MIN_SIMILAR
from leadheat.analytics.rates import Rate
from leadheat.cli.options import JsonOption, instant
from leadheat.cli.output import emit, err, out
from leadheat.cli.state import open_leadheat
from leadheat.times import format_duration, parse_duration

SinceOption = Annotated[
    str | None,
    typer.Option("--since", help="Only leads that arrived at or after this time (ISO 8601)."),
]
UntilOption = Annotated[
    str | None,
    typer.Option(
        "--until",
        help="As of this time: leads that arrived before it, and only what was known by then "
        "(default: now).",
    ),
]
HorizonOption = Annotated[
    str,
    typer.Option(
        "--horizon",
        help="A lead converted if it was won within this long of its first touch; open leads "
        "younger than that are censored (left out of rates).",
    ),
]
HORIZON = format_duration(DEFAULT_HORIZON)
Format = Literal["png", "svg"]
FormatOption = Annotated[Format, typer.Option("--format", help="Chart files: png or svg.")]


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}"


def _rates(title: str, rows: Sequence[Rate]) -> None:
    table = Table("bucket", "leads", "won", "rate", "95% interval", "", title=title)
    for r in rows:
        table.add_row(
            r.bucket,
            f"{r.leads:,}",
            f"{r.won:,}",
            _percent(r.rate),
            f"{_percent(r.low)}–{_percent(r.high)}",
            "small group" if r.small else "",
        )
    out.print(table)


def report(
    since: SinceOption = None,
    until: UntilOption = None,
    out_dir: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Write index.html, the charts and report.json to DIR (default: "
            "./leadheat-report, unless --json is given).",
        ),
    ] = None,
    fmt: FormatOption = "png",
    horizon: HorizonOption = HORIZON,
    as_json: JsonOption = False,
) -> None:
    """Conversion by temperature, grade, lead age, time to first touch, source, campaign and
    rep (Wilson 95% intervals), the funnel, SLA per rep, heat now and its trend."""
    from leadheat.analytics.report import build_report, write_report

    result = build_report(
        open_leadheat(), since=instant(since), until=instant(until), horizon=parse_duration(horizon)
    )
    folder = out_dir if out_dir is not None or as_json else Path("leadheat-report")
    if folder is not None:
        page = write_report(result, folder, fmt)
        (err if as_json else out).print(f"report written to {page}")
    if as_json:
        emit(result.as_json())
        return
    data = result.as_json()
    out.print(
        f"{data['leads']:,} leads, {data['won']:,} won within {data['horizon']} of the first "
        f"touch, {data['censored']:,} censored"
    )
    for key in ("by_temperature", "by_first_touch_delay", "by_lead_age", "by_source"):
        _rates(key, result.breakdowns[key])


def _half_lives(values: Sequence[str], sweep: bool) -> list[timedelta]:
    spans = [parse_duration(part.strip()) for value in values for part in value.split(",")]
    return sorted(set(spans) | (set(SWEEP) if sweep else set()))


def _sweep_table(rows: Sequence[SweepRow]) -> None:
    table = Table("half-life", "rows", "converted", "ROC-AUC", title="half-life sweep")
    top = best(rows)
    for r in rows:
        auc = "–" if r.roc_auc is None else f"{r.roc_auc:.3f}"
        table.add_row(
            format_duration(r.half_life),
            f"{r.rows:,}",
            f"{r.converted:,}",
            auc + (" best" if r is top else ""),
        )
    out.print(table)


def backtest(
    playbook: Annotated[
        Path | None,
        typer.Option(
            "--playbook",
            exists=True,
            dir_okay=False,
            help="The candidate playbook (TOML) to test against the past.",
        ),
    ] = None,
    against: Annotated[
        Path | None,
        typer.Option(
            "--against",
            exists=True,
            dir_okay=False,
            help="Compare with this playbook instead of the one in use.",
        ),
    ] = None,
    half_life: Annotated[
        list[str] | None,
        typer.Option(
            "--half-life",
            help="Sweep: judge heat at these half-lives (repeatable, or comma-separated, "
            "e.g. 1d,7d,30d).",
        ),
    ] = None,
    sweep: Annotated[
        bool, typer.Option("--sweep", help="Sweep the usual half-lives, a day to a year.")
    ] = False,
    converts_on: Annotated[
        str | None,
        typer.Option(
            "--converts-on",
            help="Sweep against an event type instead of won outcomes (e.g. purchase: does "
            "heat predict the next purchase?), at snapshots every --every.",
        ),
    ] = None,
    within: Annotated[
        str, typer.Option("--within", help="With --converts-on: the window after a snapshot.")
    ] = "28d",
    every: Annotated[
        str, typer.Option("--every", help="With --converts-on: time between snapshots.")
    ] = "28d",
    since: SinceOption = None,
    until: UntilOption = None,
    horizon: HorizonOption = HORIZON,
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Also write the charts to DIR.")
    ] = None,
    fmt: FormatOption = "png",
    as_json: JsonOption = False,
) -> None:
    """Replay the past as of each lead's first touch under a candidate playbook and the
    current one; or sweep half-lives to find which decay predicts conversion best."""
    from leadheat.analytics import team
    from leadheat.analytics.charts import comparison_chart, save, sweep_chart
    from leadheat.playbook import parse_playbook

    spans = _half_lives(half_life or [], sweep)
    if playbook is None and not spans:
        raise typer.BadParameter("give --playbook CANDIDATE.toml, or --half-life / --sweep")
    if converts_on is not None and not spans:
        raise typer.BadParameter("--converts-on goes with --half-life or --sweep")
    lh = open_leadheat()
    at, start, span = instant(until), instant(since), parse_duration(horizon)
    data: dict[str, Any] = {}
    charts = []
    if playbook is not None:
        candidate = parse_playbook(playbook.read_text("utf-8"), str(playbook))
        current = (
            None if against is None else parse_playbook(against.read_text("utf-8"), str(against))
        )
        compared = team.backtest(lh, candidate, current, horizon=span, since=start, until=at)
        data["backtest"] = compared.as_json()
        charts.append(comparison_chart(compared))
    if spans:
        if converts_on is None:
            rows = team.half_life_sweep(lh, spans, horizon=span, since=start, until=at)
        else:
            rows = team.stream_sweep(
                lh,
                converts_on,
                spans,
                within=parse_duration(within),
                every=parse_duration(every),
                since=start,
                until=at,
            )
        top = best(rows)
        data["half_life_sweep"] = [r.as_json() for r in rows]
        data["best_half_life"] = None if top is None else format_duration(top.half_life)
        charts.append(sweep_chart(rows))
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=out_dir, prefix=".staging-") as staging:
            written = [save(chart, Path(staging), fmt) for chart in charts]
            for path in written:
                path.replace(out_dir / path.name)
        (err if as_json else out).print(f"charts written to {out_dir}")
    if as_json:
        emit(data)
        return
    if "backtest" in data:
        found = data["backtest"]
        out.print(
            f"{found['leads']:,} leads ({found['censored']:,} censored), won within "
            f"{found['horizon']} of the first touch"
        )
        for side in ("current", "candidate"):
            judged = found[side]
            auc = judged["roc_auc"]
            hot = judged["converters_hot"]
            out.print(
                f"{side} ({judged['name']}): ROC-AUC of heat "
                f"{'–' if auc is None else f'{auc:.3f}'}; converters hot at first touch "
                f"{hot['won']:,} of {hot['leads']:,} ({_percent(hot['rate'])})"
            )
        out.print(f"re-banded: {found['rebanded_leads']:,} leads")
        for move in found["rebanded"]:
            out.print(f"  {move['from']} → {move['to']}: {move['leads']:,}")
    if "half_life_sweep" in data:
        _sweep_table(rows)


def expect(
    leads: Annotated[
        Path | None,
        typer.Option(
            "--leads", help="A CSV of the campaign's leads (a lead, email or external_id column)."
        ),
    ] = None,
    temperature: Annotated[
        str | None,
        typer.Option("--temperature", help="Or every open lead of this temperature."),
    ] = None,
    source: Annotated[
        str | None, typer.Option("--source", help="Or every open lead from this source.")
    ] = None,
    horizon: HorizonOption = HORIZON,
    min_similar: Annotated[
        int,
        typer.Option(
            "--min-similar",
            min=1,
            help="Past leads a group needs before its rate is used; fewer and the match widens.",
        ),
    ] = MIN_SIMILAR,
    as_json: JsonOption = False,
) -> None:
    """Expected conversions of a campaign list, with a 95% interval, from the history of
    similar leads (temperature, age, source)."""
    from leadheat.analytics import team

    if temperature is not None and temperature not in ("hot", "warm", "cold"):
        raise typer.BadParameter(f"--temperature {temperature!r} must be hot, warm or cold")
    lh = open_leadheat()
    ids = None if leads is None else team.resolve(lh, team.read_lead_list(leads))
    result = team.expectation(
        lh,
        lead_ids=ids,
        temperature=temperature,
        source=source,
        horizon=parse_duration(horizon),
        min_similar=min_similar,
    )
    if as_json:
        emit(result.as_json())
        return
    out.print(
        f"{result.leads:,} leads: {result.expected:.1f} expected conversions within {horizon} "
        f"(95% interval {result.low:.0f}–{result.high:.0f})"
    )
    table = Table("matched on", "temperature", "age", "source", "leads", "past leads", "rate")
    for cell in result.cells:
        table.add_row(
            cell.match,
            cell.temperature or "",
            cell.age or "",
            cell.source or "",
            f"{cell.leads:,}",
            f"{cell.past_leads:,}",
            _percent(cell.rate if cell.past_leads else None),
        )
    out.print(table)
