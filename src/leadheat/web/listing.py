"""The Lists page: every lead, hottest first, narrowed by temperature, owner, source, grade
or a search of email, name and company; and the same rows as CSV."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import islice

import numpy as np
import numpy.typing as npt
from sqlalchemy import ColumnElement, Connection, Select, func, or_, select

from leadheat.playbook import Playbook
from leadheat.scoring.temperature import Temperature, grade
from leadheat.service import Leadheat
from leadheat.store.models import HeatKeyRow, Lead, LeadState
from leadheat.store.ranking import Ranked, iter_leads, judge_leads, list_leads
from leadheat.times import EPOCH, isoformat

CHUNK = 500
FEW = 5000
"""Up to this many leads allowed by the filters are passed to the database as a list."""
CSV_COLUMNS = (
    "id", "email", "name", "company", "owner", "source", "temperature", "grade", "heat",
    "status", "last_engaged_at",
)  # fmt: skip


@dataclass(frozen=True)
class ListFilter:
    """What the Lists page asks for; empty strings mean "any"."""

    temperature: str = ""
    owner: str = ""
    source: str = ""
    grade: str = ""
    search: str = ""

    def __post_init__(self) -> None:
        if self.temperature and self.temperature not in {t.value for t in Temperature}:
            raise ValueError(f"temperature {self.temperature!r} must be hot, warm or cold")


@dataclass(frozen=True)
class ListRow:
    lead_id: int
    email: str | None
    name: str | None
    company: str | None
    owner: str | None
    source: str | None
    temperature: str
    grade: str
    heat: float
    status: str
    last_engaged_at: datetime | None


def _rows(
    connection: Connection, book: Playbook, ranked: Sequence[Ranked], wanted: ListFilter
) -> list[ListRow]:
    ids = [r.lead_id for r in ranked]
    if not ids:
        return []
    leads = {
        row.id: row
        for row in connection.execute(
            select(Lead.id, Lead.email, Lead.name, Lead.company, Lead.owner, Lead.source).where(
                Lead.id.in_(ids)
            )
        )
    }
    rows = []
    for r in ranked:
        lead = leads[r.lead_id]
        letter_digit = grade(r.facts.fit, r.facts.disqualified, r.heat, book)
        if wanted.grade and not letter_digit.startswith(wanted.grade.upper()):
            continue
        rows.append(
            ListRow(
                lead_id=r.lead_id,
                email=lead.email,
                name=lead.name,
                company=lead.company,
                owner=lead.owner,
                source=lead.source,
                temperature=r.verdict.temperature.value,
                grade=letter_digit,
                heat=r.heat,
                status=r.status,
                last_engaged_at=r.facts.last_engaged_at,
            )
        )
    return rows


def _candidates(book: Playbook, wanted: ListFilter) -> Select[int] | None:
    """Lead ids that the filters SQL can check allow, or ``None`` when no such filter is set.

    A grade's letter narrows by the stored fit (a superset: ``grade()`` decides after)."""
    conditions: list[ColumnElement[bool]] = []
    if wanted.owner:
        conditions.append(func.lower(Lead.owner) == wanted.owner.casefold())
    if wanted.source:
        conditions.append(Lead.source == wanted.source)
    if wanted.search:
        pattern = f"%{wanted.search.lower()}%"
        conditions.append(
            or_(
                func.lower(Lead.email).like(pattern),
                func.lower(Lead.name).like(pattern),
                func.lower(Lead.company).like(pattern),
            )
        )
    cuts = dict(zip("ABC", book.grade_thresholds, strict=True))
    letter = wanted.grade[:1].upper()
    if letter in cuts:
        conditions.append(LeadState.fit >= cuts[letter])
    if not conditions:
        return None
    query = select(Lead.id).where(Lead.merged_into_id.is_(None), *conditions)
    if letter in cuts:
        query = query.join(LeadState, LeadState.lead_id == Lead.id)
    return query


