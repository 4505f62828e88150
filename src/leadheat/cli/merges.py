"""``leadheat merge`` and ``leadheat merges``: two leads that are one person. A person merges
them by hand, or confirms (or dismisses) a merge that public collection suggested."""

from __future__ import annotations

from typing import Annotated

import typer

from leadheat.cli.options import JsonOption
from leadheat.cli.output import listing, out
from leadheat.cli.state import ACTOR, open_leadheat
from leadheat.views import suggestion_json

merges_app = typer.Typer(
    help="Merges public collection suggested (two known leads it named as one person): list, "
    "confirm, dismiss.",
    invoke_without_command=True,
)


def merge(keep: str, absorb: str) -> None:
    """Merge lead ABSORB into KEEP: one person, one history."""
    open_leadheat().merge(keep, absorb, actor=ACTOR)
    out.print(f"{absorb} merged into {keep}")


@merges_app.callback()
def merges(
    ctx: typer.Context,
    suggested: Annotated[
        bool, typer.Option("--suggested", help="Only the open ones: those waiting for a person.")
    ] = False,
    lead: Annotated[str | None, typer.Option("--lead", help="Only those naming this lead.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most N, newest first.")] = 50,
    as_json: JsonOption = False,
) -> None:
    """List suggested merges, newest first: the lead that would go, the one it would join,
    why, who suggested it, and what became of it."""
    if ctx.invoked_subcommand is not None:
        return
    found = open_leadheat().suggested_merges(
        status="open" if suggested else None, lead=lead, limit=limit
    )
    listing(
        [suggestion_json(item) for item in found],
        as_json,
        ("id", "created", "lead", "into", "status", "source", "reason"),
        lambda item: (
            str(item["id"]),
            item["created_at"],
            str(item["lead_id"]),
            str(item["into_lead_id"]),
            item["status"] + (f" by {item['resolved_by']}" if item["resolved_by"] else ""),
            item["source"],
            item["reason"],
        ),
    )


@merges_app.command("confirm")
def merges_confirm(suggestion_id: Annotated[int, typer.Argument(metavar="ID")]) -> None:
    """Merge the suggestion's lead into the other, as suggested (audited)."""
    kept = open_leadheat().confirm_merge(suggestion_id, actor=ACTOR)
    out.print(f"suggested merge {suggestion_id} confirmed: the leads are one, lead {kept}")


@merges_app.command("dismiss")
def merges_dismiss(suggestion_id: Annotated[int, typer.Argument(metavar="ID")]) -> None:
    """Close the suggestion without merging: two people after all (audited)."""
    open_leadheat().dismiss_merge(suggestion_id, actor=ACTOR)
    out.print(f"suggested merge {suggestion_id} dismissed")
