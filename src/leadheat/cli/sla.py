"""``leadheat sla``: the clocks speed to lead starts when a lead turns hot, and how each rep
keeps them."""

from __future__ import annotations

from typing import Annotated

import typer

from leadheat.cli.options import JsonOption, instant
from leadheat.cli.output import listing
from leadheat.cli.state import open_leadheat
from leadheat.views import clock_json, timing_json


def _seconds(value: float | None) -> str:
    return "" if value is None else f"{value:.0f}s"


def sla(
    lead: Annotated[str | None, typer.Option("--lead", help="Only this lead's clocks.")] = None,
    owner: Annotated[str | None, typer.Option("--owner", help="Only this rep's clocks.")] = None,
    open_only: Annotated[
        bool, typer.Option("--open", help="Only clocks still running (no touch yet).")
    ] = False,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most N, newest first.")] = 50,
    by_rep: Annotated[
        bool, typer.Option("--by-rep", help="Per rep: met, missed, breached, median response.")
    ] = False,
    since: Annotated[
        str | None, typer.Option("--since", help="With --by-rep: clocks started since then.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """SLA clocks: trigger, owner, deadline, time to first touch, met or breached."""
    lh = open_leadheat()
    now = lh.clock()
    if by_rep:
        listing(
            [timing_json(t) for t in lh.sla_by_rep(instant(since))],
            as_json,
            ("owner", "clocks", "met", "missed", "breached", "running", "median response"),
            lambda item: (
                item["owner"] or "(nobody)",
                *(str(item[k]) for k in ("clocks", "met", "missed", "breached", "running")),
                _seconds(item["median_response_seconds"]),
            ),
        )
        return
    clocks = lh.sla_clocks(lead=lead, owner=owner, open_only=open_only, limit=limit)
    names = lh.lead_names([clock.lead_id for clock in clocks])
    data = []
    for clock in clocks:  # the lead as people know it, beside the id scripts keep
        key, name = names.get(clock.lead_id, (f"id:{clock.lead_id}", None))
        data.append({**clock_json(clock, now), "lead_key": key, "lead_name": name})
    listing(
        data,
        as_json,
        ("lead", "name", "trigger", "owner", "started", "deadline", "response", "state"),
        lambda item: (
            item["lead_key"],
            item["lead_name"] or "",
            item["trigger"],
            item["owner"] or "(nobody)",
            item["started_at"],
            item["deadline"],
            _seconds(item["response_seconds"]),
            item["state"],
        ),
    )
