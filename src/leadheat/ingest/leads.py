"""Leads in: created or updated by their keys (an import, the API), or some fields changed by
hand; BANT evidence among their fields, fit and qualification follow, owner changes audited.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select, update

from leadheat.core import Core, on_current_playbook
from leadheat.errors import LeadheatError
from leadheat.identity import LeadKey
from leadheat.scoring.lead import evidence_in
from leadheat.speed.watch import Watch
from leadheat.store import accounts, audit
from leadheat.store.audit import DEFAULT_ACTOR, AuditAction, lead_subject
from leadheat.store.database import reader_of
from leadheat.store.driver import chunked
from leadheat.store.fields import COMMON_FIELDS
from leadheat.store.history import load_lead
from leadheat.store.leads import LeadConflictError, LeadUpsert, find_leads
from leadheat.store.leads import upsert_leads as upsert_rows
from leadheat.store.models import EvidenceRow, Lead
from leadheat.store.state import refresh_facts


@dataclass(frozen=True)
class LeadInput:
    """A lead as an import or an API call gives it: keys, fields, optional CRM dates."""

    keys: Sequence[LeadKey]
    fields: Mapping[str, Any]
    created_at: datetime | None = None


@dataclass
class LeadImportReport:
    received: int = 0
    created: int = 0
    updated: int = 0
    lead_ids: list[int] = field(default_factory=list)


def owners(connection: Connection, lead_ids: Sequence[int]) -> dict[int, str | None]:
    """The owner of each of these leads (for auditing changes)."""
    return {
        row.id: row.owner
        for part in chunked(lead_ids)
        for row in connection.execute(select(Lead.id, Lead.owner).where(Lead.id.in_(part)))
    }


def audit_owners(
    connection: Connection,
    now: datetime,
    actor: str,
    before: Mapping[int, str | None],
    lead_ids: Sequence[int],
) -> None:
    """Audit each owner that changed since ``before`` (read by :func:`owners`)."""
    after = owners(connection, sorted(set(lead_ids)))
    audit.record_many(
        connection,
        now,
        actor,
        [
            (AuditAction.OWNER, lead_subject(lead), {"from": before.get(lead), "to": to})
            for lead, to in sorted(after.items())
            if to != before.get(lead)
        ],
    )


@on_current_playbook
def upsert_leads(
    core: Core, leads: Sequence[LeadInput], *, react: bool = True, actor: str = DEFAULT_ACTOR
) -> LeadImportReport:
    """Create or update leads by their keys in one transaction.

    Attributes named in the playbook's ``[evidence]`` become BANT evidence stated at the
    lead's ``created_at`` (or now). A new qualified lead fires the ``new_qualified``
    trigger unless ``react=False``. Owners set or changed are audited as ``actor``'s.
    """
    version, book = core.playbook()
    now = core.clock()
    owners_given = any("owner" in item.fields for item in leads)

    def apply(connection: Connection, watch: Watch) -> tuple[list[int], int]:
        known = find_leads(connection, [k for item in leads for k in item.keys])
        if watch.enabled:
            watch.look(known.values())
        before = owners(connection, sorted(set(known.values()))) if owners_given else {}
        try:
            ids, created = upsert_rows(
                connection,
                [LeadUpsert(item.keys, item.fields, item.created_at) for item in leads],
                version,
                now,
                book,
                actor=actor,
            )
        except LeadConflictError as error:
            raise LeadheatError(str(error)) from None
        evidence_rows = [
            {
                "lead_id": lead_id,
                "kind": item.kind,
                "value": item.value,
                "stated_at": item.stated_at,
                "source": item.source,
            }
            for lead, lead_id in zip(leads, ids, strict=True)
            for item in evidence_in(lead.fields, lead.created_at or now, book, "lead import")
        ]
        if evidence_rows:
            connection.execute(insert(EvidenceRow), evidence_rows)
        refresh_facts(connection, book, version, ids)
        if owners_given:
            audit_owners(connection, now, actor, before, ids)
        watch.changed(ids)
        return ids, created

    ids, created = core.write_watched(book, now, apply, react, version=version)
    distinct = len(set(ids))
    return LeadImportReport(len(leads), created, distinct - created, ids)


@on_current_playbook
def patch_lead(
    core: Core, lead: str | int, fields: Mapping[str, Any], *, actor: str = DEFAULT_ACTOR
) -> int:
    """Change some of a lead's fields; ``attributes`` merge into the stored ones, and a
    ``None`` value clears an attribute. Fit and qualification follow."""
    version, book = core.playbook()
    now = core.clock()

    def apply(connection: Connection, watch: Watch) -> int:
        lead_id = core.find_lead(connection, lead)
        watch.look([lead_id])
        row = load_lead(reader_of(connection), lead_id)
        common = {k: v for k, v in fields.items() if k in COMMON_FIELDS}
        for name in ("email", "external_id"):
            common.pop(name, None)
        attributes = dict(row["attributes"] or {})
        given = dict(fields.get("attributes") or {})
        for name, value in given.items():
            if value is None:
                attributes.pop(name, None)
            else:
                attributes[name] = value
        by_public = set(row["public_fields"] or ()) - common.keys() - given.keys()
        connection.execute(
            update(Lead)
            .where(Lead.id == lead_id)
            .values(
                **common,
                attributes=attributes,
                updated_at=now,
                public_fields=sorted(by_public) or None,
            )
        )
        if "owner" in common and common["owner"] != row["owner"]:
            audit.record(
                connection,
                now,
                actor,
                AuditAction.OWNER,
                lead_subject(lead_id),
                {"from": row["owner"], "to": common["owner"]},
            )
        refresh_facts(connection, book, version, [lead_id])
        accounts.place(connection, book, [lead_id], now, actor)
        watch.changed([lead_id])
        return lead_id

    return core.write_watched(book, now, apply, version=version)
