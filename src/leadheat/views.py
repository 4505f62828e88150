"""Plain-data views of leads and scores: the shape they take as JSON in the CLI and API."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from leadheat.scoring.evidence import EvidenceState
from leadheat.scoring.lead import one_line_reason
from leadheat.speed.masking import mask_url
from leadheat.store.fields import COMMON_FIELDS
from leadheat.times import isoformat

if TYPE_CHECKING:  # only named in annotations: showing a lead loads none of their modules
    from leadheat.scoring.lead import LeadScore
    from leadheat.service import LeadRow, LeadView
    from leadheat.store.audit import AuditEntry
    from leadheat.store.clocks import ClockView, RepTimings
    from leadheat.store.outbox import DeliveryView
    from leadheat.store.privacy import Erasure
    from leadheat.store.reps import Rep
    from leadheat.store.suggestions import Suggestion


def lead_json(lead: Mapping[str, Any]) -> dict[str, Any]:
    """Who the lead is: the common fields, other attributes and when they first showed up."""
    common = {name: lead.get(name) for name in COMMON_FIELDS}
    attributes = {k: v for k, v in (lead.get("attributes") or {}).items() if k not in common}
    return {
        "id": lead["id"],
        **common,
        "attributes": attributes,
        "created_at": isoformat(lead["created_at"]),
    }


def row_json(row: LeadRow) -> dict[str, Any]:
    """One line of a list of leads."""
    return {
        "id": row.lead_id,
        "email": row.email,
        "external_id": row.external_id,
        "name": row.name,
        "company": row.company,
        "owner": row.owner,
        "heat": row.heat,
        "fit": row.fit,
        "qualified": row.qualified,
        "temperature": row.temperature.value,
        "grade": row.grade,
        "status": row.status,
        "reason": row.reason,
        "last_engaged_at": isoformat(row.last_engaged_at),
        "probability": row.probability,
    }


def explanation_json(score: LeadScore, qualified_at: float) -> dict[str, Any]:
    """Why the lead has its score: heat by signal (``pulled_down``: the negative signals and
    what each takes off heat now), fit rules matched and missed, evidence."""
    by_state: dict[str, list[str]] = {state.value: [] for state in EvidenceState}
    for kind, status in score.evidence.items():
        by_state[status.state.value].append(kind)
    return {
        "summary": one_line_reason(score),
        "temperature": score.reason,
        "heat": [
            {
                "type": s.type,
                "events": s.events,
                "heat": s.heat,
                "last_at": isoformat(s.last_at),
            }
            for s in score.signals
        ],
        "pulled_down": [
            {
                "type": s.type,
                "events": s.events,
                "heat": s.heat,
                "last_at": isoformat(s.last_at),
            }
            for s in score.pulled_down
        ],
        "fit": {
            "points": score.fit.points,
            "qualified_at": qualified_at,
            "matched": [
                {"rule": c.rule, "points": c.points}
                for c in score.fit.checks
                if c.matched and not c.disqualify
            ],
            "missed": [
                {"rule": c.rule, "points": c.points, "missing": c.missing}
                for c in score.fit.checks
                if not c.matched and not c.disqualify
            ],
            "disqualified_by": list(score.fit.disqualified_by),
            "completeness": score.fit.completeness,
        },
        "evidence": by_state,
    }


def view_json(view: LeadView, qualified_at: float) -> dict[str, Any]:
    """Everything ``leadheat show`` says about a lead at one instant."""
    score = view.score
    return {
        "lead": lead_json(view.lead),
        "at": isoformat(score.at),
        "heat": score.heat,
        "fit": score.fit.points,
        "qualified": score.qualified,
        "temperature": score.temperature.value,
        "grade": score.grade,
        "status": score.status,
        "previously_engaged": score.previously_engaged,
        "last_engaged_at": isoformat(score.last_engaged_at),
        "hot_until": isoformat(score.hot_until),
        "warm_until": isoformat(score.warm_until),
        "hot_from": isoformat(score.hot_from),
        "evidence": {
            kind: {
                "state": status.state.value,
                "value": status.value,
                "stated_at": isoformat(status.stated_at),
                "fresh_until": isoformat(status.fresh_until),
                "source": status.source,
            }
            for kind, status in score.evidence.items()
        },
        "explanation": explanation_json(score, qualified_at),
        "touches": [
            {
                "kind": t.kind,
                "at": isoformat(t.at),
                "direction": t.direction,
                "result": t.result,
                "rep": t.rep,
            }
            for t in view.touches
        ],
        "events": score.events_seen,
        "playbook_version": view.playbook_version,
        "probability": score.probability,
        "probability_at": isoformat(view.probability_at),
    }


def clock_json(clock: ClockView, now: datetime) -> dict[str, Any]:
    """An SLA clock for ``--json`` and the API."""
    return {
        "id": clock.id,
        "lead": clock.lead_id,
        "trigger": clock.trigger,
        "owner": clock.owner,
        "team": clock.team,
        "started_at": isoformat(clock.started_at),
        "deadline": isoformat(clock.deadline),
        "stopped_at": isoformat(clock.stopped_at),
        "response_seconds": None if clock.response is None else clock.response.total_seconds(),
        "touched_by": clock.touched_by,
        "breached_at": isoformat(clock.breached_at),
        "state": clock.state(now),
    }


def delivery_json(item: DeliveryView, *, masked: bool = False) -> dict[str, Any]:
    """A notification for ``--json`` and the API (the payload as sent); ``masked``: a
    webhook or Slack URL with its secrets masked, for those who only read."""
    lead = item.payload.get("lead") or {}
    return {
        "id": item.id,
        "key": item.key,
        "trigger": item.trigger,
        "channel": item.channel,
        "target": mask_url(item.target) if masked and item.channel != "email" else item.target,
        "lead": {"id": item.lead_id, "email": lead.get("email")},
        "status": item.status,
        "attempts": item.attempts,
        "next_attempt_at": isoformat(item.next_attempt_at),
        "last_error": item.last_error,
        "created_at": isoformat(item.created_at),
        "delivered_at": isoformat(item.delivered_at),
        "payload": dict(item.payload),
    }


def rep_json(rep: Rep, open_hot: int | None = None) -> dict[str, Any]:
    """A rep for ``--json`` and the API (``open_hot`` when it was counted)."""
    data: dict[str, Any] = {
        "email": rep.email,
        "name": rep.name,
        "team": rep.team,
        "active": rep.active,
        "capacity": rep.capacity,
        "weight": rep.weight,
        "assigned": rep.assigned,
        "last_assigned_at": isoformat(rep.last_assigned_at),
    }
    if open_hot is not None:
        data["open_hot"] = open_hot
    return data


def timing_json(timing: RepTimings) -> dict[str, Any]:
    """One rep's SLA record for ``--json`` and the API."""
    median = timing.median_response
    return {
        "owner": timing.owner,
        "clocks": timing.clocks,
        "met": timing.met,
        "missed": timing.missed,
        "breached": timing.breached,
        "running": timing.running,
        "median_response_seconds": None if median is None else median.total_seconds(),
    }


def suggestion_json(item: Suggestion) -> dict[str, Any]:
    """One suggested merge for ``--json`` and the API."""
    return {
        "id": item.id,
        "lead_id": item.lead_id,
        "into_lead_id": item.into_lead_id,
        "reason": item.reason,
        "source": item.source,
        "created_at": isoformat(item.created_at),
        "status": item.status,
        "resolved_at": isoformat(item.resolved_at) if item.resolved_at is not None else None,
        "resolved_by": item.resolved_by,
    }


def audit_json(entry: AuditEntry) -> dict[str, Any]:
    """One audit record for ``--json`` and the API."""
    return {
        "id": entry.id,
        "at": isoformat(entry.at),
        "actor": entry.actor,
        "action": entry.action,
        "subject": entry.subject,
        "detail": dict(entry.detail),
    }


def erasure_json(erased: Erasure) -> dict[str, Any]:
    """What an erasure removed: the leads and the rows per table."""
    return {
        "ok": True,
        "lead": erased.lead_id,
        "lead_ids": list(erased.lead_ids),
        "removed": dict(erased.removed),
    }
