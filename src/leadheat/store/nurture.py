"""Nurture sequences in the database: who is enrolled where, who unsubscribed, and the
checks that stop a sequence before it sends.

Every send re-checks the lead (outcome, touch, reply or bounce since enrolment,
unsubscribe), inside the transaction that queues the mail, so a stop recorded a moment
earlier always wins over a step that was due.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, insert, select, update

from leadheat.store.models import (
    Delivery,
    Enrollment,
    Event,
    Lead,
    LeadState,
    Touch,
    Unsubscribe,
)


class EnrollmentError(ValueError):
    """An enrolment that cannot be made (already enrolled, unsubscribed, no address)."""


@dataclass(frozen=True)
class EnrollmentView:
    id: int
    lead_id: int
    sequence: str
    step: int
    status: str
    enrolled_at: datetime
    next_at: datetime | None
    stopped_at: datetime | None
    stop_reason: str | None
    enrolled_by: str


def _view(row: Any) -> EnrollmentView:
    return EnrollmentView(
        row.id,
        row.lead_id,
        row.sequence,
        row.step,
        row.status,
        row.enrolled_at,
        row.next_at,
        row.stopped_at,
        row.stop_reason,
        row.enrolled_by,
    )


def normal(email: str) -> str:
    return email.strip().lower()


def unsubscribed(connection: Connection, emails: Sequence[str]) -> set[str]:
    """Which of these addresses (any case) asked for no more mail."""
    wanted = {normal(email) for email in emails if email}
    if not wanted:
        return set()
    return set(
        connection.execute(
            select(Unsubscribe.email).where(Unsubscribe.email.in_(sorted(wanted)))
        ).scalars()
    )


def every_unsubscribed(connection: Connection) -> set[str]:
    """Every address that unsubscribed (a short list: read whole, not by a huge ``IN``)."""
    return set(connection.execute(select(Unsubscribe.email)).scalars())


def enroll(
    connection: Connection,
    lead_id: int,
    sequence: str,
    first_at: datetime,
    now: datetime,
    by: str,
) -> int:
    """Enrol a lead (once per sequence, ever: a second run of the same mails is spam)."""
    row = connection.execute(
        select(Lead.email, LeadState.status)
        .join(LeadState, LeadState.lead_id == Lead.id, isouter=True)
        .where(Lead.id == lead_id)
    ).one()
    if not row.email:
        raise EnrollmentError(f"lead {lead_id} has no email address")
    if row.status not in (None, "open"):
        raise EnrollmentError(f"lead {lead_id} is {row.status}: nothing to nurture")
    if unsubscribed(connection, [row.email]):
        raise EnrollmentError(f"lead {lead_id} unsubscribed from nurture mail")
    earlier = connection.execute(
        select(Enrollment.status, Enrollment.enrolled_at).where(
            Enrollment.lead_id == lead_id, Enrollment.sequence == sequence
        )
    ).first()
    if earlier is not None:
        raise EnrollmentError(
            f"lead {lead_id} was enrolled in {sequence!r} on "
            f"{earlier.enrolled_at:%Y-%m-%d} ({earlier.status})"
        )
    return int(
        connection.execute(
            insert(Enrollment)
            .values(
                lead_id=lead_id,
                sequence=sequence,
                step=0,
                status="active",
                enrolled_at=now,
                next_at=first_at,
                enrolled_by=by,
            )
            .returning(Enrollment.id)
        ).scalar_one()
    )


def stop(
    connection: Connection,
    lead_ids: Sequence[int],
    now: datetime,
    reason: str,
    sequence: str | None = None,
    happened_at: datetime | None = None,
) -> int:
    """Stop the active enrolments of these leads (in one sequence, or all; with
    ``happened_at``, only those enrolled by then: a touch last year stops nothing new)."""
    if not lead_ids:
        return 0
    query = update(Enrollment).where(
        Enrollment.lead_id.in_(list(lead_ids)), Enrollment.status == "active"
    )
    if happened_at is not None:
        query = query.where(Enrollment.enrolled_at <= happened_at)
    if sequence is not None:
        query = query.where(Enrollment.sequence == sequence)
    result = connection.execute(
        query.values(status="stopped", stopped_at=now, stop_reason=reason, next_at=None)
    )
    return int(result.rowcount or 0)


def stop_many(connection: Connection, happened: Sequence[tuple[int, datetime]], reason: str) -> int:
    """Stop sequences for touches or outcomes ``(lead id, when)``: one query when none of
    these leads is in a sequence, as on most imports."""
    latest: dict[int, datetime] = {}
    for lead_id, at in happened:
        latest[lead_id] = max(at, latest.get(lead_id, at))
    if not latest:
        return 0
    active = set(
        connection.execute(
            select(Enrollment.lead_id).where(
                Enrollment.lead_id.in_(sorted(latest)), Enrollment.status == "active"
            )
        ).scalars()
    )
    return sum(
        stop(connection, [lead_id], latest[lead_id], reason, happened_at=latest[lead_id])
        for lead_id in sorted(active)
    )


def unsubscribe(
    connection: Connection, email: str, lead_id: int | None, now: datetime, source: str
) -> bool:
    """Record the address's unsubscribe; stop its sequences and cancel queued nurture mail
    to it. Returns whether it is new (a second click changes nothing)."""
    address = normal(email)
    known = bool(unsubscribed(connection, [address]))
    if not known:
        connection.execute(
            insert(Unsubscribe).values(email=address, lead_id=lead_id, at=now, source=source)
        )
    leads = list(
        connection.execute(select(Lead.id).where(func.lower(Lead.email) == address)).scalars()
    )
    if lead_id is not None and lead_id not in leads:
        leads.append(lead_id)
    stop(connection, leads, now, "unsubscribe")
    if leads:
        connection.execute(
            update(Delivery)
            .where(
                Delivery.lead_id.in_(leads),
                Delivery.trigger == "nurture",
                Delivery.status == "pending",
            )
            .values(status="cancelled", last_error="unsubscribed")
        )
    return not known


def any_due(connection: Connection, now: datetime) -> bool:
    """Whether a step is due: one indexed read, so that an idle worker writes nothing."""
    found = connection.execute(
        select(Enrollment.id)
        .where(Enrollment.status == "active", Enrollment.next_at <= now)
        .limit(1)
    ).first()
    return found is not None


def due(connection: Connection, now: datetime, limit: int) -> list[EnrollmentView]:
    """Active enrolments whose next step is due, locked against other workers."""
    query = (
        select(Enrollment)
        .where(Enrollment.status == "active", Enrollment.next_at <= now)
        .order_by(Enrollment.next_at, Enrollment.id)
        .limit(limit)
    )
    if connection.dialect.name != "sqlite":
        query = query.with_for_update(skip_locked=True)
    return [_view(row) for row in connection.execute(query)]


def why_stop(
    connection: Connection,
    item: EnrollmentView,
    email: str | None,
    status: str,
    stop_events: Sequence[str],
) -> str | None:
    """The reason this enrolment must stop now, or ``None`` to send its next step."""
    if status != "open":
        return "outcome"
    if not email:
        return "no address"
    if unsubscribed(connection, [email]):
        return "unsubscribe"
    touched = connection.execute(
        select(Touch.id)
        .where(Touch.lead_id == item.lead_id, Touch.occurred_at >= item.enrolled_at)
        .limit(1)
    ).first()
    if touched is not None:
        return "touch"
    answered = connection.execute(
        select(Event.type)
        .where(
            Event.lead_id == item.lead_id,
            Event.type.in_(list(stop_events)),
            Event.occurred_at >= item.enrolled_at,
        )
        .limit(1)
    ).first()
    if answered is not None:
        return "bounce" if "bounce" in answered.type else "reply"
    return None


def advance(
    connection: Connection, enrollment_id: int, step: int, next_at: datetime | None
) -> None:
    """Record a step as sent: the next is due at ``next_at`` (``None``: finished)."""
    connection.execute(
        update(Enrollment)
        .where(Enrollment.id == enrollment_id)
        .values(
            step=step,
            next_at=next_at,
            status="active" if next_at is not None else "finished",
        )
    )


def end(connection: Connection, enrollment_id: int, now: datetime, reason: str) -> None:
    connection.execute(
        update(Enrollment)
        .where(Enrollment.id == enrollment_id)
        .values(status="stopped", stopped_at=now, stop_reason=reason, next_at=None)
    )


def enrolled(connection: Connection, sequence: str) -> set[int]:
    """Leads ever enrolled in a sequence."""
    return set(
        connection.execute(
            select(Enrollment.lead_id).where(Enrollment.sequence == sequence)
        ).scalars()
    )


def list_enrollments(
    connection: Connection,
    *,
    lead_id: int | None = None,
    sequence: str | None = None,
    status: str | None = None,
    limit: int = 200,
) -> list[EnrollmentView]:
    query = select(Enrollment).order_by(Enrollment.enrolled_at.desc(), Enrollment.id.desc())
    if lead_id is not None:
        query = query.where(Enrollment.lead_id == lead_id)
    if sequence is not None:
        query = query.where(Enrollment.sequence == sequence)
    if status is not None:
        query = query.where(Enrollment.status == status)
    return [_view(row) for row in connection.execute(query.limit(limit))]
