"""REST API for speed to lead: reps, SLA clocks and the notifications sent (or not)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query

from leadheat.api.hygiene import no_nul
from leadheat.api.routes.leads import ERRORS, Admin, Reader, Service
from leadheat.api.schemas import ClockOut, DeliveryOut, RepIn, RepOut, RetryOut
from leadheat.api.security import actor
from leadheat.store.keys import Scope
from leadheat.views import clock_json, delivery_json, rep_json

router = APIRouter(prefix="/api/v1", responses=ERRORS, dependencies=[Depends(no_nul)])
Email = Annotated[str, Path(max_length=320, description="The rep's email.")]
Limit = Annotated[int, Query(ge=1, le=1000, description="At most N, newest first.")]


@router.get("/reps", response_model=list[RepOut], summary="Reps and their open hot leads")
def list_reps(lh: Service, _key: Reader) -> list[dict[str, Any]]:
    return [rep_json(rep, count) for rep, count in lh.reps()]


@router.post("/reps", response_model=RepOut, summary="Add or update a rep")
def add_rep(body: RepIn, lh: Service, key: Admin) -> dict[str, Any]:
    rep = lh.add_rep(
        body.email,
        name=body.name,
        team=body.team,
        capacity=body.capacity,
        weight=body.weight,
        actor=actor(key),
    )
    return rep_json(rep)


@router.post("/reps/{email}/pause", response_model=RepOut, summary="No new leads for a rep")
def pause_rep(email: Email, lh: Service, key: Admin) -> dict[str, Any]:
    return rep_json(lh.set_rep_active(email, False, actor=actor(key)))


@router.post("/reps/{email}/resume", response_model=RepOut, summary="New leads again")
def resume_rep(email: Email, lh: Service, key: Admin) -> dict[str, Any]:
    return rep_json(lh.set_rep_active(email, True, actor=actor(key)))


@router.get("/deliveries", response_model=list[DeliveryOut], summary="Notifications")
def list_deliveries(
    lh: Service,
    key: Reader,
    status: Annotated[Literal["pending", "delivered", "failed"] | None, Query()] = None,
    lead: Annotated[str | None, Query(max_length=320)] = None,
    limit: Limit = 50,
) -> list[dict[str, Any]]:
    """Webhook and Slack URLs are masked unless the key is an admin's (they hold secrets)."""
    masked = Scope.ADMIN not in key.scopes
    found = lh.deliveries(status=status, lead=lead, limit=limit)
    return [delivery_json(item, masked=masked) for item in found]


@router.post(
    "/deliveries/{delivery_id}/retry", response_model=RetryOut, summary="Send a failed one again"
)
def retry_delivery(
    delivery_id: Annotated[int, Path(ge=1, le=2**62)], lh: Service, key: Admin
) -> dict[str, Any]:
    lh.retry_delivery(delivery_id, actor=actor(key))
    return {"ok": True, "id": delivery_id}


@router.get("/sla", response_model=list[ClockOut], summary="SLA clocks")
def list_clocks(
    lh: Service,
    _key: Reader,
    lead: Annotated[str | None, Query(max_length=320)] = None,
    owner: Annotated[str | None, Query(max_length=320)] = None,
    open_only: Annotated[bool, Query(alias="open")] = False,
    limit: Limit = 50,
) -> list[dict[str, Any]]:
    now = lh.clock()
    clocks = lh.sla_clocks(lead=lead, owner=owner, open_only=open_only, limit=limit)
    return [clock_json(clock, now) for clock in clocks]
