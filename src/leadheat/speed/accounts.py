"""Speed to lead for accounts: an account turning hot (``account_hot``) is announced once,
to its owner (to the owner of its hottest member when nobody owns the account: owning an
account is the team's decision, ``leadheat account ACCOUNT --owner REP``), with an SLA
clock on the member to call first; and a lead of an owned account is its owner's before
any round robin.

An account's heat only rises when something is written, so comparing its ``hot_until``
just before the write (kept by :mod:`leadheat.store.accounts`) with the one after finds each
account that turned hot, in the transaction that made it so: once.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import Connection, select

from leadheat.playbook import Playbook
from leadheat.speed.calendar import deadline
from leadheat.store.account_views import account_view
from leadheat.store.clocks import start_clock
from leadheat.store.driver import select_in
from leadheat.store.models import Lead
from leadheat.store.reps import Rep
from leadheat.times import isoformat, to_micros


class Dispatcher(Protocol):
    """What :func:`announce` uses of :class:`leadheat.speed.dispatch.Dispatcher`."""

    connection: Connection
    book: Playbook
    now: datetime

    def _rep(self, email: str | None) -> Rep | None: ...
    def reps(self) -> list[Rep]: ...
    def open_hot(self) -> Counter[str]: ...
    def _queue(self, trigger: str, lead_id: int, clock_id: int, payload: dict[str, Any]) -> int: ...


def account_owners(connection: Connection, lead_ids: Sequence[int]) -> dict[int, tuple[str, str]]:
    """``{lead: (account key, owner)}`` for those of the leads whose account has an owner, in
    one query per 500 leads: a reaction asks for every new lead of a write at once."""
    rows = select_in(
        connection,
        "SELECT m.lead_id, a.key, a.owner FROM account_members m "
        "JOIN accounts a ON a.id = m.account_id WHERE a.owner IS NOT NULL AND m.lead_id IN",
        sorted(set(lead_ids)),
    )
    return {int(lead): (str(key), str(owner)) for lead, key, owner in rows}


def turned_hot(
    connection: Connection, before: Mapping[int, datetime | None], now: datetime
) -> list[int]:
    """The accounts that are hot now and were not before the write."""
    if not before:
        return []
    ids = sorted(before)
    marks = ", ".join("?" * len(ids))
    sql = f"SELECT id, hot_until FROM accounts WHERE id IN ({marks})"
    if connection.dialect.paramstyle != "qmark":
        sql = sql.replace("?", "%s")
    found = []
    for account, hot in connection.exec_driver_sql(sql, tuple(ids)).all():
        was = before.get(account)
        was_hot = was is not None and was > now
        if hot is not None and hot > to_micros(now) and not was_hot:
            found.append(int(account))
    return found


def announce(dispatcher: Dispatcher, account_id: int) -> int:
    """Start the account's clock and queue its ``account_hot`` alerts; returns how many."""
    connection, book, now = dispatcher.connection, dispatcher.book, dispatcher.now
    speed = book.speed
    rule = speed.trigger("account_hot")
    if not rule.enabled:
        return 0
    view = account_view(connection, book, account_id, now)
    if not view.members:
        return 0
    first = view.members[0]  # the hottest member: the one to call first
    lead_row = connection.execute(select(Lead).where(Lead.id == first.lead_id)).mappings().one()
    owner_email = view.row.owner
    owner = dispatcher._rep(owner_email)
    assignment = "the account's owner"
    if owner_email is None and dispatcher._rep(lead_row["owner"]) is not None:
        owner_email = lead_row["owner"]  # nobody owns the account: whoever works that lead
        owner = dispatcher._rep(owner_email)
        assignment = "nobody owns the account: the owner of its hottest member"
    elif owner_email is None:
        assignment = "nobody owns the account or its hottest member"
    team_name = owner.team if owner is not None else speed.default_team
    team = speed.team(team_name)
    due, _ = deadline(rule, team, now)
    clock_id, due = start_clock(
        connection,
        first.lead_id,
        rule.name,
        owner_email,
        team_name,
        rule.business_hours,
        now,
        due,
    )
    engaged = [m for m in view.members if m.engaged]
    payload: dict[str, Any] = {
        "trigger": rule.name,
        "also": [],
        "at": isoformat(now),
        "account": {
            "account": view.row.key,
            "name": view.row.name,
            "domain": view.row.domain,
            "heat": round(view.row.heat, 3),
            "temperature": view.row.temperature.value,
            "hot_until": isoformat(view.row.hot_until) if view.row.hot_until else None,
            "members": len(view.members),
            "engaged": len(engaged),
            "roles": list(view.row.roles),
        },
        "lead": {name: lead_row[name] for name in ("id", "email", "name", "title", "company")}
        | {"heat": round(first.heat, 3)},
        "owner": None
        if owner_email is None
        else {"email": owner_email, "name": owner.name if owner is not None else None},
        "assignment": assignment,
        "manager": team.manager,
        "team": team_name,
        "why": (
            f"account heat {view.row.heat:.3g} >= {book.accounts.hot_heat:g}: "
            + ", ".join(
                f"{m.email or m.lead_id} {m.heat:.3g}" for m in (engaged or view.members)[:5]
            )
        ),
        "action": rule.action,
        "sla": rule.sla,
        "deadline": isoformat(due),
        "business_hours": rule.business_hours,
    }
    return dispatcher._queue(rule.name, first.lead_id, clock_id, payload)
