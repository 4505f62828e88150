"""REST API for accounts: the hot ones, one with its members and coverage, and its owner."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from leadheat.accounts import account, accounts, row_json, set_owner, view_json
from leadheat.api.hygiene import no_nul
from leadheat.api.routes.leads import ERRORS, Admin, At, Reader, Service, _at
from leadheat.api.security import actor

router = APIRouter(prefix="/api/v1", responses=ERRORS, dependencies=[Depends(no_nul)])
AccountKey = Annotated[
    str, Path(max_length=320, description="The account's key: its domain or group id.")
]


class AccountRowOut(BaseModel):
    """One account in a list."""

    account: str
    name: str | None
    domain: str | None
    heat: float
    temperature: Literal["hot", "warm", "cold"]
    hot_until: str | None
    warm_until: str | None
    members: int
    owner: str | None
    roles: list[str]


class MemberOut(BaseModel):
    lead: str
    id: int
    name: str | None
    title: str | None
    role: str | None
    heat: float
    last_engaged_at: str | None
    engaged: bool


class AccountOut(BaseModel):
    """One account at one instant: heat, forecasts, members, coverage and evidence."""

    model_config = ConfigDict(extra="allow")

    account: str
    name: str | None
    domain: str | None
    owner: str | None
    at: str
    heat: float
    temperature: Literal["hot", "warm", "cold"]
    hot_until: str | None
    warm_until: str | None
    roles: list[str]
    traits: dict[str, Any]
    members: list[MemberOut]
    coverage: dict[str, Any]
    evidence: dict[str, Any]
    stated: list[dict[str, Any]]


class AccountPatch(BaseModel):
    """Who works the account: a known rep's email, or ``null`` for nobody."""

    model_config = ConfigDict(extra="forbid")

    owner: str | None = Field(max_length=320)


@router.get("/accounts", response_model=list[AccountRowOut], summary="List accounts, hottest first")
def list_accounts(
    lh: Service,
    _key: Reader,
    temperature: Literal["hot", "warm", "cold"] | None = None,
    owner: Annotated[str | None, Query(max_length=320)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    at: At = None,
) -> list[dict[str, Any]]:
    rows = accounts(lh, temperature=temperature, owner=owner, at=_at(at), limit=limit)
    return [row_json(row) for row in rows]


@router.get("/accounts/{account_key}", response_model=AccountOut, summary="One account, explained")
def show_account(lh: Service, _key: Reader, account_key: AccountKey, at: At = None) -> Any:
    return view_json(account(lh, account_key, _at(at)))


@router.patch(
    "/accounts/{account_key}", response_model=AccountOut, summary="Set an account's owner"
)
def patch_account(lh: Service, key: Admin, account_key: AccountKey, body: AccountPatch) -> Any:
    set_owner(lh, account_key, body.owner, actor=actor(key))
    return view_json(account(lh, account_key))
