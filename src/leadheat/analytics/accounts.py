"""Does the account's heat tell? Conversion of leads by the temperature of their account, and
by how many people at the account were engaged, both as of each lead's decision time (its
first touch), replayed from history like every other breakdown; and the same judged under
two playbooks' ``[accounts]`` for a backtest.

An account at an instant is its members' heat summed then (its members now: a lead that
moved is counted where it is). A lead without an account is its own bucket.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import Connection

from leadheat.analytics.columns import Columns, kernels
from leadheat.analytics.decisions import Decided
from leadheat.analytics.rates import Rate, rate, roc_auc, significant
from leadheat.playbook import Playbook
from leadheat.scoring.accounts import account_temperature
from leadheat.scoring.heat import Engagement, Heat
from leadheat.scoring.lead import LeadHistory
from leadheat.store.driver import select_all
from leadheat.store.training import FEW, load_everything
from leadheat.times import to_micros

NO_ACCOUNT = "no account"
ACCOUNT_TEMPERATURES = ("hot", "warm", "cold", NO_ACCOUNT)
COVERAGE = ("3+ engaged", "2 engaged", "1 engaged", "none engaged", NO_ACCOUNT)


@dataclass(slots=True)
class AccountDecided:
    """A lead's account as of the lead's decision time (not frozen: one per lead, as
    :class:`~leadheat.analytics.decisions.Decided`)."""

    lead_id: int
    label: int | None
    temperature: str
    """Of the account (``no account`` without one)."""
    heat: float
    engaged: int
    """Members with an interest signal within ``[accounts] recent`` of the decision."""

    @property
    def coverage(self) -> str:
        if self.temperature == NO_ACCOUNT:
            return NO_ACCOUNT
        if self.engaged >= 3:
            return "3+ engaged"
        return f"{self.engaged} engaged" if self.engaged else "none engaged"


class Members:
    """Every account's members now, and their histories, read once."""

    def __init__(self, connection: Connection) -> None:
        rows = select_all(connection, "SELECT lead_id, account_id FROM account_members")
        self.account_of: dict[int, int] = dict(rows)
        self.members: dict[int, list[int]] = defaultdict(list)
        for lead, account in rows:
            self.members[account].append(lead)
        ids = sorted(self.account_of)
        self.histories: dict[int, LeadHistory] = {
            lived.lead_id: lived.history
            for lived in load_everything(connection, ids if len(ids) <= FEW else None)
            if lived.lead_id in self.account_of
        }

    def at(self, lead_id: int, when: datetime, book: Playbook) -> tuple[float, int] | None:
        """The heat of the lead's account at ``when`` and its members engaged then."""
        account = self.account_of.get(lead_id)
        if account is None:
            return None
        heats = []
        engaged = 0
        recent = when - book.accounts.recent
        for member in self.members[account]:
            history = self.histories.get(member)
            if history is None:
                continue
            heat = Heat()
            last = None
            for event in history.events:
                if event.at > when:
                    continue
                points = book.points_for(event.type, event.properties)
                if points > 0:
                    heat.add(Engagement(event.at, points, book.half_life_for(event.type)))
                    last = event.at if last is None else max(last, event.at)
            heats.append(heat.at(when))
            engaged += last is not None and last >= recent
        return math.fsum(heats), engaged


def account_decisions(
    members: Members, book: Playbook, rows: Sequence[Decided]
) -> list[AccountDecided]:
    """Each decided lead's account as of its decision, by ``book``'s ``[accounts]``."""
    found = []
    for row in rows:
        seen = members.at(row.lead_id, row.decided_at, book)
        if seen is None:
            found.append(AccountDecided(row.lead_id, row.label, NO_ACCOUNT, 0.0, 0))
            continue
        heat, engaged = seen
        temperature = account_temperature(heat, book.accounts.hot_heat, book.accounts.warm_heat)
        found.append(AccountDecided(row.lead_id, row.label, temperature.value, heat, engaged))
    return found


def _by(
    items: Sequence[AccountDecided], key: Callable[[AccountDecided], str], order: Sequence[str]
) -> list[Rate]:
    """Rates per value of ``key`` (as :func:`leadheat.analytics.breakdowns.by_key`): the
    values of ``order`` first, even when empty."""
    known = [item for item in items if item.label is not None]
    leads: Counter[str] = Counter(key(item) for item in known)
    won: Counter[str] = Counter(key(item) for item in known if item.label == 1)
    rest = sorted((k for k in leads if k not in order), key=lambda k: (-leads[k], k))
    return [rate(name, won[name], leads[name]) for name in [*order, *rest]]


