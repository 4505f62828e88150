"""One lead found by any of its references and its score explained as of any instant: the
one implementation behind ``Leadheat.show`` (the API, the dashboard) and ``leadheat show``.

It reads in SQL over a :class:`~leadheat.store.reader.Reader`, so that on a SQLite file
``leadheat show`` runs it on the standard library's ``sqlite3`` (:class:`Lookup`) and starts
without SQLAlchemy, whose import alone costs more than the command should take
(docs/performance.md, "CLI start"); the service runs it on its own connections.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from leadheat.errors import NotInitialisedError, UnknownLeadError
from leadheat.identity import parse_lead_key
from leadheat.playbook import Playbook
from leadheat.scoring.lead import LeadScore, score_history
from leadheat.store import playbooks
from leadheat.store.fields import lead_attributes
from leadheat.store.history import TouchRecord, load_history, load_lead, load_touches
from leadheat.store.reader import Reader, SqliteReader
from leadheat.times import from_micros


@dataclass(frozen=True)
class LeadView:
    """A lead with its full score at one instant and the history behind it."""

    lead: Mapping[str, Any]
    score: LeadScore
    touches: Sequence[TouchRecord]
    playbook_version: int
    probability_at: datetime | None = None
    """When the model's probability (``score.probability``) was computed."""


def find_lead(reader: Reader, lead: str | int) -> int:
    """The id of the lead named by an email, external id, ``anon:…`` or ``id:N`` (a merged
    lead's id names the lead it was merged into)."""
    if isinstance(lead, str) and lead.startswith("id:") and lead[3:].isdigit():
        lead = int(lead[3:])
    if isinstance(lead, int):
        rows = reader.rows("SELECT id, merged_into_id FROM leads WHERE id = :id", {"id": lead})
        if not rows:
            raise UnknownLeadError(f"no lead with id {lead}")
        return int(rows[0]["merged_into_id"] or rows[0]["id"])
    key = parse_lead_key(lead)
    rows = reader.rows(
        "SELECT lead_id FROM identities WHERE kind = :kind AND value = :value",
        {"kind": key.kind, "value": key.value},
    )
    if not rows:
        raise UnknownLeadError(f"no lead known as {lead!r}")
    return int(rows[0]["lead_id"])


def lead_view(
    reader: Reader,
    lead: str | int,
    book: tuple[int, Playbook],
    now: datetime,
    *,
    past: bool = False,
) -> LeadView:
    """A lead's full, explained score as of ``now`` by playbook ``book`` (its version and
    itself), from its history; ``past`` when ``now`` is an instant asked for rather than the
    clock's (the stored probability is today's: it has no answer for the past)."""
    version, playbook = book
    lead_id = find_lead(reader, lead)
    row = load_lead(reader, lead_id)
    if row["merged_into_id"] is not None:
        lead_id = row["merged_into_id"]
        row = load_lead(reader, lead_id)
    history = load_history(reader, lead_id)
    touches = [t for t in load_touches(reader, lead_id) if t.at <= now]
    stored = reader.rows(
        "SELECT probability, probability_at FROM lead_states WHERE lead_id = :lead",
        {"lead": lead_id},
    )
    probability, probability_at = None, None
    if stored and not past:
        probability = stored[0]["probability"]
        at = stored[0]["probability_at"]
        probability_at = from_micros(at) if at is not None else None
    score = score_history(history, playbook, now, probability)
    return LeadView(
        {**row, "attributes": lead_attributes(row)}, score, touches, version, probability_at
    )


def require_file(path: str) -> None:
    """Refuse a SQLite file that is not there (opening it would create an empty one)."""
    if path not in ("", ":memory:") and not Path(path).exists():
        raise NotInitialisedError(f"no database at {path}: run `leadheat init` first")


class Lookup:
    """Leads of a SQLite file shown through ``sqlite3`` alone: what ``leadheat show`` needs of
    :class:`~leadheat.service.Leadheat` (:meth:`playbook`, :meth:`show`), and nothing else."""

    def __init__(self, path: str) -> None:
        require_file(path)
        self._reader = SqliteReader(path)
        self._book: tuple[int, Playbook] | None = None

    def close(self) -> None:
        self._reader.close()

    def playbook(self) -> tuple[int, Playbook]:
        """The current playbook and its version (read once: a command is short)."""
        if self._book is None:
            known = self._reader.rows(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'playbook_versions'"
            )
            if not known:
                raise NotInitialisedError("the database is not initialised: run `leadheat init`")
            current = playbooks.current_playbook(self._reader)
            if current is None:
                raise NotInitialisedError("the database has no playbook: run `leadheat init`")
            self._book = (current.version, current.playbook)
        return self._book

    def show(self, lead: str | int, at: datetime | None = None) -> LeadView:
        """:meth:`leadheat.service.Leadheat.show`, on this file."""
        now = at or datetime.now(UTC)
        return lead_view(self._reader, lead, self.playbook(), now, past=at is not None)
