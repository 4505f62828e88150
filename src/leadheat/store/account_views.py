"""Reading accounts: the hot ones now (an index scan), one account with its members,
coverage and evidence, and either at a past instant (from history).

Now (at or after the latest stored fact and the latest membership change) every number comes
from the stored keys: an account's heat is its own keys' heat, never a sum over members.
Earlier, the account is what its members then had done by then: the members whose membership
covered the instant, each with its heat from its events up to it.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection

from leadheat.playbook import Playbook
from leadheat.scoring.accounts import (
    AccountTemperature,
    account_temperature,
    cools_below,
    heat_of,
    sum_keys,
)
from leadheat.scoring.evidence import EvidenceItem, assess
from leadheat.scoring.heat import Engagement, Heat, HeatKey
from leadheat.store.accounts import membership_changed_at, stored_keys
from leadheat.store.database import reader_of
from leadheat.store.driver import select_all, select_in
from leadheat.store.history import latest_fact_at
from leadheat.times import from_micros, to_micros


@dataclass(frozen=True)
class AccountRow:
    """An account in a list, as of one instant."""

    id: int
    key: str
    name: str | None
    domain: str | None
    owner: str | None
    heat: float
    temperature: AccountTemperature
    hot_until: datetime | None
    warm_until: datetime | None
    members: int
    roles: tuple[str, ...]


@dataclass(frozen=True)
class MemberView:
    lead_id: int
    email: str | None
    name: str | None
    title: str | None
    role: str | None
    heat: float
    last_engaged_at: datetime | None
    engaged: bool


@dataclass(frozen=True)
class AccountView:
    """One account at one instant, with what the team needs to work it."""

    row: AccountRow
    at: datetime
    traits: dict[str, Any]
    members: tuple[MemberView, ...]
    evidence: dict[str, dict[str, Any]]
    """The latest word on each BANT kind from anyone at the account."""
    stated: tuple[dict[str, Any], ...] = field(default=())
    """Every piece of evidence members stated by then, newest first."""

    @property
    def coverage(self) -> dict[str, Any]:
        """Who at the account engaged recently, and which roles the members cover."""
        roles: dict[str, list[int]] = defaultdict(list)
        engaged_roles: dict[str, list[int]] = defaultdict(list)
        for member in self.members:
            if member.role is not None:
                roles[member.role].append(member.lead_id)
                if member.engaged:
                    engaged_roles[member.role].append(member.lead_id)
        return {
            "members": len(self.members),
            "engaged": sum(1 for m in self.members if m.engaged),
            "engaged_leads": [m.lead_id for m in self.members if m.engaged],
            "roles": dict(sorted(roles.items())),
            "engaged_roles": dict(sorted(engaged_roles.items())),
        }


def _is_current(connection: Connection, at: datetime) -> bool:
    latest = [latest_fact_at(reader_of(connection)), membership_changed_at(connection)]
    return all(value is None or at >= value for value in latest)


def resolve(connection: Connection, reference: str) -> int | None:
    """The id of the account a key, domain or ``id:N`` names."""
    text = reference.strip()
    if text.startswith("id:") and text[3:].isdigit():
        rows = select_all(connection, "SELECT id FROM accounts WHERE id = ?", int(text[3:]))
    else:
        rows = select_all(connection, "SELECT id FROM accounts WHERE key = ?", text.casefold())
        if not rows:
            rows = select_all(connection, "SELECT id FROM accounts WHERE key = ?", text)
    return int(rows[0][0]) if rows else None


def list_accounts(
    connection: Connection,
    book: Playbook,
    at: datetime,
    *,
    temperature: AccountTemperature | None = None,
    owner: str | None = None,
    limit: int | None = 50,
) -> list[AccountRow]:
    """Accounts hottest first (of one temperature, one owner), as of ``at``."""
    if not _is_current(connection, at):
        rows = [
            row
            for row in _past_rows(connection, book, at)
            if (temperature is None or row.temperature is temperature)
            and (owner is None or (row.owner or "").casefold() == owner.casefold())
        ]
        return rows[:limit] if limit is not None else rows
    micros = to_micros(at)
    where = []
    params: list[Any] = []
    if temperature is AccountTemperature.HOT:
        where.append("hot_until > ?")
        params.append(micros)
        order = "hot_until DESC, id"
    elif temperature is AccountTemperature.WARM:
        where.append("warm_until > ? AND (hot_until IS NULL OR hot_until <= ?)")
        params += [micros, micros]
        order = "warm_until DESC NULLS LAST, id"
    elif temperature is AccountTemperature.COLD:
        where.append("(warm_until IS NULL OR warm_until <= ?)")
        params.append(micros)
        order = "warm_until DESC NULLS LAST, id"
    else:
        order = "warm_until DESC NULLS LAST, id"
    if owner is not None:
        where.append("LOWER(owner) = ?")
        params.append(owner.casefold())
    # With one half-life the order of hot_until and warm_until is the order of heat now, so
    # the first rows are the hottest; with several it is not, and every row is judged.
    exact = len(book.half_lives) == 1 and not book.has_negative_signals
    sql = "SELECT id, key, name, domain, owner FROM accounts"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += f" ORDER BY {order}"
    if limit is not None and exact:
        sql += f" LIMIT {int(limit)}"
    found = select_all(connection, sql, *params)
    rows = _rows(connection, book, at, found)
    if temperature is not None:  # hot_until / warm_until bound the scan; heat decides
        rows = [row for row in rows if row.temperature is temperature]
    rows.sort(key=lambda r: (-r.heat, r.id))
    return rows[:limit] if limit is not None else rows


def hot_accounts(
    connection: Connection, book: Playbook, at: datetime, limit: int | None = 50
) -> list[AccountRow]:
    """Hot accounts hottest first: a range scan of ``hot_until`` (one half-life: already in
    the order of heat, so a top 50 reads 50 rows)."""
    return list_accounts(connection, book, at, temperature=AccountTemperature.HOT, limit=limit)


def _rows(
    connection: Connection, book: Playbook, at: datetime, found: Sequence[Sequence[Any]]
) -> list[AccountRow]:
    ids = [row[0] for row in found]
    keys = stored_keys(connection, ids)
    counts, roles = _members_and_roles(connection, book, ids)
    rules = book.accounts
    rows = []
    for account, key, name, domain, owner in found:
        mine = keys.get(account, {})
        heat = heat_of(mine, at)
        rows.append(_row(account, key, name, domain, owner, heat, mine, rules, counts, roles, at))
    return rows


def _row(
    account: int,
    key: str,
    name: str | None,
    domain: str | None,
    owner: str | None,
    heat: float,
    keys: dict[timedelta, HeatKey],
    rules: Any,
    counts: dict[int, int],
    roles: dict[int, set[str]],
    at: datetime,
) -> AccountRow:
    temperature = account_temperature(heat, rules.hot_heat, rules.warm_heat)
    hot = cools_below(keys, rules.hot_heat, at) if temperature is AccountTemperature.HOT else None
    warm = (
        cools_below(keys, rules.warm_heat, at)
        if temperature is not AccountTemperature.COLD
        else None
    )
    return AccountRow(
        account,
        key,
        name,
        domain,
        owner,
        heat,
        temperature,
        hot,
        warm,
        counts.get(account, 0),
        tuple(sorted(roles.get(account, ()))),
    )


def _members_and_roles(
    connection: Connection, book: Playbook, ids: Sequence[int]
) -> tuple[dict[int, int], dict[int, set[str]]]:
    counts: dict[int, int] = defaultdict(int)
    roles: dict[int, set[str]] = defaultdict(set)
    for account, title in select_in(
        connection,
        "SELECT m.account_id, l.title FROM account_members m JOIN leads l ON l.id = m.lead_id "
        "WHERE m.account_id IN",
        ids,
    ):
        counts[account] += 1
        role = book.accounts.role_of(title)
        if role is not None:
            roles[account].add(role)
    return counts, roles


# -- the past: from history ----------------------------------------------------------------


def _members_at(
    connection: Connection, at: datetime, account_ids: Sequence[int] | None = None
) -> dict[int, set[int]]:
    """``account → leads`` whose membership covered ``at``."""
    micros = to_micros(at)
    found: dict[int, set[int]] = defaultdict(set)
    current = "SELECT account_id, lead_id FROM account_members WHERE (since IS NULL OR since <= ?)"
    past = (
        "SELECT account_id, lead_id FROM account_past_members "
        "WHERE (since IS NULL OR since <= ?) AND until > ?"
    )
    if account_ids is None:
        rows = [
            *select_all(connection, current, micros),
            *select_all(connection, past, micros, micros),
        ]
    else:
        rows = [
            *select_in(connection, current + " AND account_id IN", account_ids, micros),
            *select_in(connection, past + " AND account_id IN", account_ids, micros, micros),
        ]
    merged = {
        row[0]
        for row in select_in(
            connection,
            "SELECT id FROM leads WHERE merged_into_id IS NOT NULL AND id IN",
            sorted({lead for _, lead in rows}),
        )
    }
    for account, lead in rows:
        if lead not in merged:  # a lead merged away is its survivor now, wherever that is
            found[account].add(lead)
    return found


def member_heats_at(
    connection: Connection, book: Playbook, lead_ids: Sequence[int], at: datetime
) -> dict[int, Heat]:
    """Each lead's heat from its events up to ``at`` (the definition, as a lead page at ``at``
    computes it)."""
    heats: dict[int, Heat] = {lead: Heat() for lead in lead_ids}
    for lead, kind, occurred, said in select_in(
        connection,
        "SELECT lead_id, type, occurred_at, properties FROM events "
        "WHERE occurred_at <= ? AND lead_id IN",
        sorted(heats),
        to_micros(at),
    ):
        properties = json.loads(said) if isinstance(said, str) else said
        points = book.points_for(kind, properties)
        if points != 0:
            heats[lead].add(Engagement(from_micros(occurred), points, book.half_life_for(kind)))
    return heats


def _summed(heats: Sequence[Heat]) -> dict[timedelta, HeatKey]:
    spans: dict[timedelta, list[HeatKey]] = defaultdict(list)
    for heat in heats:  # stored-key convention: a negative half-life holds the part pulled down
        for span, key in heat.positive.items():
            spans[span].append(key)
        for span, key in heat.negative.items():
            spans[-span].append(key)
    return {span: total for span, keys in spans.items() if (total := sum_keys(keys)) is not None}


def _past_rows(connection: Connection, book: Playbook, at: datetime) -> list[AccountRow]:
    members = _members_at(connection, at)
    accounts = select_all(connection, "SELECT id, key, name, domain, owner FROM accounts")
    heats = member_heats_at(
        connection, book, sorted({lead for leads in members.values() for lead in leads}), at
    )
    counts = {account: len(leads) for account, leads in members.items()}
    roles: dict[int, set[str]] = defaultdict(set)
    titles = dict(
        select_in(
            connection,
            "SELECT id, title FROM leads WHERE id IN",
            sorted({lead for leads in members.values() for lead in leads}),
        )
    )
    for account, leads in members.items():
        for lead in leads:
            role = book.accounts.role_of(titles.get(lead))
            if role is not None:
                roles[account].add(role)
    rows = []
    for account, key, name, domain, owner in accounts:
        keys = _summed([heats[lead] for lead in members.get(account, ())])
        rows.append(
            _row(
                account,
                key,
                name,
                domain,
                owner,
                heat_of(keys, at),
                keys,
                book.accounts,
                counts,
                roles,
                at,
            )
        )
    rows.sort(key=lambda r: (-r.heat, r.id))
    return rows


# -- one account ----------------------------------------------------------------------------


def account_view(
    connection: Connection, book: Playbook, account_id: int, at: datetime
) -> AccountView:
    """One account as of ``at``: heat and forecasts, members with their heat, coverage, and
    the BANT evidence anyone at the account stated."""
    ((key, name, domain, owner, traits),) = select_all(
        connection, "SELECT key, name, domain, owner, traits FROM accounts WHERE id = ?", account_id
    )
    traits = json.loads(traits) if isinstance(traits, str) else (traits or {})
    rules = book.accounts
    if _is_current(connection, at):
        leads = sorted(
            row[0]
            for row in select_all(
                connection, "SELECT lead_id FROM account_members WHERE account_id = ?", account_id
            )
        )
        keys = stored_keys(connection, [account_id]).get(account_id, {})
        member_keys: dict[int, dict[timedelta, HeatKey]] = defaultdict(dict)
        for lead, span, whole, frac in select_in(
            connection,
            "SELECT lead_id, half_life_us, whole, frac FROM heat_keys WHERE lead_id IN",
            leads,
        ):
            member_keys[lead][timedelta(microseconds=span)] = HeatKey(whole, frac)
        heat_by_lead = {lead: heat_of(member_keys.get(lead, {}), at) for lead in leads}
    else:
        leads = sorted(_members_at(connection, at, [account_id]).get(account_id, set()))
        heats = member_heats_at(connection, book, leads, at)
        keys = _summed(list(heats.values()))
        heat_by_lead = {lead: heats[lead].at(at) for lead in leads}
    heat = heat_of(keys, at)
    info = {
        row[0]: row[1:]
        for row in select_in(
            connection,
            "SELECT l.id, l.email, l.name, l.title, s.last_engaged_at FROM leads l "
            "LEFT JOIN lead_states s ON s.lead_id = l.id WHERE l.id IN",
            leads,
        )
    }
    last_engaged = _last_engaged(connection, book, leads, at)
    recent = at - rules.recent
    members = tuple(
        sorted(
            (
                MemberView(
                    lead,
                    info[lead][0],
                    info[lead][1],
                    info[lead][2],
                    rules.role_of(info[lead][2]),
                    heat_by_lead[lead],
                    last_engaged.get(lead),
                    (engaged := last_engaged.get(lead)) is not None and engaged >= recent,
                )
                for lead in leads
                if lead in info
            ),
            key=lambda m: (-m.heat, m.lead_id),
        )
    )
    items: list[tuple[int, EvidenceItem]] = [
        (lead, EvidenceItem(kind, value, from_micros(stated), source))
        for lead, kind, value, stated, source in select_in(
            connection,
            "SELECT lead_id, kind, value, stated_at, source FROM evidence "
            "WHERE stated_at <= ? AND lead_id IN",
            leads,
            to_micros(at),
        )
    ]
    kinds = list(
        dict.fromkeys([*book.temperature.hot_requires, "need", "budget", "timeline", "authority"])
    )
    statuses = assess([item for _, item in items], kinds, at, book.evidence.ttl)
    by_item = {id(item): lead for lead, item in items}
    evidence: dict[str, dict[str, Any]] = {}
    for kind, status in statuses.items():
        who = next(
            (
                by_item[id(item)]
                for _, item in items
                if item.kind == kind
                and item.stated_at == status.stated_at
                and item.value == status.value
            ),
            None,
        )
        evidence[kind] = {
            "state": status.state.value,
            "value": status.value,
            "stated_at": status.stated_at,
            "fresh_until": status.fresh_until,
            "source": status.source,
            "lead_id": who,
        }
    stated = tuple(
        {
            "lead_id": lead,
            "kind": item.kind,
            "value": item.value,
            "stated_at": item.stated_at,
            "source": item.source,
            "fresh": at - item.stated_at <= book.evidence.ttl,
        }
        for lead, item in sorted(items, key=lambda pair: pair[1].stated_at, reverse=True)
    )
    roles = {m.role for m in members if m.role is not None}
    row = _row(
        account_id,
        key,
        name,
        domain,
        owner,
        heat,
        keys,
        rules,
        {account_id: len(members)},
        {account_id: roles},
        at,
    )
    return AccountView(row, at, dict(traits), members, evidence, stated)


def _last_engaged(
    connection: Connection, book: Playbook, leads: Sequence[int], at: datetime
) -> dict[int, datetime]:
    """Each lead's latest event worth points, up to ``at``."""
    found: dict[int, datetime] = {}
    for lead, kind, occurred, said in select_in(
        connection,
        "SELECT lead_id, type, occurred_at, properties FROM events "
        "WHERE occurred_at <= ? AND lead_id IN",
        leads,
        to_micros(at),
    ):
        properties = json.loads(said) if isinstance(said, str) else said
        if book.points_for(kind, properties) > 0:
            when = from_micros(occurred)
            if lead not in found or when > found[lead]:
                found[lead] = when
    return found


def account_of_lead(connection: Connection, lead_id: int) -> tuple[int, str] | None:
    """The account a lead belongs to now: ``(id, key)``."""
    rows = select_all(
        connection,
        "SELECT a.id, a.key FROM account_members m JOIN accounts a ON a.id = m.account_id "
        "WHERE m.lead_id = ?",
        lead_id,
    )
    return (int(rows[0][0]), str(rows[0][1])) if rows else None