def _heat_now(
    keys: npt.NDArray[np.float64], ids: npt.NDArray[np.int64], now: datetime
) -> npt.NDArray[np.float64]:
    """Heat now of each of ``ids`` from rows ``(lead, half-life µs, whole, frac)`` of heat
    keys, vectorised (:meth:`HeatKey.heat_at` term by term; only the order is used)."""
    heat = np.zeros(len(ids))
    if not len(keys) or not len(ids):
        return heat
    exponent = np.empty(len(keys))
    for span_us in np.unique(keys[:, 1]):
        span = timedelta(microseconds=abs(int(span_us)))  # negative: a negative signal's part
        turns, rest = divmod(now - EPOCH, span)
        rows = keys[:, 1] == span_us
        exponent[rows] = (keys[rows, 2] - turns) + (keys[rows, 3] - rest / span)
    sign = np.where(keys[:, 1] < 0, -1.0, 1.0)
    position = np.searchsorted(ids, keys[:, 0].astype(np.int64))
    known = (position < len(ids)) & (ids[np.minimum(position, len(ids) - 1)] == keys[:, 0])
    np.add.at(heat, position[known], sign[known] * np.exp2(np.minimum(exponent[known], 1023.0)))
    return heat


def _surely_warm_or_hot(book: Playbook, now: datetime) -> Select[int]:
    """Leads whose stored facts make them hot or warm whatever their heat: interest within
    the warm window (and within ``cold_after``) and no churn since, as ``classify`` decides.
    A cold list skips them unjudged: they sit on top of the heat order, above the cold."""
    rules = book.temperature
    recent = now - min(rules.warm_window, rules.cold_after)
    return select(LeadState.lead_id).where(
        LeadState.last_engaged_at >= recent,
        or_(LeadState.churned_at.is_(None), LeadState.churned_at < LeadState.last_engaged_at),
    )


def _hottest_ids(
    connection: Connection,
    book: Playbook,
    now: datetime,
    narrowed: Select[int] | None,
    skipped: Select[int] | None = None,
) -> Iterator[list[int]]:
    """Lead ids in descending order of heat now (ties by id), a chunk at a time, leaving out
    ``skipped`` where that saves work (a caller still filters).

    With one half-life the heat index is already in that order, so only the chunks the page
    needs are read; leads without a key (no engagement: heat 0) come last. With several, or
    with negative signals (which the index order does not see), every candidate's heat is
    computed (vectorised) and sorted."""
    everyone = select(Lead.id).where(Lead.merged_into_id.is_(None))
    if len(book.positive_half_lives) == 1 and not book.has_negative_signals:
        (span,) = book.positive_half_lives
        keyed = select(HeatKeyRow.lead_id).where(
            HeatKeyRow.half_life_us == span // timedelta(microseconds=1)
        )
        allowed = narrowed if narrowed is not None else everyone
        if narrowed is not None:  # a search scans every lead: once, not once a chunk
            found = list(connection.execute(narrowed).scalars())
            if len(found) <= FEW:
                allowed = select(Lead.id).where(Lead.id.in_(found))
        ranked = keyed.where(HeatKeyRow.lead_id.in_(allowed.scalar_subquery())).order_by(
            HeatKeyRow.whole.desc(), HeatKeyRow.frac.desc(), HeatKeyRow.lead_id
        )
        if skipped is not None:
            ranked = ranked.where(HeatKeyRow.lead_id.not_in(skipped.scalar_subquery()))
        cold = allowed.where(Lead.id.not_in(keyed.scalar_subquery())).order_by(Lead.id)
        for query in (ranked, cold):
            offset = 0
            while chunk := list(connection.execute(query.limit(CHUNK).offset(offset)).scalars()):
                yield chunk
                offset += len(chunk)
        return
    ids = np.array(
        connection.execute(narrowed if narrowed is not None else everyone).scalars().all(),
        dtype=np.int64,
    )
    ids.sort()  # _heat_now finds leads by binary search
    keys = select(HeatKeyRow.lead_id, HeatKeyRow.half_life_us, HeatKeyRow.whole, HeatKeyRow.frac)
    if narrowed is not None:
        keys = keys.where(HeatKeyRow.lead_id.in_(narrowed.scalar_subquery()))
    columns = list(zip(*connection.execute(keys).all(), strict=True))  # fast into NumPy
    heat = _heat_now(np.array(columns, dtype=np.float64).T.reshape(-1, 4), ids, now)
    order = ids[np.lexsort((ids, -heat))].tolist()
    for start in range(0, len(order), CHUNK):
        yield order[start : start + CHUNK]


