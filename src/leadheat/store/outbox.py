"""The outbox: notifications written with the change that caused them, sent by workers.

A worker *claims* due rows by setting a lease in a short transaction (on PostgreSQL with
``FOR UPDATE SKIP LOCKED``, so several workers never claim the same row; SQLite runs one
writer at a time), sends outside any transaction, then records the result. A worker killed
mid-send leaves a lease that runs out, and the row is sent again with the same idempotency
key: at least once on the wire, exactly once for a receiver that honours the key.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, insert, select, update

from leadheat.store.models import Delivery, Secret

SIGNING_SECRET = "webhook_signing"
DELIVERY_STATUSES = ("pending", "delivered", "failed")


@dataclass(frozen=True)
class DeliveryView:
    """One notification to one channel and where it stands."""

    id: int
    key: str
    lead_id: int | None
    trigger: str
    channel: str
    target: str
    secret_env: str | None
    payload: Mapping[str, Any]
    status: str
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None


def _view(row: Any) -> DeliveryView:
    return DeliveryView(
        id=row.id,
        key=row.key,
        lead_id=row.lead_id,
        trigger=row.trigger,
        channel=row.channel,
        target=row.target,
        secret_env=row.secret_env,
        payload=row.payload,
        status=row.status,
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at,
        last_error=row.last_error,
        created_at=row.created_at,
        delivered_at=row.delivered_at,
    )


def enqueue(
    connection: Connection,
    *,
    lead_id: int | None,
    clock_id: int | None,
    trigger: str,
    channel: str,
    target: str,
    secret_env: str | None,
    payload: dict[str, Any],
    now: datetime,
    key: str | None = None,
) -> str:
    """Add one notification to the outbox (in the caller's transaction); returns its key
    (``key``: a deterministic one, for notifications that must exist once, like digests)."""
    key = key or uuid.uuid4().hex
    connection.execute(
        insert(Delivery).values(
            key=key,
            lead_id=lead_id,
            clock_id=clock_id,
            trigger=trigger,
            channel=channel,
            target=target,
            secret_env=secret_env,
            payload={**payload, "id": key},
            status="pending",
            attempts=0,
            next_attempt_at=now,
            created_at=now,
        )
    )
    return key


def claim(
    connection: Connection,
    now: datetime,
    lease: timedelta,
    limit: int = 20,
    max_attempts: int | None = None,
) -> list[DeliveryView]:
    """Lease up to ``limit`` due notifications to this worker until ``now + lease``.

    A due one that has had ``max_attempts`` already fails instead: its last attempt never
    reported back (its worker was stopped mid-send), and the attempt limit is a promise.
    """
    due = (
        Delivery.status == "pending",
        Delivery.next_attempt_at <= now,
        (Delivery.leased_until.is_(None)) | (Delivery.leased_until <= now),
    )
    if max_attempts is not None:
        connection.execute(
            update(Delivery)
            .where(*due, Delivery.attempts >= max_attempts)
            .values(
                status="failed",
                leased_until=None,
                last_error=f"gave up after {max_attempts} attempts; the last never finished",
            )
        )
    query = (
        select(Delivery).where(*due).order_by(Delivery.next_attempt_at, Delivery.id).limit(limit)
    )
    if connection.dialect.name != "sqlite":
        query = query.with_for_update(skip_locked=True)
    rows = list(connection.execute(query))
    if rows:
        connection.execute(
            update(Delivery)
            .where(Delivery.id.in_([row.id for row in rows]))
            .values(leased_until=now + lease, attempts=Delivery.attempts + 1)
        )
    return [_view(row) for row in rows]


def any_due(connection: Connection, now: datetime) -> bool:
    """Whether some notification is due (a cheap read before taking the write lock)."""
    return (
        connection.execute(
            select(Delivery.id)
            .where(Delivery.status == "pending", Delivery.next_attempt_at <= now)
            .where((Delivery.leased_until.is_(None)) | (Delivery.leased_until <= now))
            .limit(1)
        ).first()
        is not None
    )


def delivered(connection: Connection, delivery_ids: Sequence[int], now: datetime) -> None:
    connection.execute(
        update(Delivery)
        .where(Delivery.id.in_(list(delivery_ids)))
        .values(status="delivered", delivered_at=now, leased_until=None, last_error=None)
    )


def failed(connection: Connection, delivery_id: int, error: str, retry_at: datetime | None) -> None:
    """Record a failed attempt: try again at ``retry_at``, or give up when ``None``."""
    connection.execute(
        update(Delivery)
        .where(Delivery.id == delivery_id)
        .values(
            status="pending" if retry_at is not None else "failed",
            next_attempt_at=retry_at if retry_at is not None else Delivery.next_attempt_at,
            leased_until=None,
            last_error=error[:2000],
        )
    )


def retry(connection: Connection, delivery_id: int, now: datetime) -> bool:
    """Send a failed (or pending) notification again now; ``False`` if there is none."""
    result = connection.execute(
        update(Delivery)
        .where(Delivery.id == delivery_id, Delivery.status != "delivered")
        .values(status="pending", next_attempt_at=now, leased_until=None)
    )
    return bool(result.rowcount)


def list_deliveries(
    connection: Connection,
    *,
    status: str | None = None,
    lead_id: int | None = None,
    limit: int = 100,
) -> list[DeliveryView]:
    """Notifications, newest first."""
    query = select(Delivery).order_by(Delivery.id.desc()).limit(limit)
    if status is not None:
        query = query.where(Delivery.status == status)
    if lead_id is not None:
        query = query.where(Delivery.lead_id == lead_id)
    return [_view(row) for row in connection.execute(query)]


def signing_secret(connection: Connection, now: datetime) -> str:
    """The database's own webhook signing secret, made on first use."""
    found = connection.execute(
        select(Secret.value).where(Secret.name == SIGNING_SECRET)
    ).scalar_one_or_none()
    if found is not None:
        return found
    value = "whsec_" + secrets.token_urlsafe(32)
    connection.execute(insert(Secret).values(name=SIGNING_SECRET, value=value, created_at=now))
    return value
