"""Accounts for the faces (CLI, API, dashboard): lists, one account, its owner, and the
JSON every face shows them as (one shape, so the CLI's ``--json`` and the API agree).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from leadheat.core import Core
from leadheat.errors import LeadheatError, UnknownAccountError
from leadheat.scoring.accounts import AccountTemperature
from leadheat.store import audit
from leadheat.store.account_views import (
    AccountRow,
    AccountView,
    account_of_lead,
    account_view,
    list_accounts,
    resolve,
)
from leadheat.store.audit import DEFAULT_ACTOR, AuditAction
from leadheat.store.driver import select_all
from leadheat.times import isoformat

TEMPERATURES = tuple(t.value for t in AccountTemperature)


def temperature_of(value: AccountTemperature | str | None) -> AccountTemperature | None:
    if value is None or isinstance(value, AccountTemperature):
        return value
    try:
        return AccountTemperature(value.strip().lower())
    except ValueError:
        raise LeadheatError(
            f"temperature {value!r} must be one of {', '.join(TEMPERATURES)}"
        ) from None


def accounts(
    core: Core,
    *,
    temperature: AccountTemperature | str | None = None,
    owner: str | None = None,
    at: datetime | None = None,
    limit: int | None = 50,
) -> list[AccountRow]:
    """Accounts hottest first, as of ``at`` (default now)."""
    _, book = core.playbook()
    now = at or core.clock()
    with core.engine.connect() as connection:
        return list_accounts(
            connection,
            book,
            now,
            temperature=temperature_of(temperature),
            owner=owner,
            limit=limit,
        )


def account(core: Core, reference: str, at: datetime | None = None) -> AccountView:
    """One account (by key, domain or ``id:N``) as of ``at``."""
    _, book = core.playbook()
    now = at or core.clock()
    with core.engine.connect() as connection:
        found = resolve(connection, reference)
        if found is None:
            raise UnknownAccountError(f"no account known as {reference!r}")
        return account_view(connection, book, found, now)


def lead_account(core: Core, lead_id: int) -> tuple[int, str] | None:
    """The account a lead belongs to: ``(id, key)``."""
    with core.engine.connect() as connection:
        return account_of_lead(connection, lead_id)


def set_owner(
    core: Core, reference: str, rep: str | None, *, actor: str = DEFAULT_ACTOR
) -> str | None:
    """Make ``rep`` (a known rep) the owner of the account, or nobody with ``None``; audited
    from the old owner to the new. Returns the owner before."""
    now = core.clock()

    def work(connection: Any) -> str | None:
        found = resolve(connection, reference)
        if found is None:
            raise UnknownAccountError(f"no account known as {reference!r}")
        email = None
        if rep is not None:
            known = select_all(
                connection, "SELECT email FROM reps WHERE LOWER(email) = ?", rep.strip().casefold()
            )
            if not known:
                raise LeadheatError(
                    f"no rep {rep!r}: add them first with `leadheat reps add {rep}`"
                )
            email = str(known[0][0])
        ((before, key),) = select_all(
            connection, "SELECT owner, key FROM accounts WHERE id = ?", found
        )
        if before != email:
            connection.exec_driver_sql(
                "UPDATE accounts SET owner = ?, updated_at = ? WHERE id = ?"
                if connection.dialect.paramstyle == "qmark"
                else "UPDATE accounts SET owner = %s, updated_at = %s WHERE id = %s",
                (email, int(now.timestamp() * 1_000_000), found),
            )
            audit.record(
                connection,
                now,
                actor,
                AuditAction.ACCOUNT_OWNER,
                f"account:{key}",
                {"from": before, "to": email},
            )
        return None if before is None else str(before)

    return core.write(work)


# -- JSON ----------------------------------------------------------------------------------


def _at(value: datetime | None) -> str | None:
    return None if value is None else isoformat(value)


def row_json(row: AccountRow) -> dict[str, Any]:
    """An account in a list: ``account``, ``heat``, ``temperature``, ``hot_until``,
    ``members`` (a count), ``owner`` and ``roles``."""
    return {
        "account": row.key,
        "name": row.name,
        "domain": row.domain,
        "heat": row.heat,
        "temperature": row.temperature.value,
        "hot_until": _at(row.hot_until),
        "warm_until": _at(row.warm_until),
        "members": row.members,
        "owner": row.owner,
        "roles": list(row.roles),
    }


def view_json(view: AccountView) -> dict[str, Any]:
    """One account: its row's keys, ``members`` as a list (each with ``lead`` and its
    ``heat``), ``coverage`` and ``evidence``."""
    row = view.row
    return {
        "account": row.key,
        "name": row.name,
        "domain": row.domain,
        "owner": row.owner,
        "at": isoformat(view.at),
        "heat": row.heat,
        "temperature": row.temperature.value,
        "hot_until": _at(row.hot_until),
        "warm_until": _at(row.warm_until),
        "roles": list(row.roles),
        "traits": view.traits,
        "members": [
            {
                "lead": member.email or f"id:{member.lead_id}",
                "id": member.lead_id,
                "name": member.name,
                "title": member.title,
                "role": member.role,
                "heat": member.heat,
                "last_engaged_at": _at(member.last_engaged_at),
                "engaged": member.engaged,
            }
            for member in view.members
        ],
        "coverage": view.coverage,
        "evidence": {
            kind: {
                **status,
                "stated_at": _at(status["stated_at"]),
                "fresh_until": _at(status["fresh_until"]),
            }
            for kind, status in view.evidence.items()
        },
        "stated": [{**item, "stated_at": _at(item["stated_at"])} for item in view.stated],
    }
