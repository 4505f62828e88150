"""``leadheat playbook``: read, check and apply the team's playbook. A playbook is checked
in full (its syntax and where its webhooks may go) before anything is stored."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from leadheat.cli.options import JsonOption, instant
from leadheat.cli.output import emit, listing, out
from leadheat.cli.reps import adopt_unowned
from leadheat.cli.state import ACTOR, open_leadheat
from leadheat.delivery.egress import Egress
from leadheat.playbook import fallback_notes, parse_playbook, signal_name_notes
from leadheat.service import LeadheatError
from leadheat.times import isoformat

playbook_app = typer.Typer(help="Read, check and apply the team's playbook.", no_args_is_help=True)


@playbook_app.command("show")
def playbook_show(as_json: JsonOption = False) -> None:
    """Print the current playbook (TOML), or its settings as JSON."""
    lh = open_leadheat()
    version, book = lh.playbook()
    if as_json:
        emit({"version": version, "playbook": book.summary()})
    else:
        # raw, unwrapped: `playbook show > mine.toml` must give a loadable file
        sys.stdout.write(f"# playbook version {version}\n{lh.playbook_source()}")


@playbook_app.command("check")
def playbook_check(file: Path) -> None:
    """Validate a playbook file; errors name the key and the line."""
    source = _read(file)
    Egress.from_environment().check_playbook(parse_playbook(source, str(file)), source, str(file))
    out.print(f"{file}: ok")
    _notes(source)


@playbook_app.command("apply")
def playbook_apply(file: Path) -> None:
    """Make FILE the next playbook version; every lead is re-scored by it."""
    source = _read(file)
    book = parse_playbook(source, str(file))
    egress = Egress.from_environment()
    egress.check_playbook(book, source, str(file))
    lh = open_leadheat()
    version = lh.apply_playbook(source, actor=ACTOR, egress=egress)
    out.print(f"playbook version {version} applied; all leads re-scored")
    _notes(source)
    adopt_unowned(lh)


def _notes(source: str) -> None:
    """Say which left-out sections fall back to the built-in defaults, and what that drops."""
    for note in [*signal_name_notes(source), *fallback_notes(source)]:
        out.print(f"note: {note}", highlight=False, soft_wrap=True)


@playbook_app.command("history")
def playbook_history(as_json: JsonOption = False) -> None:
    """Every playbook version, oldest first."""
    rows = open_leadheat().playbook_history()
    data: list[dict[str, Any]] = [
        {"version": v, "name": n, "applied_at": isoformat(a), "sha256": h} for v, n, a, h in rows
    ]
    listing(
        data,
        as_json,
        ("version", "name", "applied at", "sha256"),
        lambda item: (
            str(item["version"]),
            item["name"],
            item["applied_at"],
            item["sha256"][:12],
        ),
    )


def _read(file: Path) -> str:
    try:
        return file.read_text("utf-8")
    except FileNotFoundError:
        raise LeadheatError(f"{file}: no such file") from None
    except UnicodeDecodeError as error:
        raise LeadheatError(f"{file}: not valid UTF-8 at byte {error.start}") from None


@playbook_app.command("suggest")
def playbook_suggest(
    out_file: Annotated[
        Path, typer.Option("--out", dir_okay=False, help="Write the suggested playbook here.")
    ],
    horizon: Annotated[
        str,
        typer.Option("--horizon", help="Judge heat by conversion within this long (backtest)."),
    ] = "30d",
    signals: Annotated[
        list[str] | None,
        typer.Option(
            "--signals",
            help="Fit only these signal types (repeatable or comma-separated); the others "
            "keep their values.",
        ),
    ] = None,
    converts_on: Annotated[
        str | None,
        typer.Option(
            "--converts-on",
            help="Learn from an event type (e.g. purchase: what predicts the next one?) "
            "instead of won outcomes.",
        ),
    ] = None,
    holdout: Annotated[
        float,
        typer.Option(
            "--holdout",
            min=0,
            max=0.9,
            help="Share of the latest conversions kept out of the fit to forecast the gain "
            "(0: fit on everything, no forecast).",
        ),
    ] = 0.3,
    resamples: Annotated[
        int, typer.Option("--resamples", min=0, help="Bootstrap refits for the intervals.")
    ] = 50,
    until: Annotated[
        str | None,
        typer.Option(
            "--until", help="As of this time: only what was known by then (default: now)."
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Learn each signal's points and half-life from the stored history and write the
    current playbook with them (review it, `backtest` it, then `playbook apply` it)."""
    from leadheat.analytics.proposal import from_store
    from leadheat.times import parse_duration

    wanted = None
    if signals:
        wanted = [part.strip() for value in signals for part in value.split(",") if part.strip()]
    result = from_store(
        open_leadheat(),
        horizon=parse_duration(horizon),
        signals=wanted,
        converts_on=converts_on,
        holdout=holdout,
        resamples=resamples,
        until=instant(until),
    )
    Egress.from_environment().check_playbook(
        parse_playbook(result.source, str(out_file)), result.source, str(out_file)
    )
    staging = out_file.with_name(f".{out_file.name}.tmp")
    staging.write_text(result.source, "utf-8")
    staging.replace(out_file)
    data = result.as_json()
    data["out"] = str(out_file)
    if as_json:
        emit(data)
        return
    _print_suggestion(data)
    out.print(f"suggested playbook written to {out_file}; apply it with `leadheat playbook apply`")


