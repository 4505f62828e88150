"""``leadheat reps``: the sales reps who own leads, and who round robin gives new ones to;
``leadheat assign``: a lead given to one of them by hand."""

from __future__ import annotations

from typing import Annotated

import typer

from leadheat.cli.options import JsonOption
from leadheat.cli.output import listing, out
from leadheat.cli.state import ACTOR, open_leadheat
from leadheat.service import Leadheat
from leadheat.times import isoformat
from leadheat.views import rep_json

reps_app = typer.Typer(
    help="Sales reps who own leads: add, list, pause, resume.", no_args_is_help=True
)


@reps_app.command("add")
def reps_add(
    email: str,
    name: Annotated[str | None, typer.Option("--name", help="Shown in alerts.")] = None,
    team: Annotated[
        str | None, typer.Option("--team", help="A team of [speed.teams] (default team if not).")
    ] = None,
    capacity: Annotated[
        int | None, typer.Option("--capacity", min=0, help="Most open hot leads at once.")
    ] = None,
    weight: Annotated[
        float, typer.Option("--weight", min=0.01, help="Round-robin share (2 = twice the leads).")
    ] = 1.0,
) -> None:
    """Add a rep (or update one): they join round robin level with the others."""
    rep = open_leadheat().add_rep(
        email, name=name, team=team, capacity=capacity, weight=weight, actor=ACTOR
    )
    out.print(f"rep {rep.email} in team {rep.team}" + ("" if rep.active else " (paused)"))


@reps_app.command("list")
def reps_list(as_json: JsonOption = False) -> None:
    """Every rep: team, active or paused, capacity, weight, leads assigned, open hot leads."""
    found = open_leadheat().reps()
    listing(
        [rep_json(rep, count) for rep, count in found],
        as_json,
        ("email", "name", "team", "active", "open hot", "capacity", "weight", "assigned"),
        lambda item: (
            item["email"],
            item["name"] or "",
            item["team"],
            "yes" if item["active"] else "paused",
            str(item["open_hot"]),
            "" if item["capacity"] is None else str(item["capacity"]),
            f"{item['weight']:g}",
            str(item["assigned"]),
        ),
    )


@reps_app.command("pause")
def reps_pause(email: str) -> None:
    """Stop giving a rep new leads (holiday, full pipeline); they keep the ones they have."""
    rep = open_leadheat().set_rep_active(email, False, actor=ACTOR)
    out.print(f"paused {rep.email}")


@reps_app.command("resume")
def reps_resume(email: str) -> None:
    """Give a paused rep new leads again."""
    rep = open_leadheat().set_rep_active(email, True, actor=ACTOR)
    out.print(f"resumed {rep.email}")


def assign(lead: str, rep: str) -> None:
    """Make a rep the owner of a lead (owned or not), audited, with the SLA clock a take starts."""
    done = open_leadheat().assign(lead, rep, actor=ACTOR)
    if not done.changed:
        out.print(f"lead {done.lead_id} is {done.rep.email}'s already")
        return
    before = done.previous or "nobody"
    due = "" if done.deadline is None else f"; touch it by {isoformat(done.deadline)}"
    out.print(f"lead {done.lead_id}: {before} -> {done.rep.email}{due}")


SHOWN = 10
"""Leads named one per line after an import or a playbook change; the rest are counted."""


def adopt_unowned(lh: Leadheat) -> None:
    """After a write that fires no trigger (an import, a playbook change): the hot leads it
    left with no owner and no clock get them as the ``hot`` trigger gives them, and the
    command says so, naming each lead and its new owner (or that it waits for "Take it")."""
    done = lh.adopt_unowned()
    if not done.leads:
        return
    names = lh.lead_names([lead_id for lead_id, _ in done.leads])
    waiting = (
        f"; {done.waiting} wait{'s' if done.waiting == 1 else ''} unowned at the top of Hot "
        "now, no rep having room (Take it there, or leadheat assign LEAD REP)"
        if done.waiting
        else ""
    )
    out.print(
        f"hot leads nobody owned: {done.assigned} assigned as speed to lead assigns"
        f"{waiting}; {done.alerts} alert{'' if done.alerts == 1 else 's'} queued",
        highlight=False,
    )
    for lead_id, owner in done.leads[:SHOWN]:
        key = names.get(lead_id, (f"id:{lead_id}", None))[0]
        out.print(f"  {key} -> {owner or 'nobody yet (manager alerted)'}", highlight=False)
    if len(done.leads) > SHOWN:
        out.print(f"  and {len(done.leads) - SHOWN} more", highlight=False)
