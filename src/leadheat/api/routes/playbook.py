"""The playbook over HTTP: everyone with a key reads the shared definition of hot; admins
replace it (a new version; every lead is re-scored)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from leadheat.api.hygiene import no_nul
from leadheat.api.routes.leads import ERRORS
from leadheat.api.schemas import PlaybookIn, PlaybookOut
from leadheat.api.security import actor, leadheat, require
from leadheat.service import Leadheat
from leadheat.speed.masking import mask_summary, mask_urls_in
from leadheat.store.keys import KeyInfo, Scope

router = APIRouter(prefix="/api/v1", responses=ERRORS, dependencies=[Depends(no_nul)])


@router.get("/playbook", response_model=PlaybookOut, summary="The current playbook")
def read_playbook(
    lh: Annotated[Leadheat, Depends(leadheat)],
    key: Annotated[KeyInfo, Depends(require(Scope.READ))],
) -> dict[str, Any]:
    """Alert URLs (Slack's are bearer secrets) are masked unless the key is an admin's."""
    version, book = lh.playbook()
    source, summary = lh.playbook_source(), book.summary()
    if Scope.ADMIN not in key.scopes:
        source, summary = mask_urls_in(source), mask_summary(summary)
    return {"version": version, "source": source, "playbook": summary}


@router.put("/playbook", response_model=PlaybookOut, summary="Replace the playbook")
def replace_playbook(
    body: PlaybookIn,
    request: Request,
    lh: Annotated[Leadheat, Depends(leadheat)],
    key: Annotated[KeyInfo, Depends(require(Scope.ADMIN))],
) -> dict[str, Any]:
    """Errors name the key and the line of the TOML (422), alerts to hosts or secrets the
    operator does not allow included."""
    lh.apply_playbook(body.source, actor=actor(key), egress=request.app.state.egress)
    lh.adopt_unowned()  # hot leads the change left with nobody on them, as the CLI does
    return read_playbook(lh, key)
