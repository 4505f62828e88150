"""Stopping SLA clocks at the first touch, and how much working time each one took.

A touch answers every clock of its lead that started before it; the response is measured in
the owner team's business hours when the clock runs only while the team works, so a lead
that arrived on Friday evening and was called on Monday morning was answered in minutes.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection

from leadheat.playbook import Playbook
from leadheat.speed.calendar import ALWAYS, BusinessCalendar
from leadheat.store.clocks import open_clocks, stop_clock


def stop_clocks(
    connection: Connection,
    book: Playbook,
    touches: Sequence[tuple[int, datetime, str | None]],
) -> int:
    """Stop every open clock of these leads that started at or before one of their
    ``(lead_id, at, rep)`` touches; the earliest such touch counts. Returns clocks stopped."""
    by_lead: dict[int, list[tuple[datetime, str | None]]] = {}
    for lead_id, at, rep in touches:
        by_lead.setdefault(lead_id, []).append((at, rep))
    stopped = 0
    for lead_id, seen in by_lead.items():
        seen.sort(key=lambda item: item[0])
        for clock in open_clocks(connection, lead_id):
            first = next(((at, rep) for at, rep in seen if at >= clock.started_at), None)
            if first is None:
                continue
            at, rep = first
            calendar = (
                BusinessCalendar.of(book.speed.team(clock.team)) if clock.business_hours else ALWAYS
            )
            stop_clock(connection, clock.id, at, calendar.between(clock.started_at, at), rep)
            stopped += 1
    return stopped