def by_account_temperature(items: Sequence[AccountDecided]) -> list[Rate]:
    """Leads by their account's temperature at their first touch."""
    return _by(items, lambda item: item.temperature, ACCOUNT_TEMPERATURES)


def by_coverage(items: Sequence[AccountDecided]) -> list[Rate]:
    """Leads by how many people at their account were engaged at their first touch."""
    return _by(items, lambda item: item.coverage, COVERAGE)


@dataclass(frozen=True)
class JudgedAccounts:
    """How well one playbook's ``[accounts]`` separated converters."""

    name: str
    by_account_temperature: list[Rate]
    roc_auc: float | None
    """Of account heat at the first touch (leads with an account), against conversion."""
    converters_at_hot_accounts: Rate

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "by_account_temperature": [r.as_json() for r in self.by_account_temperature],
            "roc_auc": self.roc_auc,
            "converters_at_hot_accounts": self.converters_at_hot_accounts.as_json(),
        }


def judge_accounts(name: str, items: Sequence[AccountDecided]) -> JudgedAccounts:
    known = [i for i in items if i.label is not None and i.temperature != NO_ACCOUNT]
    converters = [i for i in known if i.label == 1]
    return JudgedAccounts(
        name,
        by_account_temperature(items),
        roc_auc(significant(np.array([i.heat for i in known])), [i.label == 1 for i in known])
        if known
        else None,
        rate("hot", sum(i.temperature == "hot" for i in converters), len(converters)),
    )


def folded_account_decisions(
    connection: Connection, columns: Columns, book: Playbook, rows: Sequence[Decided]
) -> list[AccountDecided]:
    """:func:`account_decisions` from the columns: every member's heat at every decision
    asked of its account in one compiled fold, each account's sum as :func:`math.fsum`."""
    pairs = select_all(connection, "SELECT lead_id, account_id FROM account_members")
    account_of: dict[int, int] = dict(pairs)
    leads = np.array([lead for lead, _ in pairs], dtype=np.int64)
    accounts = np.array([account for _, account in pairs], dtype=np.int64)
    slots = columns.slot_of(leads) if len(leads) else np.zeros(0, dtype=np.intp)
    known = (slots < len(columns.lead_ids)) & (
        columns.lead_ids[np.minimum(slots, len(columns.lead_ids) - 1)] == leads
    )  # as Members: a member merged away has no history
    order = np.argsort(accounts[known], kind="stable")
    member_slots, member_accounts = slots[known][order], accounts[known][order]
    listed, first, count = np.unique(member_accounts, return_index=True, return_counts=True)
    asked = np.array([account_of.get(row.lead_id, -1) for row in rows], dtype=np.int64)
    where = np.minimum(np.searchsorted(listed, asked), max(len(listed) - 1, 0))
    held = (asked >= 0) & (len(listed) > 0) & (listed[where] == asked if len(listed) else False)
    members = np.where(held, count[where] if len(listed) else 0, 0)
    offsets = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum(members, out=offsets[1:])
    row_of = np.repeat(np.arange(len(rows)), members)
    within = np.arange(offsets[-1]) - offsets[:-1][row_of]
    query_slots = (
        member_slots[first[where][row_of] + within] if offsets[-1] else np.zeros(0, np.intp)
    )
    decided = np.array([to_micros(row.decided_at) for row in rows], dtype=np.int64)
    folded = columns.fold(query_slots.astype(np.intp), decided[row_of])
    heats = kernels()[1](folded.raised, offsets).tolist()
    recent = decided[row_of] - book.accounts.recent // timedelta(microseconds=1)
    engaged = np.bincount(row_of, weights=folded.engaged >= recent, minlength=len(rows))
    found = []
    for index, row in enumerate(rows):
        if asked[index] < 0:
            found.append(AccountDecided(row.lead_id, row.label, NO_ACCOUNT, 0.0, 0))
            continue
        heat = heats[index]
        temperature = account_temperature(heat, book.accounts.hot_heat, book.accounts.warm_heat)
        found.append(
            AccountDecided(row.lead_id, row.label, temperature.value, heat, int(engaged[index]))
        )
    return found


def account_breakdowns(
    connection: Connection, book: Playbook, rows: Sequence[Decided], columns: Columns
) -> Mapping[str, list[Rate]]:
    """``by_account_temperature`` and ``by_coverage`` of the report."""
    items = folded_account_decisions(connection, columns, book, rows)
    return {
        "by_account_temperature": by_account_temperature(items),
        "by_coverage": by_coverage(items),
    }
