"""People's data and who changed what: everything stored about a person exported or erased,
and the audit log that records both (and every other change).
"""

from __future__ import annotations

from typing import Any

from leadheat.core import Core
from leadheat.errors import LeadheatError
from leadheat.store import accounts, audit
from leadheat.store.audit import DEFAULT_ACTOR, AuditAction, AuditEntry, lead_subject
from leadheat.store.privacy import Erasure, erase_person, export_person, person_lead_ids
from leadheat.times import isoformat


def export(core: Core, lead: str | int, *, actor: str = DEFAULT_ACTOR) -> dict[str, Any]:
    """Everything stored about a person (the lead, the leads merged into it and every
    row that references them), by table; the export itself is audited."""
    now = core.clock()
    with core.transaction() as connection:
        lead_id = core.find_lead(connection, lead)
        lead_ids = person_lead_ids(connection, lead_id)
        tables = export_person(connection, lead_ids)
        audit.record(
            connection,
            now,
            actor,
            AuditAction.LEAD_EXPORT,
            lead_subject(lead_id),
            {"rows": {name: len(rows) for name, rows in tables.items()}},
        )
    return {
        "lead": lead_id,
        "lead_ids": lead_ids,
        "exported_at": isoformat(now),
        "tables": tables,
    }


def erase(core: Core, lead: str | int, *, actor: str = DEFAULT_ACTOR) -> Erasure:
    """Remove a person and everything about them in one transaction: the lead, the
    leads merged into it, their identities (so no key finds them again), history, state,
    SLA clocks and notifications. What remains is an audit record with the internal
    number and the count of rows removed per table: no personal data."""
    now = core.clock()
    _, book = core.playbook()
    with core.transaction() as connection:
        lead_id = core.find_lead(connection, lead)
        # the accounts the person was in lose their heat, and their part of the past
        touched = accounts.accounts_about(connection, person_lead_ids(connection, lead_id))
        erased = erase_person(connection, lead_id)
        accounts.recompute(connection, book.accounts, touched)
        audit.record(
            connection,
            now,
            actor,
            AuditAction.LEAD_ERASE,
            lead_subject(lead_id),
            {"lead_ids": list(erased.lead_ids), "removed": dict(erased.removed)},
        )
    return erased


def audit_log(core: Core, *, limit: int = 50, action: str | None = None) -> list[AuditEntry]:
    """Who changed what, newest first (optionally only one action, e.g. ``lead.erase``)."""
    if action is not None and action not in set(AuditAction):
        raise LeadheatError(
            f"action {action!r} must be one of {', '.join(a.value for a in AuditAction)}"
        )
    with core.engine.connect() as connection:
        return audit.entries(connection, limit=limit, action=action)
