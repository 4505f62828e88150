"""Analytics over a :class:`~leadheat.service.Leadheat` store: what ``leadheat report``,
``backtest`` and ``expect`` and their API routes call.

Each function reads the store once, as of ``until`` (default now), and hands plain rows to the
pure modules beside it.
"""

from __future__ import annotations

import asyncio
import csv
import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from sqlalchemy import select

from leadheat.analytics.accounts import Members
from leadheat.analytics.backtest import (
    SWEEP,
    Comparison,
    Stream,
    SweepRow,
    compare,
    snapshot_instants,
    sweep_events,
    sweep_half_lives,
)
from leadheat.analytics.decisions import DEFAULT_HORIZON, TooLongError, load_story
from leadheat.analytics.expect import (
    MIN_SIMILAR,
    Expectation,
    Target,
    analogues,
    expect,
    target,
)
from leadheat.playbook import Playbook
from leadheat.service import LeadheatError, UnknownLeadError
from leadheat.store.models import Lead
from leadheat.store.ranking import list_leads
from leadheat.store.state import engagements, read_events
from leadheat.times import format_duration, from_micros, isoformat

if TYPE_CHECKING:
    from leadheat.service import Leadheat


MAX_SNAPSHOTS = 1000
"""At most this many snapshots in an event sweep: a tiny ``--every`` is a mistake, not a job."""


class AnalyticsInputError(LeadheatError):
    """A backtest or expectation was asked something it cannot answer; says what to change."""


def period(lh: Leadheat, since: datetime | None, until: datetime | None) -> datetime:
    """The instant a question is asked as of: ``until``, or now; after ``since``."""
    now = until or lh.clock()
    if since is not None and since >= now:
        raise AnalyticsInputError(f"since {isoformat(since)} must be before until {isoformat(now)}")
    return now


def backtest(
    lh: Leadheat,
    candidate: Playbook,
    against: Playbook | None = None,
    *,
    horizon: timedelta = DEFAULT_HORIZON,
    since: datetime | None = None,
    until: datetime | None = None,
    deadline: float | None = None,
) -> Comparison:
    """The candidate playbook against ``against`` (default: the one in use), over every lead
    that arrived in ``[since, until)``, each as of its first touch; past ``deadline`` (a
    ``time.monotonic()`` value) it stops with
    :class:`~leadheat.analytics.decisions.TooLongError`."""
    now = period(lh, since, until)
    current = against if against is not None else lh.playbook()[1]
    with lh.engine.connect() as connection:
        story = load_story(connection, now, since=since)
        members = Members(connection)
    return compare(story, current, candidate, horizon, deadline, members)


async def backtest_within(
    seconds: float,
    lh: Leadheat,
    candidate: Playbook,
    against: Playbook | None = None,
    *,
    horizon: timedelta = DEFAULT_HORIZON,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Comparison:
    """:func:`backtest` for a server: on a worker thread, so the event loop keeps answering
    (health checks, other pages), and given up after ``seconds`` with
    :class:`~leadheat.analytics.decisions.TooLongError`. The thread stops on its own at the
    same deadline, between two leads, so an abandoned backtest does not go on working."""
    deadline = time.monotonic() + seconds
    work = asyncio.to_thread(
        backtest,
        lh,
        candidate,
        against,
        horizon=horizon,
        since=since,
        until=until,
        deadline=deadline,
    )
    try:
        return await asyncio.wait_for(work, seconds)
    except TimeoutError as error:  # TooLongError from the thread, or the wait's own
        raise TooLongError(
            f"the backtest took longer than its limit of {seconds:g} s "
            "(LEADHEAT_BACKTEST_TIMEOUT); try a shorter period (since, until)"
        ) from error


def half_life_sweep(
    lh: Leadheat,
    half_lives: Sequence[timedelta] = SWEEP,
    *,
    horizon: timedelta = DEFAULT_HORIZON,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[SweepRow]:
    """Which half-life's heat at the first touch best predicts a win within ``horizon``."""
    now = period(lh, since, until)
    _, book = lh.playbook()
    with lh.engine.connect() as connection:
        story = load_story(connection, now, since=since)
    return sweep_half_lives(story, book, half_lives, horizon)


def stream_sweep(
    lh: Leadheat,
    converts_on: str,
    half_lives: Sequence[timedelta] = SWEEP,
    *,
    within: timedelta = timedelta(days=28),
    every: timedelta = timedelta(days=28),
    since: datetime | None = None,
    until: datetime | None = None,
    most: int = MAX_SNAPSHOTS,
) -> list[SweepRow]:
    """Which half-life's heat best predicts an event of type ``converts_on`` within
    ``within``, at snapshots every ``every`` from ``since`` (default: the first event) until
    ``until − within`` (default: the last event), so every snapshot's window is complete."""
    _, book = lh.playbook()
    with lh.engine.connect() as connection:
        rows = read_events(connection, book)
    if not rows:
        raise AnalyticsInputError("no events stored: nothing to sweep")
    types = [str(r[1]) for r in rows]
    valued = engagements(
        book,
        np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows)),
        types,
        np.fromiter((r[2] for r in rows), dtype=np.int64, count=len(rows)),
        lambda i: rows[i][3],
    )
    stream = Stream(
        lead=valued.lead_ids,
        at_us=valued.at_us,
        points=valued.points,
        converts=np.fromiter((t == converts_on for t in types), dtype=bool, count=len(rows)),
    )
    if not stream.converts.any():
        raise AnalyticsInputError(f"--converts-on {converts_on!r}: no stored event has that type")
    start = since or _instant(stream.at_us.min()) + every
    end = (until or _instant(stream.at_us.max())) - within
    if end < start:
        raise AnalyticsInputError(
            f"no snapshot fits: the history from {isoformat(start)} to {isoformat(end)} "
            f"is shorter than --within {within}"
        )
    count = (end - start) // every + 1
    if count > most:
        raise AnalyticsInputError(
            f"every {format_duration(every)} makes {count:,} snapshots (at most {most:,}): "
            "take a longer step or a shorter period"
        )
    return sweep_events(stream, snapshot_instants(start, end, every), within, half_lives)


