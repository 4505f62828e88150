"""The dashboard for the sales team: server-rendered pages (Jinja2 + htmx), served by
``leadheat serve`` at ``/`` beside the API. People sign in (``leadheat users add``);
machines keep using API keys."""

from __future__ import annotations

from datetime import timedelta
from functools import cache
from pathlib import Path

from fastapi import APIRouter, FastAPI, HTTPException, Request
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from leadheat.settings import Settings
from leadheat.web import accounts, analytics, apidocs, followup, lists, pages, playbook, signin
from leadheat.web.refresh import Refresher
from leadheat.web.render import page

STATIC = Path(__file__).with_name("static")
MEDIA_TYPES = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}
static_router = APIRouter(include_in_schema=False)


@cache
def _asset(name: str) -> bytes:
    return (STATIC / name).read_bytes()


@static_router.get("/static/{name}")
def static(name: str) -> Response:
    """The dashboard's own script, stylesheet and icon, and the API docs' vendored assets
    (only the files shipped in ``static/``)."""
    if name not in {p.name for p in STATIC.iterdir()} or Path(name).suffix not in MEDIA_TYPES:
        raise HTTPException(404, f"no static file {name!r}")
    return Response(
        _asset(name),
        media_type=MEDIA_TYPES[Path(name).suffix],
        headers={"cache-control": "public, max-age=3600"},
    )


API_PREFIXES = ("/api/", "/v1/", "/docs", "/redoc", "/openapi.json", "/healthz")


@static_router.get("/favicon.ico")
def favicon() -> Response:
    """The icon browsers ask for on their own (pages name ``/static/favicon.svg``)."""
    return static("favicon.svg")


def wants_page(request: Request) -> bool:
    """Whether a refusal should be a page: a browser asked for a dashboard page (a link or
    a form), not a machine for the API and not htmx for a fragment (it follows
    ``HX-Redirect`` and leaves the page as it was on an error)."""
    return (
        "text/html" in request.headers.get("accept", "")
        and not request.headers.get("hx-request")
        and not request.url.path.startswith(API_PREFIXES)
    )


def _page_errors(app: FastAPI) -> None:
    """4xx refusals of dashboard pages (a stale form's CSRF token, a role's limits, an
    unknown address) as a page a person can read, with the same message the API's JSON
    shape gives machines; everything else still goes to the API's handler."""
    as_json = app.exception_handlers[StarletteHTTPException]

    async def _refused(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        if not 400 <= exc.status_code < 500 or not wants_page(request):
            answer: Response = await as_json(request, exc)  # type: ignore[misc]
            return answer
        response = page(request, "error.html", None, exc.status_code, message=str(exc.detail))
        response.headers.update(exc.headers or {})
        return response

    app.add_exception_handler(StarletteHTTPException, _refused)


def install(app: FastAPI, settings: Settings) -> None:
    """Add the dashboard's routes to the API's app (none of them is in the OpenAPI schema),
    and its background refresh of snapshots (``app.state.refresher``; the app's lifespan
    stops it)."""
    app.state.session_ttl = timedelta(seconds=settings.session_ttl)
    app.state.refresher = Refresher(app.state.lh)
    app.state.sign_in_throttle = signin.SignInThrottle()
    _page_errors(app)
    for module_router in (
        static_router, signin.router, pages.router, lists.router, followup.router,
        analytics.router, playbook.router, apidocs.router, accounts.router,
    ):  # fmt: skip
        app.include_router(module_router)
