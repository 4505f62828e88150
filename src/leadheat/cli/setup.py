"""``leadheat init`` and ``leadheat demo``: a database ready to use, empty or with a
synthetic population to try things on."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from leadheat.cli.output import out
from leadheat.cli.state import database_url, open_leadheat
from leadheat.delivery.egress import Egress
from leadheat.playbook import parse_playbook


def init(
    playbook: Annotated[
        Path | None, typer.Option("--playbook", help="Start with this playbook.")
    ] = None,
) -> None:
    """Create the database (or upgrade it) with the default or a given playbook."""
    source = playbook.read_text("utf-8") if playbook is not None else None
    if source is not None:
        book = parse_playbook(source, str(playbook))
        Egress.from_environment().check_playbook(book, source, str(playbook))
    version = open_leadheat().init(source)
    out.print(f"database ready at {database_url()} (playbook version {version})")


def demo(
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives the same leads.")] = 7,
    leads: Annotated[int, typer.Option(min=10, help="How many leads.")] = 400,
) -> None:
    """Load a reproducible, SYNTHETIC demo population (a shoe shop and a SaaS trial funnel)."""
    from leadheat.demo import SYNTHETIC_NOTE, load_demo

    lh = open_leadheat()
    lh.init()
    summary = load_demo(lh, seed=seed, leads=leads)
    out.print(SYNTHETIC_NOTE)
    out.print(
        f"loaded {summary.leads} leads, {summary.events} events, {summary.touches} touches, "
        f"{summary.outcomes} outcomes, {summary.evidence} evidence facts"
    )
