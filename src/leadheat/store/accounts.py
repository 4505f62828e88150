"""Keeping accounts current: which leads belong to which account, and each account's heat
keys, maintained on every write so that a read never sums members.

* An event of a member is a log-add of that event's key into its account's key
  (:func:`add_lead_keys`, called by :func:`leadheat.store.state.fold_batch`).
* A lead joining an account is a log-add of the lead's keys (:func:`place`).
* Anything that takes heat away (a lead leaving or moving, a merge, an erasure, a re-score,
  a new playbook) recomputes the accounts it touched from their members' keys
  (:func:`recompute`): a subtraction of logarithms would lose digits; a fresh sum does not.

Every change of an account's keys also refreshes its ``hot_until`` and ``warm_until`` (the
instants its heat falls to the playbook's thresholds), so "hot accounts now" is a range scan
of ``hot_until``. The ``hot_until`` an account had before the first change in a transaction is
left in the connection's ``info`` (:data:`BEFORE`) for speed to lead's ``account_hot``.

The sum over a lead's key set is in one place, :func:`_member_keys` and
:func:`leadheat.scoring.accounts.fold_account_keys`: whatever keys a lead has (one per
half-life today), the account keeps their sum per kind of key.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import Connection, select

from leadheat.playbook import Accounts, Playbook
from leadheat.scoring.accounts import Placement, fold_account_keys, last_below, placement_of
from leadheat.scoring.heat import HeatKey
from leadheat.scoring.heat_arrays import add_keys
from leadheat.store import audit
from leadheat.store.audit import AuditAction, lead_subject
from leadheat.store.driver import chunked, execute_many, select_all, select_in
from leadheat.store.models import Account
from leadheat.times import from_micros, to_micros

STALE = "leadheat.accounts.stale"
"""``connection.info`` key: accounts a merge took a member from, for the re-score that
follows every merge (:func:`leadheat.store.state.rebuild`) to recompute."""
BEFORE = "leadheat.accounts.hot_until_before"
"""``connection.info`` key: ``{account_id: hot_until µs or None}`` before this transaction."""


def lock_accounts(connection: Connection, account_ids: Iterable[int]) -> None:
    """Row locks of these accounts, in id order (PostgreSQL; SQLite has one writer)."""
    if connection.dialect.name == "sqlite":
        return
    for chunk in chunked(sorted(set(account_ids))):
        connection.execute(
            select(Account.id).where(Account.id.in_(chunk)).order_by(Account.id).with_for_update()
        ).all()


def accounts_of(connection: Connection, lead_ids: Sequence[int]) -> dict[int, int]:
    """``lead → account`` for those of these leads that have one."""
    return dict(
        select_in(
            connection,
            "SELECT lead_id, account_id FROM account_members WHERE lead_id IN",
            sorted(set(lead_ids)),
        )
    )


def _member_keys(
    connection: Connection, lead_ids: Sequence[int]
) -> list[tuple[int, int, int, float]]:
    """``(lead, half_life_us, whole, frac)`` of every key these leads have: the one place
    that says what a lead's key set is."""
    return select_in(
        connection,
        "SELECT lead_id, half_life_us, whole, frac FROM heat_keys WHERE lead_id IN",
        lead_ids,
    )


