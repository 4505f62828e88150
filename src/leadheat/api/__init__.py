"""The HTTP API: ``create_app(settings)`` builds it; ``leadheat serve`` runs it.

REST under ``/api/v1`` (bearer API keys with scopes), Segment-compatible collection under
``/v1`` and ``/beacon/v1`` (with CORS, for web pages), OpenAPI at ``/docs`` and
``/openapi.json``.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from leadheat import __version__, web
from leadheat.api import errors, logs
from leadheat.api.cors import CollectionCors
from leadheat.api.group_commit import EventCommit, GroupCommit
from leadheat.api.limits import Guard, RateLimiter
from leadheat.api.routes import (
    accounts,
    analytics,
    collect,
    engage,
    leads,
    merges,
    playbook,
    privacy,
    speed,
)
from leadheat.delivery.egress import Egress
from leadheat.heap import settle_heap
from leadheat.service import Leadheat
from leadheat.settings import Settings

SERVE_WORKER_ENV = "LEADHEAT_SERVE_WORKER"
"""Set by ``leadheat serve --workers N``: whether each process runs the notification worker."""
SERVE_KEEPER_ENV = "LEADHEAT_SERVE_KEEPER"
"""Set by ``leadheat serve --workers N``: whether a follow-up keeper process runs beside
them (then their workers leave the follow-up state to it)."""


def served_app() -> FastAPI:
    """The app of one of ``leadheat serve --workers N``'s processes: the settings from the
    environment (``LEADHEAT_DATABASE_URL``, set by the command), the notification worker
    as the command was told (any number of workers may share a PostgreSQL database)."""
    app = create_app(
        Settings(),
        worker=os.environ.get(SERVE_WORKER_ENV, "1") == "1",
        keeper=os.environ.get(SERVE_KEEPER_ENV, "0") == "1",
    )
    settle_heap()
    return app


def create_app(
    settings: Settings | None = None,
    lh: Leadheat | None = None,
    *,
    worker: bool = False,
    keeper: bool = False,
) -> FastAPI:
    """The application over one database; the schema is migrated at start.

    ``worker=True`` runs the notification worker in a thread for the app's lifetime, woken
    by every request that queues an alert (``leadheat serve`` does this by default).
    ``keeper=True``: a follow-up keeper process runs beside the app
    (:mod:`leadheat.engage.keeper`), so the worker leaves the follow-up state to it.
    """
    settings = settings or Settings()
    logs.install()
    service = lh or Leadheat(settings.database_url)
    service.init()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if not worker:
            yield
            app.state.refresher.close()  # the dashboard's snapshots (leadheat.web.refresh)
            return
        from leadheat.delivery.worker import start_in_thread

        thread, stop = start_in_thread(service, settings, followups=not keeper)
        try:
            yield
        finally:
            app.state.refresher.close()
            stop.set()
            service.outbox_ready.set()
            thread.join(timeout=15)

    app = FastAPI(
        lifespan=lifespan,
        docs_url=None,  # served from the package's own assets by leadheat.web.apidocs
        redoc_url=None,
        title="leadheat",
        version=__version__,
        description=(
            "Which leads are hot right now, and why. REST API under `/api/v1` "
            "(`Authorization: Bearer <key>`), Segment-compatible collection under `/v1`."
        ),
    )
    app.state.lh = service
    app.state.group_commit = GroupCommit(service)
    app.state.event_commit = EventCommit(service)
    app.state.egress = Egress.from_settings(settings)
    app.state.backtest_timeout = settings.backtest_timeout
    if settings.rate_limit > 0:
        app.state.limiter = RateLimiter(settings.rate_limit, 2 * settings.rate_limit)
    app.add_middleware(Guard, max_body=settings.max_body, body_timeout=settings.body_timeout)
    app.add_middleware(CollectionCors)  # outermost: every collection answer carries CORS
    errors.install(app)
    # first: the routes analytics SDKs post to many times a second are matched before the
    # REST API's dozens (FastAPI tries routes in order)
    app.include_router(collect.router)
    app.include_router(collect.beacon)
    app.include_router(leads.router, tags=["leads"])
    app.include_router(accounts.router, tags=["accounts"])
    app.include_router(playbook.router, tags=["playbook"])
    app.include_router(speed.router, tags=["speed to lead"])
    app.include_router(privacy.router, tags=["privacy"])
    app.include_router(merges.router, tags=["merges"])
    app.include_router(analytics.router, tags=["analytics"])
    app.include_router(engage.router, tags=["follow-up"])
    app.include_router(engage.public)
    web.install(app, settings)

    @app.get("/healthz", include_in_schema=False)
    def health() -> dict[str, str]:
        return {"status": "ok"}

    return app
