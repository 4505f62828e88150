"""``leadheat accounts`` and ``leadheat account``: which companies are hot as a whole, who
at each is engaged, and who owns them."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from leadheat.accounts import account, accounts, row_json, set_owner, view_json
from leadheat.cli.options import AtOption, JsonOption, instant
from leadheat.cli.output import emit, out
from leadheat.cli.state import ACTOR, open_leadheat
from leadheat.service import LeadheatError


def accounts_command(
    temperature: Annotated[
        str | None, typer.Option(help="Only accounts of this temperature: hot, warm or cold.")
    ] = None,
    owner: Annotated[str | None, typer.Option(help="Only the accounts this rep owns.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most N accounts.")] = 50,
    at: AtOption = None,
    as_json: JsonOption = False,
) -> None:
    """Accounts hottest first: the heat of each company's whole buying group."""
    if temperature is not None and temperature not in ("hot", "warm", "cold"):
        raise LeadheatError(f"--temperature {temperature!r} must be hot, warm or cold")
    rows = accounts(
        open_leadheat(), temperature=temperature, owner=owner, at=instant(at), limit=limit
    )
    if as_json:
        emit([row_json(row) for row in rows])
        return
    table = Table(title=f"{len(rows)} accounts", title_justify="left")
    for name in ("account", "name", "heat", "temp", "hot until", "members", "owner", "roles"):
        table.add_column(name, justify="right" if name in ("heat", "members") else "left")
    for row in rows:
        data = row_json(row)
        table.add_row(
            row.key,
            row.name or "",
            f"{row.heat:.1f}",
            row.temperature.value,
            data["hot_until"] or "",
            str(row.members),
            row.owner or "",
            ", ".join(row.roles),
        )
    out.print(table)


def account_command(
    reference: Annotated[str, typer.Argument(metavar="ACCOUNT", help="Its key or domain.")],
    at: AtOption = None,
    owner: Annotated[
        str | None, typer.Option("--owner", help="Make this rep the account's owner.")
    ] = None,
    no_owner: Annotated[
        bool, typer.Option("--no-owner", help="Leave the account without an owner.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """One account: its heat, when it cools, its members with their heat, coverage and the
    evidence anyone there stated (``--owner REP`` sets who works it)."""
    lh = open_leadheat()
    if owner is not None and no_owner:
        raise LeadheatError("give --owner REP or --no-owner, not both")
    if owner is not None or no_owner:
        before = set_owner(lh, reference, None if no_owner else owner, actor=ACTOR)
        if not as_json:
            out.print(f"{reference}: owner {before or 'nobody'} -> {owner or 'nobody'}")
    data = view_json(account(lh, reference, instant(at)))
    if as_json:
        emit(data)
        return
    out.print(f"{data['account']}" + (f"  {data['name']}" if data["name"] else ""), style="bold")
    out.print(
        f"{data['temperature'].upper()}  heat {data['heat']:.2f}  owner {data['owner'] or '-'}"
    )
    if data["hot_until"]:
        out.print(f"hot until {data['hot_until']}")
    if data["warm_until"]:
        out.print(f"warm until {data['warm_until']}")
    table = Table("lead", "title", "role", "heat", "engaged", title="members", title_justify="left")
    for member in data["members"]:
        table.add_row(
            member["lead"],
            member["title"] or "",
            member["role"] or "",
            f"{member['heat']:.2f}",
            "yes" if member["engaged"] else "",
        )
    out.print(table)
    coverage = data["coverage"]
    out.print(f"engaged recently: {coverage['engaged']} of {coverage['members']}")
    for kind, status in data["evidence"].items():
        value = f" {status['value']}" if status["value"] else ""
        out.print(f"  {kind}: {status['state']}{value}")