def _add(
    connection: Connection,
    rows: Sequence[tuple[int, int, int, float]],
) -> set[int]:
    """Log-add ``(account, half_life_us, whole, frac)`` rows into the stored account keys
    (several rows of one account and half-life are summed first). Returns the accounts."""
    by_span: dict[int, list[tuple[int, int, float]]] = defaultdict(list)
    for account, span, whole, frac in rows:
        by_span[span].append((account, whole, frac))
    touched: set[int] = set()
    for span, items in by_span.items():
        accounts, summed_w, summed_f = fold_account_keys(
            np.array([i[0] for i in items], dtype=np.int64),
            np.array([i[1] for i in items], dtype=np.int64),
            np.array([i[2] for i in items], dtype=np.float64),
        )
        stored = {
            row[0]: (row[1], row[2])
            for row in select_in(
                connection,
                "SELECT account_id, whole, frac FROM account_heat_keys "
                "WHERE half_life_us = ? AND account_id IN",
                accounts.tolist(),
                span,
            )
        }
        had = np.array([a in stored for a in accounts.tolist()], dtype=np.bool_)
        if had.any():
            old = [stored[a] for a in accounts[had].tolist()]
            summed_w[had], summed_f[had] = add_keys(
                summed_w[had],
                summed_f[had],
                np.array([o[0] for o in old], dtype=np.int64),
                np.array([o[1] for o in old], dtype=np.float64),
            )
        execute_many(
            connection,
            "INSERT INTO account_heat_keys (account_id, half_life_us, whole, frac) "
            "VALUES (?, ?, ?, ?) ON CONFLICT (account_id, half_life_us) "
            "DO UPDATE SET whole = excluded.whole, frac = excluded.frac",
            list(
                zip(
                    accounts.tolist(),
                    [span] * len(accounts),
                    summed_w.tolist(),
                    summed_f.tolist(),
                    strict=True,
                )
            ),
        )
        touched.update(accounts.tolist())
    return touched


def add_lead_keys(
    connection: Connection,
    rules: Accounts,
    span_us: int,
    lead_ids: npt.NDArray[np.int64],
    whole: npt.NDArray[np.int64],
    frac: npt.NDArray[np.float64],
) -> None:
    """New heat of these leads (one key per lead: the sum of the events just folded in, of
    half-life ``span_us``) added to their accounts' keys: a log-add, O(1) per account."""
    membership = accounts_of(connection, lead_ids.tolist())
    if not membership:
        return
    lock_accounts(connection, membership.values())
    rows = [
        (membership[lead], span_us, w, f)
        for lead, w, f in zip(lead_ids.tolist(), whole.tolist(), frac.tolist(), strict=True)
        if lead in membership
    ]
    refresh(connection, rules, _add(connection, rows))


def recompute(
    connection: Connection, rules: Accounts, account_ids: Iterable[int] | None = None
) -> None:
    """Set these accounts' keys (every account's if ``None``) to the sum of their members'
    keys now, and refresh their forecasts. For the writes that take heat away."""
    if account_ids is None:
        ids = [row[0] for row in select_all(connection, "SELECT id FROM accounts ORDER BY id")]
        connection.exec_driver_sql("DELETE FROM account_heat_keys")
        members = select_all(connection, "SELECT lead_id, account_id FROM account_members")
    else:
        ids = sorted(set(account_ids))
        if not ids:
            return
        lock_accounts(connection, ids)
        execute_many(
            connection, "DELETE FROM account_heat_keys WHERE account_id = ?", [(a,) for a in ids]
        )
        members = select_in(
            connection, "SELECT lead_id, account_id FROM account_members WHERE account_id IN", ids
        )
    account_of = dict(members)
    keys = _member_keys(connection, sorted(account_of))
    _add(connection, [(account_of[lead], span, w, f) for lead, span, w, f in keys])
    refresh(connection, rules, ids)


def stored_keys(
    connection: Connection, account_ids: Sequence[int]
) -> dict[int, dict[timedelta, HeatKey]]:
    """Each account's keys by half-life (accounts without heat are left out)."""
    found: dict[int, dict[timedelta, HeatKey]] = defaultdict(dict)
    for account, span, whole, frac in select_in(
        connection,
        "SELECT account_id, half_life_us, whole, frac FROM account_heat_keys WHERE account_id IN",
        sorted(set(account_ids)),
    ):
        found[account][timedelta(microseconds=span)] = HeatKey(whole, frac)
    return dict(found)


