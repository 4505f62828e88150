"""``leadheat deliveries``: the notifications speed to lead sends (alerts, webhooks, mails),
what became of each, and sending a failed one again."""

from __future__ import annotations

from typing import Annotated

import typer

from leadheat.cli.options import JsonOption
from leadheat.cli.output import listing, out
from leadheat.cli.state import ACTOR, open_leadheat
from leadheat.views import delivery_json

deliveries_app = typer.Typer(
    help="Notifications: what was sent, what waits, what failed; retry; the signing secret.",
    invoke_without_command=True,
)


@deliveries_app.callback()
def deliveries(
    ctx: typer.Context,
    status: Annotated[
        str | None, typer.Option("--status", help="pending, delivered or failed.")
    ] = None,
    lead: Annotated[str | None, typer.Option("--lead", help="Only this lead's.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most N, newest first.")] = 50,
    as_json: JsonOption = False,
) -> None:
    """List notifications, newest first: channel, trigger, status, attempts, last error."""
    if ctx.invoked_subcommand is not None:
        return
    found = open_leadheat().deliveries(status=status, lead=lead, limit=limit)
    listing(
        [delivery_json(item) for item in found],
        as_json,
        ("id", "created", "trigger", "channel", "target", "lead", "status", "tries", "error"),
        lambda item: (
            str(item["id"]),
            item["created_at"],
            item["trigger"],
            item["channel"],
            item["target"],
            item["lead"]["email"] or str(item["lead"]["id"]),
            item["status"],
            str(item["attempts"]),
            (item["last_error"] or "")[:60],
        ),
    )


@deliveries_app.command("retry")
def deliveries_retry(delivery_id: Annotated[int, typer.Argument(metavar="ID")]) -> None:
    """Send a failed notification again (the worker picks it up at once)."""
    open_leadheat().retry_delivery(delivery_id, actor=ACTOR)
    out.print(f"notification {delivery_id} will be sent again")


@deliveries_app.command("secret")
def deliveries_secret() -> None:
    """Print the database's webhook signing secret (when LEADHEAT_WEBHOOK_SECRET is unset)."""
    out.print(open_leadheat().signing_secret())
