"""One error shape for every 4xx: ``{"error": "what is wrong", "field": "where"}``.

Clients (and people reading logs) should never have to parse a stack trace or guess which
field of a 100-message batch was refused.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import DBAPIError, OperationalError
from starlette.exceptions import HTTPException

from leadheat.analytics.decisions import TooLongError
from leadheat.api.hygiene import TooLargeError
from leadheat.errors import UnknownAccountError
from leadheat.identity import LeadKeyError
from leadheat.ingest.csv_files import CsvImportError
from leadheat.ingest.segment import SegmentError
from leadheat.playbook import PlaybookError
from leadheat.service import (
    InputError,
    LeadheatError,
    NotInitialisedError,
    UnknownLeadError,
)
from leadheat.times import TimeFormatError


class ErrorOut(BaseModel):
    """Every error response."""

    error: str
    field: str | None = None
    line: int | None = None


def error(
    status: int,
    message: str,
    field: str | None = None,
    request: Request | None = None,
    **extra: Any,
) -> JSONResponse:
    body: dict[str, Any] = {"error": message, "field": field, **extra}
    if request is not None and request.url.path.startswith(("/v1/", "/beacon/v1/")):
        # Segment's own shape too: SDKs (rudder-sdk-python) read ``code`` from refusals and
        # would otherwise crash and retry a batch that can never succeed.
        body.update(code=status, message=f"{field}: {message}" if field else message)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(body, status_code=status, headers=headers)


def _location(loc: tuple[Any, ...]) -> str:
    """``("body", 3, "timestamp")`` → ``[3].timestamp``; ``("query", "limit")`` → ``limit``.

    Union branches (``EventIn``, ``list[EventIn]``) are pydantic's, not the client's: left out.
    """
    parts = [
        p
        for p in loc
        if p not in ("body", "query", "path", "header")
        and not (isinstance(p, str) and ("[" in p or p[:1].isupper()))
    ]
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "body"


def install(app: FastAPI) -> None:
    """Register the handlers that turn every expected failure into :class:`ErrorOut`."""

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = list(exc.errors())
        # With a union body (one event or a list), the branch the body did not take fails
        # with a type mismatch at its root; the other branch's errors are the useful ones.
        useful = [
            p
            for p in problems
            if p.get("type") not in ("list_type", "model_attributes_type", "dict_type")
            or len(p.get("loc", ())) > 2
        ]
        problems = useful or problems
        first = problems[0] if problems else {"loc": ("body",), "msg": "invalid request"}
        return error(
            422,
            str(first.get("msg", "invalid")).removeprefix("Value error, "),
            _location(tuple(first.get("loc", ()))),
            errors=[
                {"field": _location(tuple(p.get("loc", ()))), "error": p.get("msg")}
                for p in problems[:20]
            ],
        )

    @app.exception_handler(DBAPIError)
    async def _database(request: Request, exc: DBAPIError) -> JSONResponse:
        """The database went away (a restart, a failover): 503 and "try again", which SDKs
        and the REST clients do; the connection pool reconnects on the next request."""
        if not exc.connection_invalidated and not isinstance(exc, OperationalError):
            raise exc
        response = error(503, "the database is unavailable; retry shortly", request=request)
        response.headers["Retry-After"] = "1"
        return response

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> JSONResponse:
        response = error(exc.status_code, str(exc.detail), request=request)
        response.headers.update(exc.headers or {})
        return response

    @app.exception_handler(InputError)
    async def _input(request: Request, exc: InputError) -> JSONResponse:
        return error(400, exc.message, exc.field, request)

    @app.exception_handler(TooLargeError)
    async def _too_large(request: Request, exc: TooLargeError) -> JSONResponse:
        return error(413, exc.message, exc.field, request)

    @app.exception_handler(SegmentError)
    async def _segment(request: Request, exc: SegmentError) -> JSONResponse:
        return error(400, exc.message, exc.field, request)

    @app.exception_handler(UnknownLeadError)
    async def _unknown(_: Request, exc: UnknownLeadError) -> JSONResponse:
        return error(404, str(exc), "lead")

    @app.exception_handler(UnknownAccountError)
    async def _unknown_account(_: Request, exc: UnknownAccountError) -> JSONResponse:
        return error(404, str(exc), "account")

    @app.exception_handler(TooLongError)
    async def _too_long(request: Request, exc: TooLongError) -> JSONResponse:
        return error(503, str(exc), request=request)

    @app.exception_handler(NotInitialisedError)
    async def _uninitialised(_: Request, exc: NotInitialisedError) -> JSONResponse:
        return error(503, str(exc))

    @app.exception_handler(PlaybookError)
    async def _playbook(_: Request, exc: PlaybookError) -> JSONResponse:
        first = exc.problems[0]
        return error(
            422,
            first.message,
            first.key or "playbook",
            line=first.line,
            errors=[{"field": p.key, "line": p.line, "error": p.message} for p in exc.problems],
        )

    for kind in (LeadheatError, LeadKeyError, TimeFormatError, CsvImportError):

        @app.exception_handler(kind)
        async def _bad(request: Request, exc: Exception) -> JSONResponse:
            return error(400, str(exc), request=request)
