"""``leadheat hot``, ``leads`` and ``show``: which leads to call, and why one is as hot as it
is."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from leadheat.cli.options import AtOption, JsonOption, LimitOption, instant
from leadheat.cli.output import emit, out
from leadheat.cli.state import open_leadheat, open_lookup
from leadheat.errors import LeadheatError
from leadheat.scoring.wording import format_number
from leadheat.views import row_json, view_json

if TYPE_CHECKING:
    from leadheat.reading import LeadRow


def _print_rows(rows: Sequence[LeadRow], title: str, did: Mapping[int, str] | None = None) -> None:
    table = Table(title=title, title_justify="left")
    for name in ("lead", "name", "company", "heat", "grade", "temp", "status", "why"):
        table.add_column(name, justify="right" if name == "heat" else "left")
    for row in rows:
        table.add_row(
            row.email or row.external_id or str(row.lead_id),
            row.name or "",
            row.company or "",
            f"{row.heat:.1f}",
            row.grade,
            row.temperature.value,
            row.status,
            (did or {}).get(row.lead_id) or row.reason,
        )
    out.print(table)


def hot(at: AtOption = None, limit: LimitOption = None, as_json: JsonOption = False) -> None:
    """Hot leads, hottest first."""
    lh = open_leadheat()
    rows = lh.hot(instant(at), limit)
    if as_json:
        emit([row_json(r) for r in rows])
    else:  # why: what each did, as Hot now says it (as of --at, the rule it met then)
        did = lh.what_they_did([row.lead_id for row in rows]) if at is None else {}
        _print_rows(rows, f"{len(rows)} hot leads" + (f" at {at}" if at else ""), did)


def leads(
    temperature: Annotated[
        str | None, typer.Option(help="Only leads of this temperature: hot, warm or cold.")
    ] = None,
    at: AtOption = None,
    limit: LimitOption = None,
    order: Annotated[
        str,
        typer.Option(
            "--order",
            help="heat (hottest first), fit, or probability (the model's, highest first).",
        ),
    ] = "heat",
    as_json: JsonOption = False,
) -> None:
    """Leads, hottest first (or best fit, or most likely to convert)."""
    if temperature is not None and temperature not in ("hot", "warm", "cold"):
        raise LeadheatError(f"--temperature {temperature!r} must be hot, warm or cold")
    lh = open_leadheat()
    if order == "heat":
        rows = lh.leads(temperature, instant(at), limit)
    else:
        rows, _ = lh.browse(
            temperature=temperature, order=order, at=instant(at), limit=limit or 1_000_000_000
        )
    if as_json:
        emit([row_json(r) for r in rows])
    else:
        _print_rows(rows, f"{len(rows)} leads")


def show(lead: str, at: AtOption = None, as_json: JsonOption = False) -> None:
    """One lead's score, explained: heat by signal, fit, evidence, when it cools."""
    lookup = open_lookup()
    view = lookup.show(lead, instant(at))
    _, book = lookup.playbook()
    data = view_json(view, book.fit.qualified_at)
    if as_json:
        emit(data)
        return
    who = data["lead"]
    name = " ".join(str(who[k]) for k in ("email", "external_id", "name", "company") if who[k])
    out.print(name, style="bold")
    out.print(
        f"{data['temperature'].upper()} {data['grade']}  heat {data['heat']:.2f}"
        f"  fit {format_number(data['fit'])}  qualified {'yes' if data['qualified'] else 'no'}"
        f"  status {data['status']}"
    )
    out.print(f"why: {data['explanation']['temperature']}")
    if data["hot_until"]:
        out.print(f"hot until {data['hot_until']}")
    if data["warm_until"]:
        out.print(f"warm until {data['warm_until']}")
    if data["hot_from"]:
        out.print(f"hot from {data['hot_from']} (as a negative signal fades)")
    if pulled := data["explanation"]["pulled_down"]:
        out.print(
            "pulled down by "
            + ", ".join(f"{s['type']} {s['heat']:.2f} (last {s['last_at']})" for s in pulled)
        )
    table = Table(
        "signal", "events", "heat now", "last", title="heat by signal", title_justify="left"
    )
    for signal in data["explanation"]["heat"]:
        table.add_row(
            signal["type"], str(signal["events"]), f"{signal['heat']:.2f}", signal["last_at"]
        )
    out.print(table)
    fit = data["explanation"]["fit"]
    for rule in fit["matched"]:
        out.print(f"  + {format_number(rule['points'])}  {rule['rule']}")
    for rule in fit["missed"]:
        out.print(
            f"  . {format_number(rule['points'])}  {rule['rule']}"
            + ("  (missing)" if rule["missing"] else "")
        )
    for rule in fit["disqualified_by"]:
        out.print(f"  x disqualified: {rule}")
    for kind, status in data["evidence"].items():
        out.print(
            f"  {kind}: {status['state']}" + (f" ({status['value']})" if status["value"] else "")
        )
