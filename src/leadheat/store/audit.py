"""The audit log: who changed what, and when, written in the transaction that made the change
(so there is no change without its record, and no record of a change that was rolled back).

Records hold no personal data of leads: a lead is named by its internal number (``lead:17``),
never by an email, a name or an external id, so that the log outlives an erasure and can still
say that the erasure happened. Reps are staff and are named by their email; API keys by their
public prefix, never their secret.

>>> from datetime import UTC, datetime
>>> from sqlalchemy import create_engine
>>> from leadheat.store.models import Base
>>> engine = create_engine("sqlite://")
>>> Base.metadata.create_all(engine)
>>> now = datetime(2026, 11, 1, tzinfo=UTC)
>>> with engine.begin() as connection:
...     record(connection, now, "cli", AuditAction.OUTCOME, "lead:17", {"outcome": "won"})
...     (entry,) = entries(connection)
>>> entry.actor, entry.action, entry.subject, entry.detail
('cli', 'outcome.record', 'lead:17', {'outcome': 'won'})
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select

from leadheat.store.models import AuditRecord

DEFAULT_ACTOR = "python"
"""Who acts when the library is called directly; the CLI says ``cli``, the API ``api:<prefix>``."""


class AuditAction(enum.StrEnum):
    """What was done. The subject says to what; the detail holds the numbers."""

    PLAYBOOK_APPLY = "playbook.apply"
    OUTCOME = "outcome.record"
    OWNER = "lead.owner"
    LEAD_EXPORT = "lead.export"
    LEAD_ERASE = "lead.erase"
    KEY_CREATE = "key.create"
    KEY_REVOKE = "key.revoke"
    REP_ADD = "rep.add"
    REP_PAUSE = "rep.pause"
    REP_RESUME = "rep.resume"
    DELIVERY_RETRY = "delivery.retry"
    USER_ADD = "user.add"
    LEAD_MERGE = "lead.merge"
    MERGE_SUGGEST = "merge.suggest"
    MERGE_CONFIRM = "merge.confirm"
    MERGE_DISMISS = "merge.dismiss"
    COLLECT_REFUSED = "collect.refused"
    ACCOUNT_MOVE = "account.move"
    ACCOUNT_OWNER = "account.owner"


@dataclass(frozen=True)
class AuditEntry:
    """One line of the audit log."""

    id: int
    at: datetime
    actor: str
    action: str
    subject: str
    detail: Mapping[str, Any]


def lead_subject(lead_id: int) -> str:
    """How the log names a lead: by its internal number only.

    >>> lead_subject(17)
    'lead:17'
    """
    return f"lead:{lead_id}"


def record(
    connection: Connection,
    now: datetime,
    actor: str,
    action: AuditAction,
    subject: str,
    detail: Mapping[str, Any] | None = None,
) -> None:
    """Add one record in the caller's transaction."""
    record_many(connection, now, actor, [(action, subject, detail)])


def record_many(
    connection: Connection,
    now: datetime,
    actor: str,
    items: Sequence[tuple[AuditAction, str, Mapping[str, Any] | None]],
) -> None:
    """Add several records at once (an import of outcomes writes one per outcome)."""
    if not items:
        return
    if not actor or len(actor) > 200:
        raise ValueError(f"actor {actor!r} must be 1 to 200 characters")
    connection.execute(
        insert(AuditRecord),
        [
            {
                "at": now,
                "actor": actor,
                "action": str(action),
                "subject": subject,
                "detail": dict(detail or {}),
            }
            for action, subject, detail in items
        ],
    )


def entries(
    connection: Connection, *, limit: int = 50, action: str | None = None
) -> list[AuditEntry]:
    """The latest records, newest first (optionally of one action)."""
    query = select(AuditRecord).order_by(AuditRecord.id.desc()).limit(limit)
    if action is not None:
        query = query.where(AuditRecord.action == action)
    return [
        AuditEntry(row.id, row.at, row.actor, row.action, row.subject, dict(row.detail or {}))
        for row in connection.execute(query)
    ]
