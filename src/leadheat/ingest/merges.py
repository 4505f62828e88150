"""Two leads that are one person: merged by hand, or suggested by public collection (two known
identities on one visitor's word) and then confirmed or dismissed by a person, all audited.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection

from leadheat.core import Core, on_current_playbook
from leadheat.errors import LeadheatError, UnknownLeadError
from leadheat.playbook import Playbook
from leadheat.store import accounts, audit, suggestions
from leadheat.store.audit import DEFAULT_ACTOR, AuditAction, lead_subject
from leadheat.store.leads import merge_leads
from leadheat.store.state import rebuild
from leadheat.store.suggestions import Suggestion


@on_current_playbook
def merge(core: Core, keep: str | int, absorb: str | int, *, actor: str = DEFAULT_ACTOR) -> int:
    """Merge the lead known as ``absorb`` into ``keep``; their histories become one."""
    version, book = core.playbook()
    now = core.clock()
    with core.scoring(version) as connection:
        keep_id = core.find_lead(connection, keep)
        absorb_id = core.find_lead(connection, absorb)
        _merge(connection, book, version, keep_id, absorb_id, now, actor)
    return keep_id


def suggested_merges(
    core: Core, *, status: str | None = "open", lead: str | int | None = None, limit: int = 100
) -> list[Suggestion]:
    """Merges public collection suggested (newest first): the open ones by default,
    ``status=None`` for all; ``lead`` for those naming one lead."""
    if status is not None and status not in suggestions.STATUSES:
        raise LeadheatError(f"status {status!r} must be one of {', '.join(suggestions.STATUSES)}")
    with core.engine.connect() as connection:
        lead_id = core.find_lead(connection, lead) if lead is not None else None
        return suggestions.list_suggestions(connection, status=status, lead_id=lead_id, limit=limit)


@on_current_playbook
def confirm_merge(core: Core, suggestion_id: int, *, actor: str = DEFAULT_ACTOR) -> int:
    """Carry out an open suggested merge (audited); returns the lead that remains."""
    version, book = core.playbook()
    now = core.clock()
    with core.scoring(version) as connection:
        found = _open_suggestion(connection, suggestion_id)
        keep = core.find_lead(connection, found.into_lead_id)
        absorb = core.find_lead(connection, found.lead_id)
        suggestions.resolve(connection, suggestion_id, "confirmed", actor, now)
        audit.record(
            connection,
            now,
            actor,
            AuditAction.MERGE_CONFIRM,
            f"merge:{suggestion_id}",
            {"lead": absorb, "into": keep},
        )
        _merge(connection, book, version, keep, absorb, now, actor)
    return keep


def dismiss_merge(core: Core, suggestion_id: int, *, actor: str = DEFAULT_ACTOR) -> int:
    """Close an open suggested merge without merging (audited): they are two people.
    Returns the suggestion's ``lead_id``."""
    now = core.clock()
    with core.transaction() as connection:
        found = _open_suggestion(connection, suggestion_id)
        suggestions.resolve(connection, suggestion_id, "dismissed", actor, now)
        audit.record(
            connection,
            now,
            actor,
            AuditAction.MERGE_DISMISS,
            f"merge:{suggestion_id}",
            {"lead": found.lead_id, "into": found.into_lead_id},
        )
    return found.lead_id


def _open_suggestion(connection: Connection, suggestion_id: int) -> Suggestion:
    found = suggestions.find_suggestion(connection, suggestion_id)
    if found is None:
        raise UnknownLeadError(f"no suggested merge with id {suggestion_id}")
    if found.status != "open":
        raise LeadheatError(
            f"suggested merge {suggestion_id} is already {found.status} (by {found.resolved_by})"
        )
    return found


def _merge(
    connection: Connection,
    book: Playbook,
    version: int,
    keep: int,
    absorb: int,
    now: datetime,
    actor: str,
) -> None:
    """Merge two leads by hand (audited: a merge moves a person's whole history)."""
    if keep == absorb:
        return
    merge_leads(connection, keep, absorb, now)
    rebuild(connection, book, version, [keep])
    accounts.place(connection, book, [keep], now, actor)
    audit.record(
        connection, now, actor, AuditAction.LEAD_MERGE, lead_subject(keep), {"absorbed": absorb}
    )
