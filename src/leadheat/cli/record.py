"""``leadheat track``, ``touch``, ``outcome`` and ``evidence``: record one thing about a
lead, by hand or from a script."""

from __future__ import annotations

from typing import Annotated

import typer

from leadheat.cli.options import AtOption, instant
from leadheat.cli.output import out
from leadheat.cli.state import ACTOR, open_leadheat
from leadheat.service import LeadheatError


def track(
    lead: str,
    event_type: Annotated[str, typer.Argument(metavar="TYPE")],
    at: AtOption = None,
    prop: Annotated[
        list[str] | None, typer.Option("--prop", help="An event property k=v (repeatable).")
    ] = None,
    event_id: Annotated[
        str | None, typer.Option("--id", help="Event id (for idempotency).")
    ] = None,
) -> None:
    """Record an event for a lead (created if unknown)."""
    properties = {}
    for item in prop or []:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise LeadheatError(f"--prop {item!r} must look like name=value")
        properties[name] = value
    report = open_leadheat().track(lead, event_type, instant(at), properties or None, event_id)
    out.print("stored" if report.stored else "duplicate: already stored")


def touch(
    lead: str,
    kind: str,
    at: AtOption = None,
    direction: Annotated[str, typer.Option(help="inbound or outbound")] = "outbound",
    result: Annotated[str | None, typer.Option(help="e.g. connected, voicemail")] = None,
    rep: Annotated[str | None, typer.Option(help="Who made the contact.")] = None,
    note: Annotated[str | None, typer.Option(help="Free text.")] = None,
) -> None:
    """Record a contact by the team (call, email, sms, meeting)."""
    open_leadheat().touch(
        lead, kind, instant(at), direction=direction, result=result, rep=rep, note=note
    )
    out.print("touch recorded")


def outcome(
    lead: str,
    result: Annotated[str, typer.Argument(metavar="won|lost|disqualified")],
    at: AtOption = None,
    reason: Annotated[str | None, typer.Option(help="Why, in a few words.")] = None,
) -> None:
    """Record the outcome of a lead."""
    open_leadheat().outcome(lead, result, instant(at), reason, actor=ACTOR)
    out.print(f"outcome {result} recorded")


def evidence(
    lead: str,
    kind: Annotated[str, typer.Argument(metavar="need|budget|timeline|authority")],
    value: str,
    at: AtOption = None,
) -> None:
    """Record BANT evidence stated by the lead at a time (default now)."""
    open_leadheat().evidence(lead, kind, value, instant(at))
    out.print(f"{kind} evidence recorded")
