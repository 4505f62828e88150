"""The engagement lists as plain JSON data, the same for the CLI's ``--json`` and the API."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from leadheat.engage.expect import Expectation
from leadheat.engage.lists import LostLead, WinbackList
from leadheat.engage.tasks import Task
from leadheat.store.nurture import EnrollmentView
from leadheat.times import format_duration, isoformat


def _days(span: timedelta) -> float:
    return round(span.total_seconds() / 86400, 3)


def task_json(task: Task) -> dict[str, Any]:
    return {
        "lead": task.lead,
        "lead_id": task.lead_id,
        "name": task.name,
        "owner": task.owner,
        "due": isoformat(task.due),
        "overdue": task.overdue,
        "overdue_seconds": round(task.overdue_by.total_seconds()),
        "overdue_calendar_seconds": round(task.late_by.total_seconds()),
        "never_contacted": task.never_contacted,
        "temperature": task.temperature.value,
        "reason": task.reason,
        "next_step": task.next_step,
        "last_touch": isoformat(task.last_touch) if task.last_touch else None,
        "cadence": task.cadence,
    }


def lost_json(lost: LostLead) -> dict[str, Any]:
    return {
        "lead": lost.lead,
        "lead_id": lost.lead_id,
        "name": lost.name,
        "owner": lost.owner,
        "hot_from": isoformat(lost.hot_from),
        "hot_until": isoformat(lost.hot_until),
        "temperature": lost.temperature.value,
        "heat_then": round(lost.heat_then, 3),
        "heat_now": round(lost.heat_now, 3),
        "reason": lost.reason,
    }


def expectation_json(found: Expectation) -> dict[str, Any]:
    return {
        "leads": found.members,
        "expected_conversions": round(found.expected, 3),
        "expected_rate": found.rate,
        "low": found.low / found.members if found.members else 0.0,
        "high": found.high / found.members if found.members else 1.0,
        "sample": found.sample,
        "groups": [{**rate.as_row(), "members": size} for rate, size in found.groups],
        "hot_rate": found.hot.as_row(),
    }


def winback_json(found: WinbackList) -> dict[str, Any]:
    return {
        "at": isoformat(found.at),
        "older_than": format_duration(found.older_than),
        "horizon": format_duration(found.horizon),
        "expected": expectation_json(found.expectation),
        "leads": [
            {
                "lead": lead.lead,
                "lead_id": lead.lead_id,
                "name": lead.name,
                "owner": lead.owner,
                "why": lead.why,
                "age_days": _days(lead.age),
                "age_bucket": lead.age_bucket,
                "temperature": "cold",
                "previously_engaged": True,
                "last_engaged_at": isoformat(lead.last_engaged_at)
                if lead.last_engaged_at
                else None,
            }
            for lead in found.leads
        ],
    }


def enrollment_json(item: EnrollmentView) -> dict[str, Any]:
    return {
        "id": item.id,
        "lead_id": item.lead_id,
        "sequence": item.sequence,
        "sent": item.step,
        "status": item.status,
        "enrolled_at": isoformat(item.enrolled_at),
        "next_at": isoformat(item.next_at) if item.next_at else None,
        "stopped_at": isoformat(item.stopped_at) if item.stopped_at else None,
        "stop_reason": item.stop_reason,
        "enrolled_by": item.enrolled_by,
    }
