"""Reading a lead's history back, for scoring from scratch, explanations and time travel."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from leadheat.scoring.evidence import EvidenceItem
from leadheat.scoring.lead import EventRecord, LeadHistory, OutcomeRecord
from leadheat.store.driver import chunked
from leadheat.store.fields import lead_attributes
from leadheat.store.reader import Reader, in_list, json_value
from leadheat.times import from_micros

# Written in SQL over a Reader, not SQLAlchemy: `leadheat show` reads through here on SQLite's
# own driver (see leadheat.store.reader). Instants are stored as integer microseconds.


@dataclass(frozen=True)
class TouchRecord:
    kind: str
    at: datetime
    direction: str
    result: str | None
    rep: str | None


def load_lead(reader: Reader, lead_id: int) -> dict[str, Any]:
    """A lead's row, as the table's model reads it (aware instants, decoded JSON)."""
    [row] = reader.rows("SELECT * FROM leads WHERE id = :id", {"id": lead_id})
    return _lead(row)


def _lead(row: dict[str, Any]) -> dict[str, Any]:
    for name in ("attributes", "public_fields"):
        row[name] = json_value(row[name])
    for name in ("created_at", "updated_at"):
        row[name] = from_micros(row[name])
    return row


def load_history(reader: Reader, lead_id: int) -> LeadHistory:
    """Everything scoring reads about one lead, in time order."""
    return load_histories(reader, [lead_id])[lead_id]


def load_histories(
    reader: Reader,
    lead_ids: Sequence[int],
    leads: Mapping[int, Mapping[Any, Any]] | None = None,
) -> dict[int, LeadHistory]:
    """:func:`load_history` of many leads in a few queries (per :data:`CHUNK` leads, one per
    table), not a few per lead: a reaction that alerts on twenty leads of one batch would
    otherwise spend more on building statements than the database spends answering them.

    ``leads`` are their ``leads`` rows when the caller has read them already. Ties in time
    keep the order in which rows were stored.
    """
    histories: dict[int, LeadHistory] = {}
    rows = dict(leads or {})
    for chunk in chunked(sorted(set(lead_ids))):
        missing = [lead_id for lead_id in chunk if lead_id not in rows]
        if missing:
            among, params = in_list("id", missing)
            rows.update(
                (row["id"], _lead(row))
                for row in reader.rows(f"SELECT * FROM leads WHERE id IN {among}", params)
            )
        among, params = in_list("lead", chunk)
        events: dict[int, list[EventRecord]] = defaultdict(list)
        for row in reader.rows(
            "SELECT lead_id, type, occurred_at, properties, event_id FROM events "
            f"WHERE lead_id IN {among} ORDER BY lead_id, occurred_at, id",
            params,
        ):
            events[row["lead_id"]].append(
                EventRecord(
                    row["type"],
                    from_micros(row["occurred_at"]),
                    json_value(row["properties"]) or {},
                    row["event_id"],
                )
            )
        evidence: dict[int, list[EvidenceItem]] = defaultdict(list)
        for row in reader.rows(
            "SELECT lead_id, kind, value, stated_at, source FROM evidence "
            f"WHERE lead_id IN {among} ORDER BY lead_id, stated_at, id",
            params,
        ):
            evidence[row["lead_id"]].append(
                EvidenceItem(
                    row["kind"], row["value"], from_micros(row["stated_at"]), row["source"]
                )
            )
        outcomes: dict[int, list[OutcomeRecord]] = defaultdict(list)
        for row in reader.rows(
            "SELECT lead_id, outcome, occurred_at, reason FROM outcomes "
            f"WHERE lead_id IN {among} ORDER BY lead_id, occurred_at, id",
            params,
        ):
            outcomes[row["lead_id"]].append(
                OutcomeRecord(row["outcome"], from_micros(row["occurred_at"]), row["reason"])
            )
        for lead_id in chunk:
            histories[lead_id] = LeadHistory(
                lead_attributes(rows[lead_id]),
                events[lead_id],
                evidence[lead_id],
                outcomes[lead_id],
            )
    return histories


def load_touches(reader: Reader, lead_id: int) -> list[TouchRecord]:
    return [
        TouchRecord(
            row["kind"],
            from_micros(row["occurred_at"]),
            row["direction"],
            row["result"],
            row["rep"],
        )
        for row in reader.rows(
            "SELECT kind, occurred_at, direction, result, rep FROM touches "
            "WHERE lead_id = :lead ORDER BY occurred_at",
            {"lead": lead_id},
        )
    ]


def latest_fact_at(reader: Reader) -> datetime | None:
    """The latest instant of any stored event, outcome or evidence.

    The stored state describes the world as of this instant and after; a question about an
    earlier time is answered from history instead.
    """
    [row] = reader.rows(
        "SELECT (SELECT max(occurred_at) FROM events) AS events, "
        "(SELECT max(occurred_at) FROM outcomes) AS outcomes, "
        "(SELECT max(stated_at) FROM evidence) AS evidence"
    )
    known = [value for value in row.values() if value is not None]
    return from_micros(max(known)) if known else None
