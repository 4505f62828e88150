"""The outbox as the worker and the operator see it: due notifications leased to a worker,
delivered or failed, listed, retried by hand; and the database's webhook signing secret.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from leadheat.core import Core
from leadheat.errors import LeadheatError
from leadheat.store import audit, outbox
from leadheat.store.audit import DEFAULT_ACTOR, AuditAction
from leadheat.store.outbox import DELIVERY_STATUSES, DeliveryView


def claim_deliveries(
    core: Core, lease: timedelta, limit: int = 20, max_attempts: int | None = None
) -> list[DeliveryView]:
    """Lease due notifications to the calling worker (giving up on those that have had
    ``max_attempts`` already)."""
    now = core.clock()
    with core.engine.connect() as connection:  # a read first: most passes find nothing
        if not outbox.any_due(connection, now):
            return []
    with core.transaction() as connection:
        return outbox.claim(connection, core.clock(), lease, limit, max_attempts)


def deliveries_done(core: Core, delivery_ids: Sequence[int]) -> None:
    """Record these notifications as delivered."""
    if delivery_ids:
        with core.transaction() as connection:
            outbox.delivered(connection, delivery_ids, core.clock())


def delivery_failed(core: Core, delivery_id: int, error: str, retry_in: timedelta | None) -> None:
    """Record a failed attempt; retry after ``retry_in``, or give up when ``None``."""
    now = core.clock()
    with core.transaction() as connection:
        outbox.failed(
            connection, delivery_id, error, now + retry_in if retry_in is not None else None
        )


def deliveries(
    core: Core, *, status: str | None = None, lead: str | int | None = None, limit: int = 100
) -> list[DeliveryView]:
    """Notifications, newest first: what was sent, what is waiting, what failed."""
    if status is not None and status not in DELIVERY_STATUSES:
        raise LeadheatError(f"status {status!r} must be one of {', '.join(DELIVERY_STATUSES)}")
    with core.engine.connect() as connection:
        lead_id = core.find_lead(connection, lead) if lead is not None else None
        return outbox.list_deliveries(connection, status=status, lead_id=lead_id, limit=limit)


def retry_delivery(core: Core, delivery_id: int, *, actor: str = DEFAULT_ACTOR) -> None:
    """Send a failed notification again now."""
    now = core.clock()
    with core.transaction() as connection:
        if not outbox.retry(connection, delivery_id, now):
            raise LeadheatError(f"no undelivered notification with id {delivery_id}")
        audit.record(connection, now, actor, AuditAction.DELIVERY_RETRY, f"delivery:{delivery_id}")
    core.outbox_ready.set()


def signing_secret(core: Core) -> str:
    """The database's own webhook signing secret (used when ``LEADHEAT_WEBHOOK_SECRET``
    and the alert's ``secret_env`` are unset)."""
    with core.transaction() as connection:
        return outbox.signing_secret(connection, core.clock())
