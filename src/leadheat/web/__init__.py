"""The dashboard for the sales team: server-rendered pages (Jinja2 + htmx), served by
``leadheat serve`` at ``/`` beside the API. People sign in (``leadheat users add``);
machines keep using API keys."""

from __future__ import annotations

from datetime import timedelta
from functools import cache
from pathlib import Path

from fastapi import APIRouter, FastAPI, HTTPException
from fastapi.responses import Response

from leadheat.settings import Settings
from leadheat.web import analytics, followup, lists, pages, playbook, signin
from leadheat.web.refresh import Refresher

STATIC = Path(__file__).with_name("static")
MEDIA_TYPES = {".js": "text/javascript", ".css": "text/css"}
static_router = APIRouter(include_in_schema=False)


@cache
def _asset(name: str) -> bytes:
    return (STATIC / name).read_bytes()


@static_router.get("/static/{name}")
def static(name: str) -> Response:
    """The dashboard's own script and stylesheet (only the files shipped in ``static/``)."""
    if name not in {p.name for p in STATIC.iterdir()} or Path(name).suffix not in MEDIA_TYPES:
        raise HTTPException(404, f"no static file {name!r}")
    return Response(
        _asset(name),
        media_type=MEDIA_TYPES[Path(name).suffix],
        headers={"cache-control": "public, max-age=3600"},
    )


def install(app: FastAPI, settings: Settings) -> None:
    """Add the dashboard's routes to the API's app (none of them is in the OpenAPI schema),
    and its background refresh of snapshots (``app.state.refresher``; the app's lifespan
    stops it)."""
    app.state.session_ttl = timedelta(seconds=settings.session_ttl)
    app.state.refresher = Refresher(app.state.lh)
    app.state.sign_in_throttle = signin.SignInThrottle()
    for module_router in (
        static_router, signin.router, pages.router, lists.router, followup.router,
        analytics.router, playbook.router,
    ):  # fmt: skip
        app.include_router(module_router)