def refresh(connection: Connection, rules: Accounts, account_ids: Iterable[int]) -> None:
    """Recompute ``hot_until`` and ``warm_until`` of these accounts from their keys, and
    remember in :data:`BEFORE` what ``hot_until`` was before the transaction changed it."""
    ids = sorted(set(account_ids))
    if not ids:
        return
    keys = stored_keys(connection, ids)
    before: dict[int, int | None] = connection.info.setdefault(BEFORE, {})
    for account, hot in select_in(
        connection, "SELECT id, hot_until FROM accounts WHERE id IN", ids
    ):
        before.setdefault(account, hot)
    updates = []
    now = datetime.now(UTC)
    for account in ids:
        mine = keys.get(account, {})
        hot = last_below(mine, rules.hot_heat, now)
        warm = last_below(mine, rules.warm_heat, now)
        updates.append(
            (
                None if hot is None else to_micros(hot),
                None if warm is None else to_micros(warm),
                account,
            )
        )
    execute_many(
        connection, "UPDATE accounts SET hot_until = ?, warm_until = ? WHERE id = ?", updates
    )


def take_before(connection: Connection) -> dict[int, datetime | None]:
    """What :func:`refresh` remembered since the last call (and forget it)."""
    found = connection.info.pop(BEFORE, {})
    return {account: None if hot is None else from_micros(hot) for account, hot in found.items()}


# -- membership ---------------------------------------------------------------------------


def _ensure_accounts(
    connection: Connection, wanted: Mapping[str, tuple[Placement, Mapping[str, Any]]], now: datetime
) -> dict[str, int]:
    """The id of the account of each key, created if new (name and traits from the lead)."""
    keys = sorted(wanted)
    found = dict(select_in(connection, "SELECT key, id FROM accounts WHERE key IN", keys))
    missing = [key for key in keys if key not in found]
    if missing:
        at = to_micros(now)
        rows = []
        for key in missing:
            placement, fields = wanted[key]
            traits = {
                name: value
                for name, value in fields.items()
                if name.startswith("company_") and name != "company_id"
            }
            name = fields.get("company") or (
                fields.get("company_name") if placement.source == "group" else None
            )
            rows.append(
                (
                    key,
                    placement.domain,
                    None if name is None else str(name)[:200],
                    json.dumps(traits),
                    at,
                    at,
                )
            )
        execute_many(
            connection,
            "INSERT INTO accounts (key, domain, name, traits, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO NOTHING",
            rows,
        )
        found.update(select_in(connection, "SELECT key, id FROM accounts WHERE key IN", missing))
    return found


