"""The HTTP API: ``create_app(settings)`` builds it; ``leadheat serve`` runs it.

REST under ``/api/v1`` (bearer API keys with scopes), Segment-compatible collection under
``/v1``, OpenAPI at ``/docs`` and ``/openapi.json``.
"""

from __future__ import annotations

from fastapi import FastAPI

from leadheat import __version__
from leadheat.api import errors
from leadheat.api.routes import collect, leads, playbook
from leadheat.service import Leadheat
from leadheat.settings import Settings


def create_app(settings: Settings | None = None, lh: Leadheat | None = None) -> FastAPI:
    """The application over one database; the schema is migrated at start."""
    settings = settings or Settings()
    service = lh or Leadheat(settings.database_url)
    service.init()
    app = FastAPI(
        title="leadheat",
        version=__version__,
        description=(
            "Which leads are hot right now, and why. REST API under `/api/v1` "
            "(`Authorization: Bearer <key>`), Segment-compatible collection under `/v1`."
        ),
    )
    app.state.lh = service
    errors.install(app)
    app.include_router(leads.router, tags=["leads"])
    app.include_router(playbook.router, tags=["playbook"])
    app.include_router(collect.router)

    @app.get("/healthz", include_in_schema=False)
    def health() -> dict[str, str]:
        return {"status": "ok"}

    return app
