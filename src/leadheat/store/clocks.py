"""SLA clocks as stored: started by a trigger, stopped by the first touch, breached at the
deadline (when each of these happens is decided in ``speed/``).

Every clock keeps its start, deadline, stop and the working time it took, per lead and per
rep, for the analytics that show whether the team is fast enough.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Row, bindparam, insert, select, update

from leadheat.store.driver import select_all
from leadheat.store.models import SlaClock
from leadheat.times import to_micros


@dataclass(frozen=True)
class ClockView:
    """One SLA clock as lists and the API show it."""

    id: int
    lead_id: int
    trigger: str
    owner: str | None
    team: str
    started_at: datetime
    deadline: datetime
    stopped_at: datetime | None
    response: timedelta | None
    """Working time from the trigger to the first touch."""
    touched_by: str | None
    breached_at: datetime | None

    def state(self, now: datetime) -> str:
        """``met``, ``missed`` (touched late), ``breached`` (still untouched, late) or
        ``running``."""
        if self.stopped_at is not None:
            return "met" if self.stopped_at <= self.deadline else "missed"
        return "breached" if now >= self.deadline else "running"


def _view(row: Any) -> ClockView:
    return ClockView(
        id=row.id,
        lead_id=row.lead_id,
        trigger=row.trigger,
        owner=row.owner,
        team=row.team,
        started_at=row.started_at,
        deadline=row.deadline,
        stopped_at=row.stopped_at,
        response=None if row.response_us is None else timedelta(microseconds=row.response_us),
        touched_by=row.touched_by,
        breached_at=row.breached_at,
    )


_RUNNING_OF = (
    select(SlaClock.id, SlaClock.lead_id, SlaClock.deadline, SlaClock.owner, SlaClock.breached_at)
    .where(SlaClock.lead_id.in_(bindparam("lead_ids", expanding=True)))
    .where(SlaClock.stopped_at.is_(None))
    .order_by(SlaClock.lead_id, SlaClock.id.desc())
)
"""The open clocks of some leads, newest first; breached ones are left out by the caller:
with ``breached_at IS NULL`` in the query, SQLite's planner reads every running clock
through ``ix_sla_clocks_due`` instead of these leads' through ``ix_sla_clocks_lead``."""
_INSERT = insert(SlaClock).returning(SlaClock.id)
"""Built once: a speed-to-lead reaction starts a clock per alerted lead, and building the
statement anew each time cost more than running it (SQLAlchemy keeps a built statement's
cache key)."""
_CHUNK = 500


@dataclass(frozen=True)
class ClockStart:
    """A clock a trigger asks for: see :func:`start_clocks`."""

    lead_id: int
    trigger: str
    owner: str | None
    team: str
    business_hours: bool
    started_at: datetime
    deadline: datetime


def start_clock(
    connection: Connection,
    lead_id: int,
    trigger: str,
    owner: str | None,
    team: str,
    business_hours: bool,
    started_at: datetime,
    deadline: datetime,
) -> tuple[int, datetime]:
    """Start the lead's clock, or tighten the one already running: a lead has one clock at
    a time, so one touch answers it and one breach escalates it. A later trigger with an
    earlier deadline (the lead turned hot an hour after it was qualified) takes it over; the
    start stays, because the lead has waited since then. Returns ``(clock id, deadline)``."""
    start = ClockStart(lead_id, trigger, owner, team, business_hours, started_at, deadline)
    return start_clocks(connection, [start])[0]


def start_clocks(
    connection: Connection, starts: Sequence[ClockStart]
) -> list[tuple[int, datetime]]:
    """:func:`start_clock` for several leads (each at most once) in a few statements: one
    look for their running clocks, one insert for the clocks that are new. A reaction
    that alerts on twenty leads of one batch pays three statements, not forty."""
    if len({start.lead_id for start in starts}) != len(starts):
        raise ValueError("start_clocks: each lead at most once")
    running: dict[int, Any] = {}
    ids = sorted(start.lead_id for start in starts)
    for begin in range(0, len(ids), _CHUNK):
        for row in connection.execute(
            _RUNNING_OF, {"lead_ids": ids[begin : begin + _CHUNK]}
        ):  # newest first: the first running one of each lead is its clock
            if row.breached_at is None:
                running.setdefault(row.lead_id, row)
    result: list[tuple[int, datetime] | None] = []
    fresh: list[tuple[int, ClockStart]] = []
    for index, start in enumerate(starts):
        found = running.get(start.lead_id)
        if found is None:
            fresh.append((index, start))
            result.append(None)
            continue
        if found.owner is None and start.owner is not None:  # the lead found an owner since
            connection.execute(
                update(SlaClock)
                .where(SlaClock.id == found.id)
                .values(owner=start.owner, team=start.team)
            )
        if start.deadline < found.deadline:
            connection.execute(
                update(SlaClock)
                .where(SlaClock.id == found.id)
                .values(
                    trigger=start.trigger,
                    deadline=start.deadline,
                    business_hours=start.business_hours,
                )
            )
            result.append((found.id, start.deadline))
        else:
            result.append((found.id, found.deadline))
    clock_of: dict[int, int] = {}
    for begin in range(0, len(fresh), _CHUNK):
        chunk = fresh[begin : begin + _CHUNK]
        sql = (
            'INSERT INTO sla_clocks (lead_id, "trigger", owner, team, business_hours, '
            "started_at, deadline) VALUES "
            + ", ".join(["(?, ?, ?, ?, ?, ?, ?)"] * len(chunk))
            + " RETURNING id, lead_id"
        )
        parameters = [
            value
            for _, start in chunk
            for value in (
                start.lead_id,
                start.trigger,
                start.owner,
                start.team,
                start.business_hours,
                to_micros(start.started_at),
                to_micros(start.deadline),
            )
        ]
        clock_of.update(
            (int(lead_id), int(clock_id))
            for clock_id, lead_id in select_all(connection, sql, *parameters)
        )
    for index, start in fresh:
        result[index] = (clock_of[start.lead_id], start.deadline)
    return [item for item in result if item is not None]


