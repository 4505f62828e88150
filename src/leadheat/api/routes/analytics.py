"""REST API for analytics: the report's numbers, playbook backtests, half-life sweeps and
campaign expectations, for the dashboard. The same library calls as ``leadheat report``,
``backtest`` and ``expect``; every route needs the ``read`` scope (nothing is written)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from leadheat.analytics import team
from leadheat.analytics.backtest import SWEEP, best
from leadheat.analytics.decisions import DEFAULT_HORIZON
from leadheat.analytics.expect import MIN_SIMILAR
from leadheat.analytics.report import build_report
from leadheat.api.hygiene import no_nul
from leadheat.api.routes.leads import ERRORS, Reader, Service, _at, _duration
from leadheat.playbook import parse_playbook
from leadheat.times import format_duration

router = APIRouter(prefix="/api/v1/analytics", responses=ERRORS, dependencies=[Depends(no_nul)])
Since = Annotated[
    str | None, Query(max_length=64, description="Only leads that arrived at or after (ISO 8601).")
]
Until = Annotated[
    str | None,
    Query(max_length=64, description="As of this time: only what was known then (default now)."),
]
Horizon = Annotated[
    str,
    Query(
        max_length=32,
        description="A lead converted if won within this long of its first touch, e.g. 90d.",
    ),
]
HalfLives = Annotated[
    list[str] | None,
    Query(
        alias="half_life",
        max_length=50,
        description="Half-lives to try, repeatable (default: 1d to 365d).",
    ),
]
HORIZON = format_duration(DEFAULT_HORIZON)


def _half_lives(values: list[str] | None) -> list[timedelta]:
    if not values:
        return list(SWEEP)
    return sorted({_duration(v, "half_life") for v in values})


@router.get("/report", summary="Conversion breakdowns, funnel, SLA per rep, heat and trend")
def report(
    lh: Service,
    _key: Reader,
    since: Since = None,
    until: Until = None,
    horizon: Horizon = HORIZON,
) -> dict[str, Any]:
    """The numbers of ``leadheat report --json``: each breakdown (``by_temperature``,
    ``by_grade``, ``by_first_touch_delay``, ``by_lead_age``, ``decay_curve``, ``by_source``,
    ``by_campaign``, ``by_rep``, ``by_sequence``, ``by_account_temperature``,
    ``by_coverage``) is a list of rows with ``bucket``,
    ``leads``, ``won``, ``rate``, ``low``, ``high`` (Wilson 95 %) and ``small``."""
    built = build_report(
        lh,
        since=_at(since, "since"),
        until=_at(until, "until"),
        horizon=_duration(horizon, "horizon"),
    )
    return built.as_json()


@router.get("/half-lives", summary="Which half-life's heat predicts conversion best")
def half_lives(
    lh: Service,
    _key: Reader,
    half_life: HalfLives = None,
    converts_on: Annotated[
        str | None,
        Query(
            max_length=100,
            description="Judge against this event type at snapshots instead of won outcomes.",
        ),
    ] = None,
    within: Annotated[str, Query(max_length=32, description="With converts_on.")] = "28d",
    every: Annotated[str, Query(max_length=32, description="With converts_on.")] = "28d",
    since: Since = None,
    until: Until = None,
    horizon: Horizon = HORIZON,
) -> dict[str, Any]:
    spans = _half_lives(half_life)
    start, end = _at(since, "since"), _at(until, "until")
    if converts_on is None:
        rows = team.half_life_sweep(
            lh, spans, horizon=_duration(horizon, "horizon"), since=start, until=end
        )
    else:
        rows = team.stream_sweep(
            lh,
            converts_on,
            spans,
            within=_duration(within, "within"),
            every=_duration(every, "every"),
            since=start,
            until=end,
        )
    top = best(rows)
    return {
        "half_life_sweep": [r.as_json() for r in rows],
        "best_half_life": None if top is None else format_duration(top.half_life),
    }


class BacktestIn(BaseModel):
    """A candidate playbook to replay the past with."""

    playbook: str = Field(max_length=200_000, description="The candidate playbook (TOML).")
    against: str | None = Field(
        None, max_length=200_000, description="Compare with this one (default: the current)."
    )
    horizon: str = Field(HORIZON, max_length=32)
    since: str | None = Field(None, max_length=64)
    until: str | None = Field(None, max_length=64)


@router.post("/backtest", summary="Replay the past under a candidate playbook")
async def backtest(body: BacktestIn, request: Request, lh: Service, _key: Reader) -> dict[str, Any]:
    """Conversion by band, ROC-AUC of heat, share of converters hot, leads re-banded, for the
    current and the candidate playbook. A playbook with a mistake is a 422 naming the line;
    one that runs past ``LEADHEAT_BACKTEST_TIMEOUT`` is stopped and answered 503."""
    candidate = parse_playbook(body.playbook, "playbook")
    against = None if body.against is None else parse_playbook(body.against, "against")
    compared = await team.backtest_within(
        request.app.state.backtest_timeout,
        lh,
        candidate,
        against,
        horizon=_duration(body.horizon, "horizon"),
        since=_at(body.since, "since"),
        until=_at(body.until, "until"),
    )
    return compared.as_json()


@router.get("/expectation", summary="Expected conversions of a campaign list")
def expectation(
    lh: Service,
    _key: Reader,
    lead: Annotated[
        list[str] | None,
        Query(max_length=1000, description="The list's leads (emails, external ids, id:N)."),
    ] = None,
    temperature: Annotated[
        Literal["hot", "warm", "cold"] | None, Query(description="Or every open lead of it.")
    ] = None,
    source: Annotated[
        str | None, Query(max_length=200, description="Or every open lead from it.")
    ] = None,
    horizon: Horizon = HORIZON,
    min_similar: Annotated[int, Query(ge=1, le=100_000)] = MIN_SIMILAR,
) -> dict[str, Any]:
    ids = None
    if lead:
        ids = team.resolve(lh, [(f"lead[{i}]", ref) for i, ref in enumerate(lead)])
    return team.expectation(
        lh,
        lead_ids=ids,
        temperature=temperature,
        source=source,
        horizon=_duration(horizon, "horizon"),
        min_similar=min_similar,
    ).as_json()
