"""Follow-up state kept per lead, so that Tasks and Recovery read an index, not a replay.

A lead's temperature changes only at its recorded instants (events, evidence, outcomes) and
at the cooling instants the forecast gives between them (``hot_until``, ``warm_until``). So
from its latest fact on, a lead's future is known until the next write: the spell it is in
and the cooling spells the forecast foresees (:func:`leadheat.engage.spells.runs`, the
merging :func:`~leadheat.engage.spells.spells` uses). Each of those spells is stored as a
*phase* (``followup_phases``) with the task the cadence gives the lead during it, and the
lead's last hot spell, touches and events as one row (``followup_leads``). A read at ``now``
picks each lead's phase by comparing ``starts <= now < ends``: a lead whose forecast
``hot_until`` has passed is cooled at read time, with no background job.

Writes keep it current: triggers on ``lead_states``, ``touches``, ``leads`` and ``reps``
(migration 0011; 0012 numbers the marks) mark each written lead stale, whatever wrote it
(an API event, an import, a playbook re-score, a merge, an erasure). The keeper beside the
server (:mod:`leadheat.engage.keeper`) recomputes them as they come, and a read recomputes
whatever is still stale, from its history, before it reads the index. A lead with a fact
or touch after the asked instant (live traffic stamps events a moment after a read begins;
``--at`` in the past) is replayed on its own by :mod:`leadheat.engage.lists`, and every lead
is when there are too many such leads.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import pairwise
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from sqlalchemy import Connection, and_, func, or_, select

from leadheat.engage.spells import RANK, Run, _instants, runs
from leadheat.engage.tasks import Task, due_of, plan
from leadheat.playbook import CadenceRule, Playbook
from leadheat.scoring.evidence import required_fresh_until
from leadheat.scoring.fit import FitResult, fit_scorer
from leadheat.scoring.lead import LeadHistory, facts_through, status_at
from leadheat.scoring.temperature import Temperature, classify, forecast, heat_free
from leadheat.speed.calendar import BusinessCalendar
from leadheat.store.driver import CHUNK, chunked, execute_many, select_tuples_in
from leadheat.store.fields import lead_attributes
from leadheat.store.lives import load_lives
from leadheat.store.models import (
    Event,
    EvidenceRow,
    FollowupLead,
    FollowupPhase,
    FollowupStale,
    Lead,
    Outcome,
    Touch,
)
from leadheat.store.reps import list_reps
from leadheat.store.training import FEW, Lived
from leadheat.times import MAX_INSTANT, to_micros

if TYPE_CHECKING:
    from leadheat.service import Leadheat

T = TypeVar("T")


def lead_label(attributes: dict[str, object], lead_id: int) -> str:
    """How a list names a lead: its email, else its external id, else ``id:N``."""
    for name in ("email", "external_id"):
        value = attributes.get(name)
        if value:
            return str(value)
    return f"id:{lead_id}"


def text_of(attributes: Mapping[str, object], name: str) -> str | None:
    """An attribute as text, ``None`` when unset or empty (a lead's name, its owner)."""
    value = attributes.get(name)
    return str(value) if value else None


@dataclass(frozen=True)
class Phase:
    """One spell of a lead from its latest fact on, with the task the cadence gives it."""

    starts: datetime
    ends: datetime
    temperature: Temperature
    since: datetime
    rose: bool
    due: datetime


@dataclass(frozen=True)
class State:
    """A lead's follow-up state as of its latest fact."""

    lead_id: int
    owner: str | None
    created_at: datetime
    last_touch: datetime | None
    last_event_at: datetime | None
    is_open: bool
    lost: Run[None] | None
    """The last hot spell (it may still be going on: then it ends at ``hot_until``)."""
    phases: list[Phase]


def _quiet(
    history: LeadHistory, book: Playbook, instants: Sequence[datetime], fit: FitResult
) -> set[datetime]:
    """The instants at which the lead is warm, with nothing foreseen before the next one,
    whatever its heat: what :func:`timeline`'s judge would find there without working out
    the facts. An anonymous visitor's burst of page views is judged once, at its end.

    Such an instant brings only events that add heat (none a churn) and the next instant
    comes within ``min(warm_window, cold_after)`` of it, for a lead that cannot be hot:
    not qualified, evidence required that it never gave, or a model's floor (the timeline
    judges without a probability), with no evidence or outcome recorded to change that.
    Then at the instant its interest is *now*, so neither ``cold_after`` nor a churn (all
    earlier) makes it cold, :func:`~leadheat.scoring.temperature.heat_free` says warm, and
    the forecast cannot fall before the next instant: the judge's answer, exactly.
    """
    rules = book.temperature
    if history.evidence or history.outcomes or not history.events:
        return set()
    never_said = required_fresh_until((), rules.hot_requires, book.evidence.ttl)
    if fit.qualified and never_said is not None and rules.hot_min_probability is None:
        return set()
    soonest = min(rules.cold_after, rules.warm_window)
    churn = rules.churn_events
    adding: dict[datetime, bool] = {}
    worth: dict[str, bool] = {}  # by type, for events without properties (most of them)
    for event in history.events:
        interest = None if event.properties else worth.get(event.type)
        if interest is None:
            interest = event.type not in churn and book.points_for(event.type, event.properties) > 0
            if not event.properties:
                worth[event.type] = interest
        adding[event.at] = adding.get(event.at, True) and interest
    return {
        at
        for at, following in pairwise(instants)
        if adding.get(at, False) and at + soonest >= following
    }


def timeline(
    history: LeadHistory, book: Playbook, start: datetime, fit: FitResult
) -> list[Run[None]]:
    """Every spell of the lead from ``start`` on, the last ones as its forecast sees them.
    Judged with the scoring's own facts
    (:func:`~leadheat.scoring.lead.facts_through`, one pass), ``classify`` and ``forecast``
    (what ``score_history`` judges by), without the rest of a full score, and not at all
    at the :func:`_quiet` instants."""
    instants = _instants(history, start, MAX_INSTANT)
    quiet = _quiet(history, book, instants, fit)
    facts = facts_through(history, book, [at for at in instants if at not in quiet], fit)
    following = iter([*instants[1:], MAX_INSTANT])
    rules = book.temperature
    soonest = min(rules.cold_after, rules.warm_window)

    def judge(at: datetime) -> tuple[Temperature, datetime | None, datetime | None, None]:
        until = next(following)
        if at in quiet:
            return Temperature.WARM, None, None, None
        heat, known = next(facts)  # runs() judges each instant once, in order
        # runs() reads the forecast only where it falls before the next instant. A cold
        # lead has none; a warm one cools no sooner than ``forecast``'s warm window or
        # ``cold_after`` from its last interest, whichever is first. Where the temperature
        # does not depend on the heat, the heat is not worked out.
        settled = heat_free(known, at, book)
        if settled is Temperature.COLD:
            return settled, None, None, None
        engaged = known.last_engaged_at
        lasts = engaged is not None and engaged + soonest >= until
        if settled is Temperature.WARM and lasts:
            return settled, None, None, None
        heat_now = heat.at(at)
        verdict = classify(heat_now, known, at, book, explain=False)
        temperature = verdict.temperature
        if temperature is Temperature.COLD or (temperature is Temperature.WARM and lasts):
            return temperature, None, None, None
        cooling = forecast(heat, known, verdict, at, book)
        return temperature, cooling.hot_until, cooling.warm_until, None

    return runs(instants, MAX_INSTANT, judge)


def cadence_rules(book: Playbook) -> dict[Temperature, CadenceRule]:
    """The cadence's rule of each temperature, read once for many leads."""
    return {temperature: book.cadence.rule(temperature.value) for temperature in Temperature}


def compute(
    lead: Lived,
    book: Playbook,
    calendars: dict[str, BusinessCalendar],
    default: BusinessCalendar,
    fit_of: Callable[[Mapping[str, Any]], FitResult] | None = None,
    rules: Mapping[Temperature, CadenceRule] | None = None,
) -> State:
    """The lead's state: exactly what :func:`leadheat.engage.lists.tasks` and ``recover``
    would find at any instant after its latest fact and touch (``fit_of``: the fit of its
    attributes, by :func:`~leadheat.scoring.fit.fit_scorer` for many leads; ``rules``: the
    :func:`cadence_rules`, for many leads)."""
    history = lead.history
    owner = text_of(history.attributes, "owner")
    instants = [e.at for e in history.events]
    last_event_at = max(instants, default=None)
    if history.evidence or history.outcomes:
        instants += [item.stated_at for item in history.evidence]
        instants += [outcome.at for outcome in history.outcomes]
    start = min(lead.created_at, *instants) if instants else lead.created_at
    if fit_of is None:
        fit_of = fit_scorer(book.fit.rules, book.fit.qualified_at)
    if rules is None:
        rules = cadence_rules(book)
    fit = fit_of(history.attributes)
    found = timeline(history, book, start, fit)
    latest = max(instants, default=start)
    last_touch = lead.touches[-1] if lead.touches else None
    is_open = not history.outcomes or status_at(history.outcomes, MAX_INSTANT) == "open"
    lost = None
    for run in found:
        if run.temperature is Temperature.HOT:
            lost = run
    phases = []
    business_hours = book.cadence.business_hours
    calendar = calendars.get(owner.casefold(), default) if owner else default
    clip = max(last_touch or lead.created_at, lead.created_at)
    if is_open and not fit.disqualified_by:
        for index, run in enumerate(found):
            if run.end <= latest and index + 1 < len(found):
                continue
            rule = rules[run.temperature]
            if not rule.enabled:
                continue
            if run.temperature is Temperature.COLD:
                since, rose = run.start, False  # a cold task never looks at when it cooled
            else:
                previous = found[index - 1] if index else None
                since = max(run.start, clip)
                rose = (
                    run.start <= clip
                    or previous is None
                    or RANK[previous.temperature] < RANK[run.temperature]
                )
            due = due_of(
                temperature=run.temperature,
                since=since,
                rose=rose,
                created_at=lead.created_at,
                last_touch=last_touch,
                rule=rule,
                calendar=calendar,
                business_hours=business_hours,
            )
            phases.append(Phase(run.start, run.end, run.temperature, since, rose, due))
    return State(
        lead.lead_id,
        owner,
        lead.created_at,
        last_touch,
        last_event_at,
        is_open,
        lost,
        phases,
    )


def _calendars(connection: Connection, book: Playbook) -> dict[str, BusinessCalendar]:
    return {
        rep.email.casefold(): BusinessCalendar.of(book.speed.team(rep.team))
        for rep in list_reps(connection)
    }


def _micros(at: datetime | None) -> int | None:
    return None if at is None else to_micros(at)


def _delete_of(connection: Connection, table: str, lead_ids: Sequence[int]) -> None:
    """Delete these leads' rows of a follow-up table (plain SQL: a batch's twenty leads cost
    less to delete than an ORM statement with an ``IN`` list costs to compile)."""
    for chunk in chunked(sorted(lead_ids)):
        marks = ", ".join("?" * len(chunk))
        execute_many(connection, f"DELETE FROM {table} WHERE lead_id IN ({marks})", [tuple(chunk)])


_LEAD_COLUMNS = (
    "lead_id, owner, created_at, last_touch, last_event_at, is_open, lost_start, lost_end"
)
_PHASE_COLUMNS = "lead_id, starts, ends, temperature, owner, since, rose, due, first_contact"


@dataclass(frozen=True)
class Rows:
    """One lead's follow-up rows, as ``followup_leads`` and ``followup_phases`` hold them."""

    lead: tuple[Any, ...] | None = None
    phases: frozenset[tuple[Any, ...]] = frozenset()


NO_ROWS = Rows()


def stored_rows(connection: Connection, lead_ids: Sequence[int]) -> dict[int, Rows]:
    """These leads' follow-up rows as stored (leads without any are left out)."""
    leads = {
        row[0]: row
        for row in select_tuples_in(
            connection, f"SELECT {_LEAD_COLUMNS} FROM followup_leads WHERE lead_id IN", lead_ids
        )
    }
    phases: dict[int, set[tuple[Any, ...]]] = {}
    for row in select_tuples_in(
        connection, f"SELECT {_PHASE_COLUMNS} FROM followup_phases WHERE lead_id IN", lead_ids
    ):
        phases.setdefault(row[0], set()).add(row)
    return {
        lead_id: Rows(leads.get(lead_id), frozenset(phases.get(lead_id, ())))
        for lead_id in leads.keys() | phases.keys()
    }


def _rows_of(state: State) -> Rows:
    """The rows that hold ``state`` (booleans compare equal to the 0 and 1 SQLite returns)."""
    lead = (
        state.lead_id,
        state.owner,
        to_micros(state.created_at),
        _micros(state.last_touch),
        _micros(state.last_event_at),
        state.is_open,
        _micros(state.lost.start if state.lost else None),
        _micros(state.lost.end if state.lost else None),
    )
    phases = frozenset(
        (
            state.lead_id,
            to_micros(phase.starts),
            to_micros(phase.ends),
            phase.temperature.value,
            state.owner,
            to_micros(phase.since),
            phase.rose,
            to_micros(phase.due),
            phase.temperature is Temperature.HOT and state.last_touch is None,
        )
        for phase in state.phases
    )
    return Rows(lead, phases)


def store_states(
    connection: Connection,
    lead_ids: Sequence[int],
    states: Iterable[State],
    stored: Mapping[int, Rows] | None = None,
) -> None:
    """Bring these leads' rows to ``states`` (a lead without a state loses its rows).

    Only the rows that differ from ``stored`` (read here when not given) are deleted and
    written. A write can leave a lead's follow-up as it was: an ``identify`` with the traits
    the lead had writes its fit again, unchanged, and marks it. Rewriting every row of such
    a lead held the write lock the server's writes wait for. An event after a lead's latest fact
    moves the start of its phases, so every row of that lead is written again.
    """
    if stored is None:
        stored = stored_rows(connection, lead_ids)
    wanted = {state.lead_id: _rows_of(state) for state in states}
    leads_gone: list[int] = []
    leads_new: list[tuple[Any, ...]] = []
    phases_gone: list[tuple[int, int]] = []
    phases_new: list[tuple[Any, ...]] = []
    for lead_id in lead_ids:
        before, after = stored.get(lead_id, NO_ROWS), wanted.get(lead_id, NO_ROWS)
        if before.lead != after.lead:
            if before.lead is not None:
                leads_gone.append(lead_id)
            if after.lead is not None:
                leads_new.append(after.lead)
        phases_gone.extend((row[0], row[1]) for row in before.phases - after.phases)
        phases_new.extend(after.phases - before.phases)
    _delete_of(connection, "followup_leads", leads_gone)
    execute_many(
        connection,
        "DELETE FROM followup_phases WHERE lead_id = ? AND starts = ?",
        sorted(phases_gone),
    )
    execute_many(
        connection,
        f"INSERT INTO followup_leads ({_LEAD_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        sorted(leads_new, key=lambda row: row[0]),
    )
    execute_many(
        connection,
        f"INSERT INTO followup_phases ({_PHASE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        sorted(phases_new, key=lambda row: (row[0], row[1])),
    )


def refresh(
    connection: Connection, book: Playbook, most: int = CHUNK, among: Sequence[int] | None = None
) -> int:
    """Recompute the state of at most ``most`` stale leads (the lowest ids; only those of
    ``among`` when given), in this write transaction; how many.

    On PostgreSQL the stale marks are locked first (``FOR UPDATE``): a write to one of these
    leads that commits meanwhile waits for this transaction, then marks its lead again.
    """
    query = select(FollowupStale.lead_id).order_by(FollowupStale.lead_id).limit(most)
    if among is not None:
        query = query.where(FollowupStale.lead_id.in_(among))
    if connection.dialect.name != "sqlite":
        query = query.with_for_update()
    ids = list(connection.execute(query).scalars())
    if not ids:
        return 0
    store_states(connection, ids, _states(connection, book, ids))
    _delete_of(connection, "followup_stale", ids)
    return len(ids)


def _states(connection: Connection, book: Playbook, lead_ids: Sequence[int]) -> list[State]:
    """These leads' states, from their histories as ``connection`` sees them."""
    calendars = _calendars(connection, book)
    default = BusinessCalendar.of(book.speed.team(None))
    fit_of = fit_scorer(book.fit.rules, book.fit.qualified_at)
    rules = cadence_rules(book)
    return [
        compute(lead, book, calendars, default, fit_of, rules)
        for lead in load_lives(connection, lead_ids, book)
    ]


def refresh_apart(lh: Leadheat, most: int = CHUNK) -> int:
    """Recompute up to ``most`` stale leads, those marked longest ago, outside the write
    lock; how many were stored (taken by lead id, the lowest ones written all the time
    would have kept the others waiting).

    The histories are read and the states computed in a read transaction, which on SQLite
    lets the server's writes go on meanwhile (a refresh inside the write transaction held
    SQLite's one write lock while it computed: a process of its own beside the server then
    made ingestion slower, not faster). The short write transaction after it stores a
    lead's state only where the lead's mark still holds the number read with it: a write
    meanwhile drew a new one (migration 0012), and that lead waits for the next pass, as
    does one whose mark another refresh took away (its state is at least as new). The rows
    stored for the leads are read with the marks: while a mark holds its number, nobody has
    stored that lead since (every store deletes the marks it stores), so only the rows that
    changed are written.
    """
    with lh.engine.connect() as connection:
        marked = dict(
            connection.execute(
                select(FollowupStale.lead_id, FollowupStale.marks)
                .order_by(FollowupStale.marks)  # marked longest ago first
                .limit(most)
            ).all()  # a result has keys(): dict() would read it as a mapping
        )
        if not marked:
            return 0
        _, book = lh.playbook_in(connection)
        states = _states(connection, book, list(marked))
        stored = stored_rows(connection, list(marked))
    with lh.transaction() as connection:
        # PostgreSQL: a mark another transaction holds is skipped, not waited for (a write
        # is marking that lead again, or another keeper is storing it); waiting there
        # could close a cycle with a write, which PostgreSQL breaks by failing one of them
        lock = "FOR UPDATE SKIP LOCKED" if connection.dialect.name != "sqlite" else ""
        unchanged = sorted(
            lead_id
            for lead_id, marks in select_tuples_in(
                connection,
                "SELECT lead_id, marks FROM followup_stale WHERE lead_id IN",
                list(marked),
                lock,
            )
            if marks == marked[lead_id]
        )
        kept = set(unchanged)
        store_states(
            connection, unchanged, [state for state in states if state.lead_id in kept], stored
        )
        _delete_of(connection, "followup_stale", unchanged)
    return len(unchanged)


def catch_up(lh: Leadheat, most: int = 4 * CHUNK) -> int:
    """Recompute up to ``most`` stale leads (:data:`CHUNK` per transaction): the worker does
    this on each pass, so that after a bulk import or a playbook apply the state is computed
    in the background rather than by the first person to open Tasks."""
    done = 0
    while done < most:
        with lh.engine.connect() as connection:
            if connection.execute(select(FollowupStale.lead_id).limit(1)).first() is None:
                return done
        asked = min(CHUNK, most - done)
        with lh.transaction() as connection:
            _, book = lh.playbook_in(connection)
            found = refresh(connection, book, asked)
        done += found
        if found < asked:  # none was left: a lead marked since waits for the next pass
            return done
    return done


def keep_current(lh: Leadheat) -> int:
    """Recompute the leads that are stale as the read begins, :data:`CHUNK` leads per
    transaction (so that a backfill of every lead holds SQLite's write lock a moment at a
    time, never for long); a look at one index when none is stale. Returns the leads
    recomputed.

    A lead a write marks meanwhile is left to the keeper: that write came after the read
    began, and the read answers as of then, as it would had the write come a moment after
    it. Chasing such leads until none was stale had no end under steady ingestion.
    """
    with lh.engine.connect() as connection:
        stale = list(
            connection.execute(
                select(FollowupStale.lead_id).order_by(FollowupStale.lead_id)
            ).scalars()
        )
    done = 0
    for chunk in chunked(stale):
        with lh.transaction() as connection:
            _, book = lh.playbook_in(connection)
            done += refresh(connection, book, among=chunk)
    return done


REPLAY_MOST = FEW
"""The most leads with a fact after the asked instant that a read replays on their own beside
the kept state (as many as the replay reads through the index, not by a scan of every
table); with more (``--at`` far in the past) the caller replays every lead."""


@dataclass(frozen=True)
class Kept(Generic[T]):
    """What the kept state answers for an instant, and the leads it cannot answer for."""

    found: list[T]
    late: list[int]
    """The leads with a fact or touch after the instant (among the asked owner's): their
    kept state is of a later time, so the caller replays them and merges."""


def late_leads(connection: Connection, at: datetime, owner: str | None = None) -> list[int] | None:
    """The leads with a stored fact or touch after ``at`` (only ``owner``'s, when given), or
    ``None`` when there are more than :data:`REPLAY_MOST`.

    Live traffic stores events stamped a moment after a read begins: answering every lead by
    replay whenever any fact was later than ``at`` made ``recover`` take 13-44 s under steady
    ingestion, against 0.7 s idle. Each table is read through its time index, at most a bounded
    number of rows, so that a read far in the past gives up early.
    """
    rows = 10 * REPLAY_MOST
    found: set[int] = set()
    for table, column in (
        (Event, Event.occurred_at),
        (Outcome, Outcome.occurred_at),
        (EvidenceRow, EvidenceRow.stated_at),
        (Touch, Touch.occurred_at),
    ):
        ids = list(
            connection.execute(select(table.lead_id).where(column > at).limit(rows + 1)).scalars()
        )
        if len(ids) > rows:
            return None
        found.update(ids)
        if len(found) > REPLAY_MOST:
            return None
    if owner is not None and found:
        found = set(
            connection.execute(
                select(Lead.id).where(
                    Lead.id.in_(sorted(found)), func.lower(Lead.owner) == owner.casefold()
                )
            ).scalars()
        )  # as the replay picks an owner's leads
    return sorted(found)


def _apart(column: Any, late: Sequence[int]) -> list[Any]:
    return [column.not_in(late)] if late else []


def _owned(column: Any, owner: str | None) -> list[Any]:
    return [] if owner is None else [func.lower(column) == owner.casefold()]


def indexed_tasks(
    lh: Leadheat,
    at: datetime,
    *,
    owner: str | None = None,
    overdue: bool = False,
    limit: int | None = None,
) -> Kept[Task] | None:
    """:func:`leadheat.engage.lists.tasks` from the kept state, but for the :func:`late_leads`
    (``None`` when they are too many: the caller replays). Reads, per part of the order that
    sells, the first ``limit`` phases by due time from an index."""
    keep_current(lh)
    _, book = lh.playbook()
    phase, lead = FollowupPhase, FollowupLead
    with lh.engine.connect() as connection:
        late = late_leads(connection, at, owner)
        if late is None:
            return None
        base = (
            select(
                phase.lead_id,
                phase.temperature,
                phase.since,
                phase.rose,
                lead.created_at,
                lead.last_touch,
            )
            .join(lead, lead.lead_id == phase.lead_id)
            .where(phase.starts <= at, phase.ends > at, lead.created_at <= at)
            .where(*_owned(phase.owner, owner), *_apart(phase.lead_id, late))
        )
        parts = [
            base.where(phase.temperature == "hot", phase.first_contact.is_(True)).where(
                *([phase.due < at] if overdue else [])
            )
        ]
        for temperature in ("hot", "warm", "cold"):
            parts.append(
                base.where(
                    phase.temperature == temperature,
                    phase.first_contact.is_(False),
                    phase.due < at,
                )
            )
        if not overdue:
            parts.append(base.where(phase.first_contact.is_(False), phase.due >= at))
        rows: list[Any] = []
        for part in parts:
            if limit is not None and len(rows) >= limit:
                break
            query = part.order_by(phase.due, phase.lead_id)
            if limit is not None:
                query = query.limit(limit - len(rows))
            rows.extend(connection.execute(query).all())
        attributes = _attributes(connection, [row.lead_id for row in rows])
        calendars = _calendars(connection, book)
    default = BusinessCalendar.of(book.speed.team(None))
    found = []
    for row in rows:
        said = attributes[row.lead_id]
        lead_owner = text_of(said, "owner")
        temperature = Temperature(row.temperature)
        found.append(
            plan(
                lead_id=row.lead_id,
                lead=lead_label(said, row.lead_id),
                name=text_of(said, "name"),
                owner=lead_owner,
                temperature=temperature,
                since=row.since,
                rose=row.rose,
                created_at=row.created_at,
                last_touch=row.last_touch,
                rule=book.cadence.rule(temperature.value),
                calendar=calendars.get(lead_owner.casefold(), default) if lead_owner else default,
                business_hours=book.cadence.business_hours,
                at=at,
            )
        )
    return Kept(found, late)


def _attributes(connection: Connection, lead_ids: Sequence[int]) -> dict[int, dict[str, object]]:
    found: dict[int, dict[str, object]] = {}
    for chunk in chunked(sorted(set(lead_ids))):
        for row in connection.execute(select(Lead).where(Lead.id.in_(chunk))).mappings():
            found[row["id"]] = lead_attributes(row)
    return found


def lost_candidates(
    lh: Leadheat,
    at: datetime,
    window: timedelta,
    *,
    owner: str | None = None,
    limit: int | None = None,
) -> Kept[int] | None:
    """The leads :func:`leadheat.engage.lists.recover` lists at ``at``, most recently hot
    first, from the kept state, but for the :func:`late_leads` (``None`` when they are too
    many)."""
    keep_current(lh)
    _, book = lh.playbook()
    lead = FollowupLead
    start = at - window
    with lh.engine.connect() as connection:
        late = late_leads(connection, at, owner)
        if late is None:
            return None
        query = (
            select(lead.lead_id)
            .where(
                lead.lost_end < at,
                lead.lost_end > start,
                lead.is_open.is_(True),
                lead.created_at <= at,
                lead.last_event_at >= start - book.temperature.cold_after,
                or_(
                    lead.last_touch.is_(None),
                    and_(lead.last_touch < lead.lost_start),
                    lead.last_touch < start,
                ),
            )
            .where(*_owned(lead.owner, owner), *_apart(lead.lead_id, late))
            .order_by(lead.lost_end.desc(), lead.lead_id)
        )
        if limit is not None:
            query = query.limit(limit)
        return Kept(list(connection.execute(query).scalars()), late)


@dataclass(frozen=True)
class OwnerTally:
    """One owner's tasks at an instant, counted from the kept state."""

    owner: str | None
    tasks: int
    overdue: int
    longest_overdue: timedelta | None
    """Working time (calendar time without ``[cadence] business_hours``) past the earliest
    due time among the overdue tasks: the longest any of them is overdue."""


def owner_tallies(lh: Leadheat, at: datetime) -> Kept[OwnerTally] | None:
    """Per owner, the tasks :func:`leadheat.engage.lists.tasks` lists at ``at``, how many are
    overdue and the longest overdue: one ``GROUP BY`` over the phases in force at ``at``, but
    for the :func:`late_leads` (``None`` when they are too many)."""
    keep_current(lh)
    _, book = lh.playbook()
    phase, lead = FollowupPhase, FollowupLead
    behind = phase.due < at
    with lh.engine.connect() as connection:
        late = late_leads(connection, at)
        if late is None:
            return None
        rows = connection.execute(
            select(
                phase.owner,
                func.count(),
                func.count(phase.due).filter(behind),
                func.min(phase.due).filter(behind),
            )
            .join(lead, lead.lead_id == phase.lead_id)
            .where(phase.starts <= at, phase.ends > at, lead.created_at <= at)
            .where(*_apart(phase.lead_id, late))
            .group_by(phase.owner)
        ).all()
        calendars = _calendars(connection, book)
    default = BusinessCalendar.of(book.speed.team(None))
    found = []
    for owner, count, overdue, earliest in rows:
        longest = None
        if earliest is not None:
            calendar = calendars.get(owner.casefold(), default) if owner else default
            hours = book.cadence.business_hours
            longest = calendar.between(earliest, at) if hours else at - earliest
        found.append(OwnerTally(owner, count, overdue, longest))
    return Kept(found, late)
