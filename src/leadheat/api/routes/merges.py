"""Suggested merges over HTTP: the pairs of leads public collection named as one person but
may not merge on its own (see SECURITY.md), for a secret admin key to confirm or dismiss."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query

from leadheat.api.hygiene import no_nul
from leadheat.api.routes.leads import ERRORS, Admin, Service
from leadheat.api.schemas import DoneOut, SuggestionOut
from leadheat.api.security import actor
from leadheat.views import suggestion_json

router = APIRouter(prefix="/api/v1", responses=ERRORS, dependencies=[Depends(no_nul)])
SuggestionId = Annotated[int, Path(ge=1, le=2**62, description="The suggestion's `id`.")]


@router.get(
    "/merges/suggested",
    response_model=list[SuggestionOut],
    summary="Suggested merges, newest first",
)
def suggested(
    lh: Service,
    _key: Admin,
    status: Annotated[
        Literal["open", "confirmed", "dismissed", "all"],
        Query(description="Which ones: open (the default), confirmed, dismissed or all."),
    ] = "open",
    lead: Annotated[str | None, Query(description="Only those naming this lead.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="At most N, newest first.")] = 100,
) -> list[dict[str, Any]]:
    found = lh.suggested_merges(status=None if status == "all" else status, lead=lead, limit=limit)
    return [suggestion_json(item) for item in found]


@router.post(
    "/merges/suggested/{suggestion_id}/confirm",
    response_model=DoneOut,
    summary="Merge the two leads as suggested",
)
def confirm(suggestion_id: SuggestionId, lh: Service, key: Admin) -> dict[str, Any]:
    """The suggestion's ``lead_id`` is merged into ``into_lead_id`` (answered as ``lead``);
    audited as ``merge.confirm`` and ``lead.merge``."""
    return {"ok": True, "lead": lh.confirm_merge(suggestion_id, actor=actor(key))}


@router.post(
    "/merges/suggested/{suggestion_id}/dismiss",
    response_model=DoneOut,
    summary="Two people after all: close the suggestion",
)
def dismiss(suggestion_id: SuggestionId, lh: Service, key: Admin) -> dict[str, Any]:
    """Nothing is merged; audited as ``merge.dismiss``. ``lead`` is the suggestion's
    ``lead_id``."""
    return {"ok": True, "lead": lh.dismiss_merge(suggestion_id, actor=actor(key))}
