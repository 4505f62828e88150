"""People's data over HTTP: export everything about a person, erase them, and read the audit
log of who changed what. Admin keys only: these routes hand out or destroy personal data."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from leadheat.api.hygiene import no_nul
from leadheat.api.routes.leads import ERRORS, Admin, Service
from leadheat.api.schemas import AuditOut, ErasedOut, ExportOut
from leadheat.api.security import actor
from leadheat.store.audit import AuditAction
from leadheat.views import audit_json, erasure_json

router = APIRouter(prefix="/api/v1", responses=ERRORS, dependencies=[Depends(no_nul)])


@router.delete(
    "/leads/{lead}", response_model=ErasedOut, summary="Erase a person and everything about them"
)
def erase_lead(lead: str, lh: Service, key: Admin) -> dict[str, Any]:
    """The lead, the leads merged into it, their identities, history, SLA clocks and
    notifications, in one transaction; afterwards no key finds them. The audit log keeps the
    internal number and the rows removed per table, nothing personal."""
    return erasure_json(lh.erase(lead, actor=actor(key)))


@router.get(
    "/leads/{lead}/export", response_model=ExportOut, summary="Everything stored about a person"
)
def export_lead(lead: str, lh: Service, key: Admin) -> dict[str, Any]:
    """Every row about the person, per table (the CLI's `leadheat export`); audited."""
    return lh.export(lead, actor=actor(key))


@router.get("/audit", response_model=list[AuditOut], summary="Who changed what, newest first")
def audit_log(
    lh: Service,
    _key: Admin,
    limit: Annotated[int, Query(ge=1, le=1000, description="At most N, newest first.")] = 50,
    action: Annotated[AuditAction | None, Query(description="Only this action.")] = None,
) -> list[dict[str, Any]]:
    entries = lh.audit_log(limit=limit, action=action.value if action is not None else None)
    return [audit_json(entry) for entry in entries]
