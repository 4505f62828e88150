"""Identity stitching: the keys that arrive together name one person.

An analytics SDK sends an anonymous id until the visitor identifies, then a user id and often
an email. Every message's keys are joined (union-find over the whole batch and the stored
identities): each group of keys becomes one lead. A group with no stored lead gets a new one;
a group that touches several stored leads merges them into the one named by the most
authoritative key (user id, then email, then anonymous id), so an anonymous visitor's earlier
events join the lead when they identify.

Public collection (a publishable key, readable by anyone in a web page) may join an
anonymous-only lead to a lead, never two leads that each have an email or an external id:
those pairs become suggested merges (:mod:`leadheat.store.suggestions`), and each message's
events stay with the lead its own most authoritative key names.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, select

from leadheat.identity import LeadKey
from leadheat.playbook import Playbook
from leadheat.store import accounts
from leadheat.store.audit import DEFAULT_ACTOR
from leadheat.store.driver import execute_many
from leadheat.store.leads import create_leads, find_leads, initial_fit, merge_leads
from leadheat.store.models import Lead
from leadheat.store.state import rebuild

AUTHORITY = {"external": 0, "email": 1, "anonymous": 2}


class _Groups:
    """Union-find over lead keys."""

    def __init__(self) -> None:
        self.parent: dict[LeadKey, LeadKey] = {}

    def find(self, key: LeadKey) -> LeadKey:
        root = self.parent.setdefault(key, key)
        while root != self.parent[root]:
            root = self.parent[root]
        while key != root:  # path compression
            self.parent[key], key = root, self.parent[key]
        return root

    def join(self, keys: Sequence[LeadKey]) -> None:
        first = self.find(keys[0])
        for key in keys[1:]:
            other = self.find(key)
            if other != first:
                self.parent[other] = first


@dataclass(frozen=True)
class Stitched:
    """Each message's lead after stitching."""

    leads: list[int]
    """The lead of the message's keys together (``0``: a message without keys)."""
    first: list[int]
    """The lead the message's most authoritative key names, which its events are stored on:
    the same unless public collection kept two known people apart."""
    created: dict[int, tuple[float, bool, bool]]
    """The leads stitching created, each with its ``(fit, qualified, disqualified)``: they
    have no score state yet, which the write that records their events creates whole."""