def _print_suggestion(data: dict[str, Any]) -> None:
    from rich.table import Table

    engaged = data["engaged_days"]
    out.print(
        f"learned from {data['conversions']:,} conversions ({data['converts_on']}), "
        f"{data['resamples']} resamples"
        + ("" if engaged is None else f"; a lead counts as engaged {engaged:.3g} days after")
        + ("" if engaged is None else " its latest activity")
    )
    table = Table("signal", "leads", "points", "95%", "half-life", "95%", "was", "")
    for s in data["signals"]:
        low, high = s["points_interval"]
        h_low, h_high = s["half_life_days_interval"]
        table.add_row(
            s["type"],
            f"{s['leads']:,}",
            f"{s['points']:g}",
            f"{low:.3g}–{high:.3g}" if s["status"] == "fitted" else "",
            s["half_life"],
            f"{h_low:.3g}–{h_high:.3g}d" if s["status"] == "fitted" else "",
            f"{s['was_points']:g} / {s['was_half_life']}",
            "" if s["status"] == "fitted" else "kept: too little data",
        )
    out.print(table)
    shares = data["shares"]
    out.print(
        f"share of time hot / warm: current {shares['current']['hot']:.1%} / "
        f"{shares['current']['warm']:.1%}, suggested {shares['suggested']['hot']:.1%} / "
        f"{shares['suggested']['warm']:.1%}"
    )
    held = data["held_out"]
    if held is not None:

        def auc(side: dict[str, Any]) -> str:
            low, high = side["interval"]
            if side["roc_auc"] is None:
                return "–"
            return f"{side['roc_auc']:.3f} ({low:.3f}–{high:.3f})"

        gain = held["gain"]
        out.print(
            f"forecast: fitted before {held['from']}, judged from then to {held['until']} "
            f"({held['rows']:,} snapshots, "
            f"{held['converted']:,} converted within {data['horizon']}): ROC-AUC of heat "
            f"current {auc(held['current'])}, suggested {auc(held['suggested'])}, gain "
            f"{auc(gain)}"
        )
    found = data["backtest"]
    if found is not None:
        out.print(
            f"backtest of the later {found['leads']:,} leads ({found['censored']:,} censored), "
            f"won within {found['horizon']} of the first touch"
        )
        for side in ("current", "candidate"):
            judged = found[side]
            value = judged["roc_auc"]
            hot = judged["converters_hot"]
            bands = ", ".join(
                f"{r['bucket']} {r['won']}/{r['leads']}"
                + (
                    f" ({r['rate']:.1%}, 95% {r['low']:.1%}–{r['high']:.1%})"
                    if r["rate"] is not None
                    else ""
                )
                for r in judged["by_temperature"]
            )
            out.print(
                f"  {side}: ROC-AUC {'–' if value is None else f'{value:.3f}'}; converters "
                f"hot {hot['won']:,} of {hot['leads']:,}; {bands}"
            )
    out.print(data["diff"] or "no change", highlight=False, markup=False)