def _by_heat(
    connection: Connection, book: Playbook, now: datetime, wanted: ListFilter
) -> Iterator[Ranked]:
    """The leads the SQL-checkable filters allow, hottest first, judged a chunk at a time
    (only as far as the page needs)."""
    narrowed = _candidates(book, wanted)
    skipped = _surely_warm_or_hot(book, now) if wanted.temperature == "cold" else None
    for chunk in _hottest_ids(connection, book, now, narrowed, skipped):
        judged = judge_leads(connection, book, now, chunk)
        for lead_id in chunk:
            item = judged.get(lead_id)
            if item is not None and (
                not wanted.temperature or item.verdict.temperature == wanted.temperature
            ):
                yield item


def matching(
    lh: Leadheat, wanted: ListFilter, at: datetime | None = None, needed: int | None = None
) -> Iterator[ListRow]:
    """Leads that pass the filter, hottest first, read lazily; ``needed`` says how many the
    caller will take, so that a list of one temperature stops there."""
    _, book = lh.playbook()
    now = at or lh.clock()
    only_temperature = not (wanted.owner or wanted.source or wanted.grade or wanted.search)
    with lh.engine.connect() as connection:
        ranked: Iterator[Ranked]
        if only_temperature and wanted.temperature == "hot":
            temperature = Temperature(wanted.temperature)
            ranked = iter(list_leads(connection, book, now, needed, temperature))
        elif only_temperature and not wanted.temperature:
            ranked = iter_leads(connection, book, now, "heat")
        else:
            ranked = _by_heat(connection, book, now, wanted)
        while chunk := list(islice(ranked, CHUNK)):
            yield from _rows(connection, book, chunk, wanted)


def page_of(
    lh: Leadheat, wanted: ListFilter, limit: int = 50, offset: int = 0
) -> tuple[list[ListRow], bool]:
    """One page of :func:`matching`, and whether more follow."""
    rows = list(islice(matching(lh, wanted, needed=offset + limit + 1), offset, offset + limit + 1))
    return rows[:limit], len(rows) > limit


def count_of(lh: Leadheat, wanted: ListFilter) -> int | None:
    """How many leads the filter matches, when SQL alone can say (an owner, a source, a
    search, or none); ``None`` with a temperature or a grade, which only judging every
    candidate at this instant would tell (seconds at 100,000 leads, for a count).

    The page then counts what it has judged: exact on the last page, "more follow" before.
    """
    if wanted.temperature or wanted.grade:
        return None
    _, book = lh.playbook()
    narrowed = _candidates(book, wanted)
    leads = (
        narrowed if narrowed is not None else select(Lead.id).where(Lead.merged_into_id.is_(None))
    )
    with lh.engine.connect() as connection:
        return int(
            connection.execute(select(func.count()).select_from(leads.subquery())).scalar_one()
        )


def cell(value: object) -> str:
    """A CSV cell a spreadsheet will not run: text starting like a formula gets a quote.

    >>> cell("=HYPERLINK(1)"), cell("ana@example.com"), cell(None)
    ("'=HYPERLINK(1)", 'ana@example.com', '')
    """
    text = "" if value is None else str(value)
    return f"'{text}" if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def csv_lines(rows: Iterator[ListRow]) -> Iterator[str]:
    """The rows as CSV text, a line at a time (a download of every lead streams)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        writer.writerow(
            [row.lead_id]
            + [cell(v) for v in (row.email, row.name, row.company, row.owner, row.source)]
            + [row.temperature, row.grade, f"{row.heat:.4f}", row.status]
            + [isoformat(row.last_engaged_at)]
        )
        if buffer.tell() > 64_000:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()
