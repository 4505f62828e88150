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
    listing(
        [clock_json(clock, now) for clock in clocks],
        as_json,
        ("lead", "trigger", "owner", "started", "deadline", "response", "state"),
        lambda item: (
            str(item["lead"]),
            item["trigger"],
            item["owner"] or "(nobody)",
            item["started_at"],
            item["deadline"],
            _seconds(item["response_seconds"]),
            item["state"],
        ),
    )