def _instant(micros: int) -> datetime:
    return from_micros(int(micros))


def expectation(
    lh: Leadheat,
    *,
    lead_ids: Sequence[int] | None = None,
    temperature: str | None = None,
    source: str | None = None,
    horizon: timedelta = DEFAULT_HORIZON,
    min_similar: int = MIN_SIMILAR,
) -> Expectation:
    """Expected conversions within ``horizon`` for these leads (see :func:`resolve`), or for
    every open lead of this temperature and/or source."""
    now = lh.clock()
    _, book = lh.playbook()
    wanted = None if lead_ids is None else set(lead_ids)
    with lh.engine.connect() as connection:
        past = analogues(load_story(connection, now).leads, book, horizon, now)
        ranked = {r.lead_id: r for r in list_leads(connection, book, now)}
        fields = {
            row.id: (row.created_at, row.source)
            for row in connection.execute(
                select(Lead.id, Lead.created_at, Lead.source).where(Lead.merged_into_id.is_(None))
            )
        }
    targets: list[Target] = []
    for lead_id, item in ranked.items():
        if wanted is not None and lead_id not in wanted:
            continue
        if wanted is None and item.status != "open":
            continue
        created, lead_source = fields[lead_id]
        if temperature is not None and item.verdict.temperature.value != temperature:
            continue
        if source is not None and lead_source != source:
            continue
        targets.append(target(lead_id, item.verdict.temperature.value, created, lead_source, now))
    return expect(targets, past, min_similar=min_similar)


def resolve(lh: Leadheat, references: Sequence[tuple[str, str]]) -> list[int]:
    """Lead ids for ``(where, reference)`` pairs; an unknown lead is an error naming where.

    ``reference`` is an email, an external id, ``anon:…`` or ``id:N``."""
    found = []
    for where, reference in references:
        try:
            found.append(lh.lead_id(reference))
        except UnknownLeadError as error:
            raise AnalyticsInputError(f"{where}: {error}") from None
    return found


def read_lead_list(path: Path) -> list[tuple[str, str]]:
    """``(where, reference)`` for each row of the ``lead`` (or ``email``, or
    ``external_id``) column of a CSV file; ``where`` names the line."""
    with path.open(newline="", encoding="utf-8-sig") as file:
        reader = csv.DictReader(file)
        names = reader.fieldnames or []
        column = next((c for c in ("lead", "email", "external_id") if c in names), None)
        if column is None:
            raise AnalyticsInputError(
                f"{path}: line 1 needs a column named lead, email or external_id "
                f"(found: {', '.join(names) or 'nothing'})"
            )
        found = []
        for row in reader:
            value = (row.get(column) or "").strip()
            if not value:
                raise AnalyticsInputError(
                    f"{path}: line {reader.line_num}, column {column!r}: empty (name a lead)"
                )
            found.append((f"{path}: line {reader.line_num}, column {column!r}", value))
    return found
