"""``leadheat export``, ``erase`` and ``audit``: a person's data given back or removed for
good, and the log of who changed what."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from leadheat.cli.options import JsonOption
from leadheat.cli.output import err, listing, out
from leadheat.cli.state import ACTOR, open_leadheat
from leadheat.service import LeadheatError
from leadheat.views import audit_json


def export_lead(
    lead: str,
    out_file: Annotated[
        Path | None,
        typer.Option(
            "--out", help="Write the JSON to FILE (created readable by its owner only), not stdout."
        ),
    ] = None,
) -> None:
    """Everything stored about a person, as JSON: to answer a request for their data."""
    data = open_leadheat().export(lead, actor=ACTOR)
    text = json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n"
    if out_file is None:
        sys.stdout.write(text)
        return
    descriptor = os.open(out_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with open(descriptor, "w", encoding="utf-8") as file:
        file.write(text)
    rows = sum(len(found) for found in data["tables"].values())
    err.print(f"wrote {rows} rows about lead {data['lead']} to {out_file}")


def erase(
    lead: str,
    yes: Annotated[
        bool, typer.Option("--yes", help="Erase without asking (needed when not at a terminal).")
    ] = False,
) -> None:
    """Remove a person and everything about them, for good (right to erasure)."""
    if not yes:
        if not sys.stdin.isatty():
            raise LeadheatError(
                f"erasing {lead!r} cannot be undone: add --yes to confirm (no terminal to ask)"
            )
        typer.confirm(
            f"Erase {lead} and everything stored about them? This cannot be undone", abort=True
        )
    erased = open_leadheat().erase(lead, actor=ACTOR)
    removed = ", ".join(f"{table} {count}" for table, count in erased.removed.items() if count)
    out.print(f"erased lead {erased.lead_id}: {removed}")


def audit_log(
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most N, newest first.")] = 50,
    action: Annotated[
        str | None, typer.Option("--action", help="Only this action, e.g. lead.erase.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Who changed what, and when: playbooks, outcomes, owners, keys, reps, erasures."""
    listing(
        [audit_json(entry) for entry in open_leadheat().audit_log(limit=limit, action=action)],
        as_json,
        ("at", "actor", "action", "subject", "detail"),
        lambda item: (
            item["at"],
            item["actor"],
            item["action"],
            item["subject"],
            json.dumps(item["detail"], separators=(", ", ": ")),
        ),
    )
