"""What the team adds to a lead's history: touches (contacts), outcomes (won, lost,
disqualified) and BANT evidence, one by hand or many from a CRM export (stored once: an
import run twice adds nothing). A touch or an outcome stops the lead's SLA clock and nurture.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select

from leadheat.core import Core, on_current_playbook
from leadheat.errors import LeadheatError
from leadheat.ingest.records import EvidenceInput, OutcomeInput, TouchInput
from leadheat.playbook import EVIDENCE_KINDS
from leadheat.scoring.lead import OUTCOMES
from leadheat.speed.clocks import stop_clocks
from leadheat.speed.watch import Watch
from leadheat.store import audit, nurture
from leadheat.store.audit import DEFAULT_ACTOR, AuditAction, lead_subject
from leadheat.store.driver import chunked
from leadheat.store.models import EvidenceRow, Outcome, Touch
from leadheat.store.state import refresh_facts


def touch(
    core: Core,
    lead: str,
    kind: str,
    at: datetime | None = None,
    *,
    direction: str = "outbound",
    result: str | None = None,
    rep: str | None = None,
    note: str | None = None,
) -> int:
    """Record a contact by the team; returns the lead's id."""
    _, book = core.playbook()
    when = core.checked_at(at, book)
    if direction not in ("inbound", "outbound"):
        raise LeadheatError(f"direction {direction!r} must be inbound or outbound")
    with core.transaction() as connection:
        lead_id = core.find_lead(connection, lead)
        connection.execute(
            insert(Touch).values(
                lead_id=lead_id,
                kind=_touch_kind(kind),
                occurred_at=when,
                direction=direction,
                result=result,
                rep=rep,
                note=note,
            )
        )
        stop_clocks(connection, book, [(lead_id, when, rep)])
        nurture.stop_many(connection, [(lead_id, when)], "touch")
    return lead_id


@on_current_playbook
def outcome(
    core: Core,
    lead: str,
    outcome: str,
    at: datetime | None = None,
    reason: str | None = None,
    *,
    actor: str = DEFAULT_ACTOR,
) -> int:
    """Record won, lost or disqualified."""
    version, book = core.playbook()
    when = core.checked_at(at, book)
    if outcome not in OUTCOMES:
        raise LeadheatError(f"outcome {outcome!r} must be one of {', '.join(OUTCOMES)}")
    with core.scoring(version) as connection:
        lead_id = core.find_lead(connection, lead)
        connection.execute(
            insert(Outcome).values(
                lead_id=lead_id, outcome=outcome, occurred_at=when, reason=reason
            )
        )
        refresh_facts(connection, book, version, [lead_id])
        stop_clocks(connection, book, [(lead_id, when, f"outcome: {outcome}")])
        nurture.stop_many(connection, [(lead_id, when)], "outcome")
        audit.record(
            connection,
            core.clock(),
            actor,
            AuditAction.OUTCOME,
            lead_subject(lead_id),
            {"outcome": outcome},
        )
    return lead_id


@on_current_playbook
def evidence(
    core: Core, lead: str, kind: str, value: str, at: datetime | None = None, source: str = "manual"
) -> int:
    """Record a BANT fact (need, budget, timeline, authority) stated at ``at``."""
    version, book = core.playbook()
    when = core.checked_at(at, book)
    if kind not in EVIDENCE_KINDS:
        raise LeadheatError(f"evidence kind {kind!r} must be one of {', '.join(EVIDENCE_KINDS)}")

    def apply(connection: Connection, watch: Watch) -> int:
        lead_id = core.find_lead(connection, lead)
        watch.look([lead_id])
        connection.execute(
            insert(EvidenceRow).values(
                lead_id=lead_id, kind=kind, value=value, stated_at=when, source=source
            )
        )
        refresh_facts(connection, book, version, [lead_id])
        watch.changed([lead_id])
        return lead_id

    return core.write_watched(book, core.clock(), apply, version=version)


def record_touches(core: Core, touches: Sequence[TouchInput]) -> tuple[int, int]:
    """Record many touches in one transaction; every lead must exist.

    A touch already stored (same lead, kind, time, direction and rep) is a duplicate, so
    re-importing a CRM export adds nothing. Returns ``(stored, duplicates)``.
    """
    _, book = core.playbook()
    with core.transaction() as connection:
        ids = core.require_leads(connection, [t.lead for t in touches])
        stored = _store_unseen(
            connection,
            Touch,
            ("lead_id", "kind", "occurred_at", "direction", "rep"),
            [
                {
                    "lead_id": ids[t.lead],
                    "kind": t.kind,
                    "occurred_at": t.at,
                    "direction": t.direction,
                    "result": t.result,
                    "rep": t.rep,
                    "note": t.note,
                }
                for t in touches
            ],
        )
        stop_clocks(connection, book, [(r["lead_id"], r["occurred_at"], r["rep"]) for r in stored])
        nurture.stop_many(connection, [(r["lead_id"], r["occurred_at"]) for r in stored], "touch")
    return len(stored), len(touches) - len(stored)