def new_clock(
    connection: Connection,
    lead_id: int,
    trigger: str,
    owner: str | None,
    team: str,
    business_hours: bool,
    started_at: datetime,
    deadline: datetime,
) -> int:
    """A new clock whatever else runs: :func:`start_clock`'s insert, and the fresh clock a
    lead reassigned after a breach gets for its new owner."""
    result = connection.execute(
        _INSERT,
        {
            "lead_id": lead_id,
            "trigger": trigger,
            "owner": owner,
            "team": team,
            "business_hours": business_hours,
            "started_at": started_at,
            "deadline": deadline,
        },
    )
    return int(result.scalar_one())


def open_clocks(connection: Connection, lead_id: int) -> Sequence[Row[Any]]:
    """The lead's clocks that no touch has stopped yet (breached ones included)."""
    return connection.execute(
        select(SlaClock).where(SlaClock.lead_id == lead_id, SlaClock.stopped_at.is_(None))
    ).all()


def stop_clock(
    connection: Connection,
    clock_id: int,
    stopped_at: datetime,
    response: timedelta,
    touched_by: str | None,
) -> None:
    """Stop one clock at a touch; ``response`` is the working time it took."""
    connection.execute(
        update(SlaClock)
        .where(SlaClock.id == clock_id)
        .values(
            stopped_at=stopped_at,
            response_us=response // timedelta(microseconds=1),
            touched_by=touched_by,
        )
    )


def due_clocks(
    connection: Connection, now: datetime, limit: int = 100, *, lock: bool = True
) -> list[ClockView]:
    """Open clocks past their deadline that nobody has escalated yet, locked for this
    transaction unless ``lock=False`` (skipped by other workers on PostgreSQL)."""
    query = (
        select(SlaClock)
        .where(
            SlaClock.stopped_at.is_(None),
            SlaClock.breached_at.is_(None),
            SlaClock.deadline <= now,
        )
        .order_by(SlaClock.deadline, SlaClock.id)
        .limit(limit)
    )
    if lock and connection.dialect.name != "sqlite":
        query = query.with_for_update(skip_locked=True)
    return [_view(row) for row in connection.execute(query)]


def mark_breached(connection: Connection, clock_id: int, now: datetime) -> None:
    connection.execute(update(SlaClock).where(SlaClock.id == clock_id).values(breached_at=now))


def list_clocks(
    connection: Connection,
    *,
    lead_id: int | None = None,
    owner: str | None = None,
    open_only: bool = False,
    limit: int = 100,
) -> list[ClockView]:
    """Clocks, newest first."""
    query = select(SlaClock).order_by(SlaClock.started_at.desc(), SlaClock.id.desc())
    if lead_id is not None:
        query = query.where(SlaClock.lead_id == lead_id)
    if owner is not None:
        query = query.where(SlaClock.owner == owner)
    if open_only:
        query = query.where(SlaClock.stopped_at.is_(None))
    return [_view(row) for row in connection.execute(query.limit(limit))]


@dataclass(frozen=True)
class RepTimings:
    """How fast one rep answers their clocks."""

    owner: str | None
    clocks: int
    met: int
    missed: int
    breached: int
    running: int
    median_response: timedelta | None
    """Median working time to the first touch, over the clocks that were touched."""


def timings_by_rep(
    connection: Connection, now: datetime, since: datetime | None = None
) -> list[RepTimings]:
    """Per rep (``None``: leads nobody could take), clocks started since ``since``."""
    query = select(SlaClock)
    if since is not None:
        query = query.where(SlaClock.started_at >= since)
    by_owner: dict[str | None, list[ClockView]] = {}
    for row in connection.execute(query):
        clock = _view(row)
        by_owner.setdefault(clock.owner, []).append(clock)
    result = []
    for owner, clocks in sorted(
        by_owner.items(), key=lambda item: (item[0] is None, item[0] or "")
    ):
        states = [clock.state(now) for clock in clocks]
        responses = sorted(c.response for c in clocks if c.response is not None)
        result.append(
            RepTimings(
                owner=owner,
                clocks=len(clocks),
                met=states.count("met"),
                missed=states.count("missed"),
                breached=states.count("breached"),
                running=states.count("running"),
                median_response=responses[len(responses) // 2] if responses else None,
            )
        )
    return result
