"""The Lists page: every lead, hottest first, narrowed by temperature, owner, source, grade
or a search of email, name and company; and the same rows as CSV."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import islice

from sqlalchemy import Connection, func, or_, select

from leadheat.playbook import Playbook
from leadheat.scoring.temperature import Temperature, grade
from leadheat.service import Leadheat
from leadheat.store.models import Lead
from leadheat.store.ranking import Ranked, iter_leads, judge_leads
from leadheat.times import isoformat

CHUNK = 500
SEARCH_CAP = 5000
"""Most leads a search looks at (the best matches by id); narrow the search to see others."""
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
        if wanted.owner and lead.owner != wanted.owner:
            continue
        if wanted.source and lead.source != wanted.source:
            continue
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


def _searched(
    connection: Connection, book: Playbook, now: datetime, wanted: ListFilter
) -> list[Ranked]:
    pattern = f"%{wanted.search.lower()}%"
    ids = [
        row[0]
        for row in connection.execute(
            select(Lead.id)
            .where(
                Lead.merged_into_id.is_(None),
                or_(
                    func.lower(Lead.email).like(pattern),
                    func.lower(Lead.name).like(pattern),
                    func.lower(Lead.company).like(pattern),
                ),
            )
            .order_by(Lead.id)
            .limit(SEARCH_CAP)
        )
    ]
    judged = judge_leads(connection, book, now, ids).values()
    chosen = [
        r for r in judged if not wanted.temperature or r.verdict.temperature == wanted.temperature
    ]
    return sorted(chosen, key=lambda r: (-r.heat, r.lead_id))


def matching(lh: Leadheat, wanted: ListFilter, at: datetime | None = None) -> Iterator[ListRow]:
    """Leads that pass the filter, hottest first, read lazily in chunks."""
    _, book = lh.playbook()
    now = at or lh.clock()
    with lh.engine.connect() as connection:
        if wanted.search:
            ranked: Iterator[Ranked] = iter(_searched(connection, book, now, wanted))
        else:
            temperature = Temperature(wanted.temperature) if wanted.temperature else None
            ranked = iter_leads(connection, book, now, "heat", temperature)
        while chunk := list(islice(ranked, CHUNK)):
            yield from _rows(connection, book, chunk, wanted)


def page_of(
    lh: Leadheat, wanted: ListFilter, limit: int = 50, offset: int = 0
) -> tuple[list[ListRow], bool]:
    """One page of :func:`matching`, and whether more follow."""
    rows = list(islice(matching(lh, wanted), offset, offset + limit + 1))
    return rows[:limit], len(rows) > limit


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
