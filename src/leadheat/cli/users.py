"""``leadheat users``: people who sign in to the dashboard (API keys stay for machines)."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from leadheat.cli.output import err, out
from leadheat.cli.state import ACTOR, open_leadheat
from leadheat.store.users import ROLES, list_users
from leadheat.web.auth import add_user

users_app = typer.Typer(
    help="Dashboard users (reps and managers): add, list.", no_args_is_help=True
)
PASSWORD_ENV = "LEADHEAT_PASSWORD"


@users_app.command("add")
def users_add(
    email: str,
    role: Annotated[
        str, typer.Option("--role", help="rep, or manager (managers may also apply playbooks).")
    ] = "rep",
) -> None:
    """Add a dashboard user, or reset one's role and password (which signs them out).

    The password comes from $LEADHEAT_PASSWORD, else from a prompt; it is never an argument,
    which would leave it in the shell's history and the process list.
    """
    if role not in ROLES:
        err.print(f"error: --role {role!r} must be one of {', '.join(ROLES)}")
        raise typer.Exit(1)
    password = os.environ.get(PASSWORD_ENV) or typer.prompt(
        "Password", hide_input=True, confirmation_prompt=True
    )
    try:
        account, created = add_user(open_leadheat(), email, role, password, actor=ACTOR)
    except ValueError as error:  # PasswordError is one
        err.print(f"error: {error}")
        raise typer.Exit(1) from None
    out.print(f"{'added' if created else 'updated'} {account.role} {account.email}")


@users_app.command("list")
def users_list() -> None:
    """Every dashboard user and their role."""
    with open_leadheat().engine.connect() as connection:
        for account in list_users(connection):
            typer.echo(f"{account.email}\t{account.role}")