def stitch(
    connection: Connection,
    book: Playbook,
    version: int,
    identities: Sequence[Sequence[LeadKey]],
    born_us: Sequence[int],
    now: datetime,
    *,
    public: bool = False,
    suggested: list[tuple[int, int, str]] | None = None,
) -> Stitched:
    """Make each message's keys name one lead; return each message's lead, the lead its
    first key names, and the leads created (:class:`Stitched`).

    ``born_us`` is each message's time: a new lead is as old as its earliest message.
    ``public``: the keys come from public collection, which merges no two leads that both
    have an email or external id; each such pair is added to ``suggested`` as
    ``(lead_id, into_lead_id, reason)`` instead.
    """
    groups = _Groups()
    born_first: dict[LeadKey, int] = {}  # each first key's earliest message
    for keys, born in zip(identities, born_us, strict=True):
        if len(keys) > 1:
            groups.join(keys)
        elif not keys:
            continue
        first = keys[0]
        groups.parent.setdefault(first, first)
        if born < born_first.get(first, born + 1):
            born_first[first] = born
    every = list(groups.parent)
    found = find_leads(connection, every)
    members: dict[LeadKey, list[LeadKey]] = {}
    for key in every:
        members.setdefault(groups.find(key), []).append(key)
    earliest: dict[LeadKey, int] = {}
    for first, born in born_first.items():
        root = groups.find(first)
        earliest[root] = min(earliest.get(root, born), born)
    lead_of: dict[LeadKey, int] = {}
    fresh: list[LeadKey] = []
    survivors: set[int] = set()
    joined = False  # some group named several stored leads
    ordered = {
        root: sorted(keys, key=lambda k: AUTHORITY[k.kind]) for root, keys in members.items()
    }
    knowns = {
        root: list(dict.fromkeys(found[k] for k in stored if k in found))
        for root, stored in ordered.items()
    }
    joining = {lead for known in knowns.values() if len(known) > 1 for lead in known}
    named = _named(connection, joining) if public else set()  # read only when leads would join
    for root, stored in ordered.items():
        known = knowns[root]
        if not known:
            fresh.append(root)
            continue
        keep = next((lead for lead in known if lead in named), known[0])
        joined = joined or len(known) > 1
        for other in known:
            if other == keep:
                continue
            if other in named:  # public collection alone never joins two known people
                if suggested is not None:
                    suggested.append((other, keep, _reason(stored, found, other, keep)))
                continue
            merge_leads(connection, keep, other, now)
            survivors.add(keep)
        lead_of[root] = keep
    fits: dict[int, tuple[float, bool, bool]] = {}
    created: dict[LeadKey, int] = {}
    if fresh:
        firsts = [min(members[root], key=lambda k: AUTHORITY[k.kind]) for root in fresh]
        created = create_leads(
            connection,
            firsts,
            [earliest[root] for root in fresh],
            version,
            now,
            book,
            with_states=False,
        )
        for root, first in zip(fresh, firsts, strict=True):
            lead_of[root] = created[first]
            found[first] = created[first]
        fits = initial_fit(created, book)
    missing = sorted(  # in key order, as create_leads inserts: no deadlock between writers
        (key.kind, key.value, lead_of[groups.find(key)]) for key in every if key not in found
    )
    execute_many(
        connection, "INSERT INTO identities (kind, value, lead_id) VALUES (?, ?, ?)", missing
    )
    for kind, column in (("email", "email"), ("external", "external_id")):
        # a lead shows the first email and user id it was given
        execute_many(
            connection,
            f"UPDATE leads SET {column} = ? WHERE id = ? AND {column} IS NULL",
            [(value, lead) for key_kind, value, lead in missing if key_kind == kind],
        )
    if survivors:
        rebuild(connection, book, version, sorted(survivors))
    # only leads whose fields this changed may belong to another account now: merged ones
    # and those given an email (new or first), the one field a key sets that places a lead
    changed = set(survivors)
    changed.update(lead for first, lead in created.items() if first.kind == "email")
    changed.update(lead for kind, _, lead in missing if kind == "email")
    accounts.place(connection, book, changed, now, DEFAULT_ACTOR)
    lead_of_first = {first: lead_of[groups.find(first)] for first in born_first}
    leads = [lead_of_first[keys[0]] if keys else 0 for keys in identities]
    if not joined:  # every key of a group names the group's one lead
        return Stitched(leads, leads, fits)
    named_by = find_leads(connection, [keys[0] for keys in identities if keys])
    return Stitched(leads, [named_by[keys[0]] if keys else 0 for keys in identities], fits)


def _named(connection: Connection, lead_ids: set[int]) -> set[int]:
    """Those of the leads that have an email or an external id: known people."""
    if not lead_ids:
        return set()
    rows = connection.execute(
        select(Lead.id).where(
            Lead.id.in_(sorted(lead_ids)),
            (Lead.email.is_not(None)) | (Lead.external_id.is_not(None)),
        )
    )
    return set(rows.scalars())


def _reason(keys: Sequence[LeadKey], found: dict[LeadKey, int], lead: int, into: int) -> str:
    """Why two leads look like one person, naming the keys (no lead's data beyond them).

    >>> a, b = LeadKey("external", "x"), LeadKey("email", "ana@example.com")
    >>> _reason([a, b], {a: 1, b: 2}, 2, 1)
    "public collection named external id 'x' (lead 1) and email 'ana@example.com' (lead 2) \
as one person"
    """
    words = {"external": "external id", "email": "email", "anonymous": "anonymous id"}
    named = [
        f"{words[key.kind]} {key.value!r} (lead {found[key]})"
        for wanted in (into, lead)
        for key in keys
        if found.get(key) == wanted
    ][:4]
    return f"public collection named {' and '.join(named)} as one person"