def place(
    connection: Connection,
    book: Playbook,
    lead_ids: Iterable[int],
    now: datetime,
    actor: str,
) -> None:
    """Put each of these leads in the account its fields give it now (or in none): a lead
    that joins adds its keys to the account; one that leaves or moves is recorded as a past
    member until ``now``, audited (``account.move``), and its old account is recomputed."""
    ids = sorted(set(lead_ids))
    if not ids or not book.accounts.enabled:
        return
    rows = select_in(
        connection,
        "SELECT id, email, company, attributes FROM leads WHERE merged_into_id IS NULL AND id IN",
        ids,
    )
    wanted: dict[int, tuple[Placement, dict[str, Any]]] = {}
    for lead, email, company, said in rows:
        fields = dict(json.loads(said) if isinstance(said, str) else (said or {}))
        fields["email"] = email
        fields["company"] = company
        placement = placement_of(fields)
        if placement is not None:
            wanted[lead] = (placement, fields)
    live = {row[0] for row in rows}
    current = {
        lead: (account, source)
        for lead, account, source in select_in(
            connection,
            "SELECT lead_id, account_id, source FROM account_members WHERE lead_id IN",
            sorted(live),
        )
    }
    by_key = _ensure_accounts(
        connection,
        {placement.key: (placement, fields) for placement, fields in wanted.values()},
        now,
    )
    target = {lead: by_key[placement.key] for lead, (placement, _) in wanted.items()}
    moving = [
        lead for lead in sorted(live) if lead in current and current[lead][0] != target.get(lead)
    ]
    joining = [
        lead for lead in sorted(target) if lead not in current or current[lead][0] != target[lead]
    ]
    if not moving and not joining:
        return
    lock_accounts(connection, [*target.values(), *(current[lead][0] for lead in moving)])
    had_past = {
        row[0]
        for row in select_in(
            connection,
            "SELECT DISTINCT lead_id FROM account_past_members WHERE lead_id IN",
            joining,
        )
    }
    at = to_micros(now)
    left: set[int] = set()
    if moving:
        since = dict(
            select_in(
                connection, "SELECT lead_id, since FROM account_members WHERE lead_id IN", moving
            )
        )
        execute_many(
            connection,
            "INSERT INTO account_past_members (lead_id, account_id, since, until) "
            "VALUES (?, ?, ?, ?)",
            [(lead, current[lead][0], since[lead], at) for lead in moving],
        )
        execute_many(
            connection,
            "DELETE FROM account_members WHERE lead_id = ?",
            [(lead,) for lead in moving],
        )
        left = {current[lead][0] for lead in moving}
        keys = {
            account: key
            for key, account in select_in(
                connection,
                "SELECT key, id FROM accounts WHERE id IN",
                sorted(left | {target[lead] for lead in moving if lead in target}),
            )
        }
        audit.record_many(
            connection,
            now,
            actor,
            [
                (
                    AuditAction.ACCOUNT_MOVE,
                    lead_subject(lead),
                    {
                        "from": keys[current[lead][0]],
                        "to": keys.get(target[lead]) if lead in target else None,
                        "source": wanted[lead][0].source if lead in wanted else None,
                    },
                )
                for lead in moving
            ],
        )
    execute_many(
        connection,
        "INSERT INTO account_members (lead_id, account_id, since, source) VALUES (?, ?, ?, ?)",
        [
            (
                lead,
                target[lead],
                at if (lead in current or lead in had_past) else None,
                wanted[lead][0].source,
            )
            for lead in joining
        ],
    )
    joined = {lead: target[lead] for lead in joining if target[lead] not in left}
    keys_in = _member_keys(connection, sorted(joined))
    _add(connection, [(joined[lead], span, w, f) for lead, span, w, f in keys_in])
    refresh(connection, book.accounts, set(joined.values()))
    recompute(connection, book.accounts, left)


def leave(connection: Connection, lead_ids: Sequence[int], now: datetime) -> set[int]:
    """Take these leads out of their accounts (a lead merged into another): their current
    memberships end at ``now``. Returns the accounts to recompute."""
    current = accounts_of(connection, lead_ids)
    if not current:
        return set()
    since = dict(
        select_in(
            connection, "SELECT lead_id, since FROM account_members WHERE lead_id IN", list(current)
        )
    )
    at = to_micros(now)
    execute_many(
        connection,
        "INSERT INTO account_past_members (lead_id, account_id, since, until) VALUES (?, ?, ?, ?)",
        [(lead, account, since[lead], at) for lead, account in current.items()],
    )
    execute_many(
        connection, "DELETE FROM account_members WHERE lead_id = ?", [(lead,) for lead in current]
    )
    return set(current.values())


def accounts_about(connection: Connection, lead_ids: Sequence[int]) -> set[int]:
    """Every account these leads belong or belonged to (an erasure recomputes them)."""
    found = set(accounts_of(connection, lead_ids).values())
    found.update(
        row[0]
        for row in select_in(
            connection, "SELECT account_id FROM account_past_members WHERE lead_id IN", lead_ids
        )
    )
    return found


def membership_changed_at(connection: Connection) -> datetime | None:
    """The latest instant any membership began or ended: the stored account keys describe
    the accounts from here on (and from the latest stored fact on)."""
    values = [
        connection.exec_driver_sql("SELECT MAX(since) FROM account_members").scalar(),
        connection.exec_driver_sql("SELECT MAX(until) FROM account_past_members").scalar(),
    ]
    known = [int(v) for v in values if v is not None]
    return from_micros(max(known)) if known else None
