"""SLA clocks as people see them (per lead, per rep, only those running; timings per rep),
and the escalation of every clock past its deadline that the worker runs.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, select

from leadheat.core import Core, on_current_playbook
from leadheat.playbook import Playbook
from leadheat.speed.dispatch import Dispatcher
from leadheat.store.clocks import ClockView, RepTimings, due_clocks, list_clocks, timings_by_rep
from leadheat.store.models import Lead


def sla_clocks(
    core: Core,
    *,
    lead: str | int | None = None,
    owner: str | None = None,
    open_only: bool = False,
    limit: int = 100,
) -> list[ClockView]:
    """SLA clocks, newest first: per lead, per rep, or only those still running."""
    with core.engine.connect() as connection:
        lead_id = core.find_lead(connection, lead) if lead is not None else None
        return list_clocks(
            connection, lead_id=lead_id, owner=owner, open_only=open_only, limit=limit
        )


def lead_names(core: Core, lead_ids: list[int]) -> dict[int, tuple[str, str | None]]:
    """Each lead's key as people know it (email, else external id, else ``id:N``) and its
    name: what ``leadheat sla`` lists clocks by, rather than the numeric id."""
    if not lead_ids:
        return {}
    with core.engine.connect() as connection:
        rows = connection.execute(
            select(Lead.id, Lead.email, Lead.external_id, Lead.name).where(
                Lead.id.in_(sorted(set(lead_ids)))
            )
        )
        return {row.id: (row.email or row.external_id or f"id:{row.id}", row.name) for row in rows}


def sla_by_rep(core: Core, since: datetime | None = None) -> list[RepTimings]:
    """Per rep: clocks met, missed, breached and running, and the median response."""
    with core.engine.connect() as connection:
        return timings_by_rep(connection, core.clock(), since)


@on_current_playbook
def escalate(core: Core) -> int:
    """Escalate every SLA clock past its deadline (the worker calls this)."""
    version, book = core.playbook()
    now = core.clock()
    with core.engine.connect() as connection:  # a read first: most passes find nothing
        if not due_clocks(connection, now, 1, lock=False):
            return 0
    count, queued = core.write(lambda c: _escalate(c, book, now), version)
    if queued:
        core.outbox_ready.set()
    return count


def _escalate(connection: Connection, book: Playbook, now: datetime) -> tuple[int, int]:
    dispatcher = Dispatcher(connection, book, now)
    return dispatcher.escalate(), dispatcher.notices
