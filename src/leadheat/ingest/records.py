"""What the team records about a lead, validated, as every entry point hands it over: CSV
imports, the HTTP API, the demo and the Python API."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from leadheat.identity import LeadKey


@dataclass(frozen=True)
class TouchInput:
    """A contact by the team (call, email, sms, meeting)."""

    lead: LeadKey
    kind: str
    at: datetime
    direction: str = "outbound"
    result: str | None = None
    rep: str | None = None
    note: str | None = None


@dataclass(frozen=True)
class OutcomeInput:
    """How a lead ended: won, lost or disqualified."""

    lead: LeadKey
    outcome: str
    at: datetime
    reason: str | None = None


@dataclass(frozen=True)
class EvidenceInput:
    """A BANT fact (need, budget, timeline, authority) the lead stated at ``at``."""

    lead: LeadKey
    kind: str
    value: str
    at: datetime
    source: str = "manual"