@on_current_playbook
def record_outcomes(
    core: Core, outcomes: Sequence[OutcomeInput], *, actor: str = DEFAULT_ACTOR
) -> tuple[int, int]:
    """Record many outcomes in one transaction; every lead must exist.

    The same outcome of the same lead at the same time is stored once. Returns
    ``(stored, duplicates)``.
    """
    version, book = core.playbook()
    with core.scoring(version) as connection:
        ids = core.require_leads(connection, [o.lead for o in outcomes])
        stored = _store_unseen(
            connection,
            Outcome,
            ("lead_id", "outcome", "occurred_at"),
            [
                {
                    "lead_id": ids[o.lead],
                    "outcome": o.outcome,
                    "occurred_at": o.at,
                    "reason": o.reason,
                }
                for o in outcomes
            ],
        )
        refresh_facts(connection, book, version, sorted({r["lead_id"] for r in stored}))
        stop_clocks(
            connection,
            book,
            [(r["lead_id"], r["occurred_at"], f"outcome: {r['outcome']}") for r in stored],
        )
        nurture.stop_many(connection, [(r["lead_id"], r["occurred_at"]) for r in stored], "outcome")
        audit.record_many(
            connection,
            core.clock(),
            actor,
            [
                (
                    AuditAction.OUTCOME,
                    lead_subject(r["lead_id"]),
                    {"outcome": r["outcome"]},
                )
                for r in stored
            ],
        )
    return len(stored), len(outcomes) - len(stored)


@on_current_playbook
def record_evidence(
    core: Core, facts: Sequence[EvidenceInput], *, react: bool = True
) -> tuple[int, int]:
    """Record many BANT facts in one transaction; every lead must exist.

    A fact already stored (same lead, kind, value and time) is a duplicate. Returns
    ``(stored, duplicates)``.
    """
    version, book = core.playbook()
    for fact in facts:
        if fact.kind not in EVIDENCE_KINDS:
            raise LeadheatError(
                f"evidence kind {fact.kind!r} must be one of {', '.join(EVIDENCE_KINDS)}"
            )

    def apply(connection: Connection, watch: Watch) -> tuple[int, int]:
        ids = core.require_leads(connection, [f.lead for f in facts])
        watch.look(ids.values())
        stored = _store_unseen(
            connection,
            EvidenceRow,
            ("lead_id", "kind", "value", "stated_at"),
            [
                {
                    "lead_id": ids[f.lead],
                    "kind": f.kind,
                    "value": f.value,
                    "stated_at": f.at,
                    "source": f.source,
                }
                for f in facts
            ],
        )
        changed = sorted({r["lead_id"] for r in stored})
        refresh_facts(connection, book, version, changed)
        watch.changed(changed)
        return len(stored), len(facts) - len(stored)

    return core.write_watched(book, core.clock(), apply, react, version=version)


def _store_unseen(
    connection: Connection,
    model: type[Touch] | type[Outcome] | type[EvidenceRow],
    identity: tuple[str, ...],
    rows: Sequence[dict[str, Any]],
) -> list[dict[str, Any]]:
    """Insert the rows whose ``identity`` columns match no stored row (nor an earlier row);
    return those. Records without ids become idempotent by what they say."""
    leads = sorted({row["lead_id"] for row in rows})
    seen = {
        tuple(getattr(stored, name) for name in identity)
        for chunk in chunked(leads)
        for stored in connection.execute(select(model).where(model.lead_id.in_(chunk)))
    }
    fresh = []
    for row in rows:
        key = tuple(row[name] for name in identity)
        if key not in seen:
            seen.add(key)
            fresh.append(row)
    if fresh:
        connection.execute(insert(model), fresh)
    return fresh


def _touch_kind(text: str) -> str:
    """A touch's kind as stored: trimmed, 1 to 100 characters, otherwise as the team writes
    it, as a CSV of touches stores it (event types, not kinds, are snake_cased).

    >>> _touch_kind("  call ")
    'call'
    """
    kind = text.strip()
    if not kind or len(kind) > 100:
        raise LeadheatError(f"touch kind {text!r} must be 1 to 100 characters")
    return kind
