"""Segment-compatible collection: ``POST /v1/batch``, ``/v1/track``, ``/v1/identify``,
``/v1/page``, ``/v1/screen``, ``/v1/group``, ``/v1/alias``; Segment's browser short paths
``/v1/b|t|i|p|s|g|a``; RudderStack's ``/beacon/v1/batch``.

Analytics SDKs (Segment, RudderStack and their clones) post here unchanged, from servers or
from web pages on another origin (CORS: :mod:`leadheat.api.cors`). The write key is an API
key with the ``ingest`` scope, sent as HTTP Basic user name, as ``writeKey`` in the query
string or in the body. Bodies are JSON whatever their ``Content-Type`` says (browsers send
``text/plain`` to avoid a preflight) and may be gzip-compressed. Limits are Segment's: 32 KB
a message, 500 KB a batch. Success is exactly ``200 {"success": true}``; one popular SDK
retries anything else.

A public key is refused (403, nothing stored) when the request's ``Origin`` is not among
its origins; requests without ``Origin`` (server SDKs) are judged by the key alone.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.routing import APIRoute
from fastapi.security import HTTPBasic

from leadheat.api.cors import REFUSED_ORIGIN
from leadheat.api.errors import ErrorOut
from leadheat.api.hygiene import read_json
from leadheat.api.schemas import SuccessOut
from leadheat.api.security import (
    actor,
    check,
    client_address,
    group_commit_of,
    ingest_limiter,
    service_of,
    write_key,
)
from leadheat.ingest.segment import (
    CALLS,
    MAX_BATCH_BYTES,
    MAX_MESSAGE_BYTES,
    SegmentError,
    check_size,
    message_sizes_ok,
    parse_batch,
    parse_message,
)
from leadheat.store.keys import Scope

write_key_auth = HTTPBasic(
    auto_error=False,
    description="An API key with the ingest scope as user name, empty password "
    "(or `writeKey` in the body).",
)

SEGMENT_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": 'Segment\'s HTTP Tracking API message (or `{"batch": [...]}` for '
        "/v1/batch), JSON, optionally gzip-compressed.",
        "content": {"application/json": {"schema": {"type": "object"}}},
    }
}

SUCCESS = b'{"success":true}'
"""The one answer SDKs take for success (:class:`SuccessOut`, as FastAPI would write it)."""


class CollectionRoute(APIRoute):
    """A collection route, documented as FastAPI documents any route and answered without
    FastAPI's per-request machinery: the endpoint reads the request itself, the HTTP Basic
    scheme of the write key is called as its dependency was (a malformed header is a 401),
    and the answer is always :data:`SUCCESS`. Analytics SDKs send batch after batch;
    solving dependencies and validating ``{"success": true}`` against its model cost a
    tenth of what reading a 100-message batch does."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        collect = self.endpoint
        basic = any(depends.dependency is write_key_auth for depends in self.dependencies)

        async def handler(request: Request) -> Response:
            if basic:
                await write_key_auth(request)
            await collect(request)
            return Response(SUCCESS, media_type="application/json")

        return handler


router = APIRouter(
    prefix="/v1",
    route_class=CollectionRoute,
    tags=["collection (Segment-compatible)"],
    dependencies=[Depends(write_key_auth)],
    responses={
        400: {"model": ErrorOut, "description": "unreadable or invalid; `field` names it"},
        401: {"model": ErrorOut, "description": "no write key, or an unknown one"},
        403: {
            "model": ErrorOut,
            "description": "the key lacks the ingest scope, or is a public key sent from "
            "an origin it does not list",
        },
        413: {"model": ErrorOut, "description": "the body is over the limit"},
    },
)


async def _body(request: Request, limit: int) -> bytes:
    """The body, refused with 413 as soon as it passes ``limit`` (before reading the rest),
    and inflated when gzip-compressed, with the same limit on what comes out.

    A gzip body must be one whole stream: a truncated one inflates without an error to what
    arrived, which may be valid JSON that is not what was sent.
    """
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"the body is {declared} bytes; the limit is {limit}")
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > limit:
            raise HTTPException(413, f"the body is over the limit of {limit} bytes")
    if request.headers.get("content-encoding", "").lower() == "gzip":
        inflater = zlib.decompressobj(wbits=31)
        try:
            body = inflater.decompress(bytes(raw), limit + 1)
        except zlib.error as error:
            raise SegmentError("body", f"not valid gzip ({error})") from None
        if len(body) > limit or inflater.unconsumed_tail:
            raise HTTPException(413, f"the body inflates past the limit of {limit} bytes")
        if not inflater.eof:
            raise SegmentError("body", "not valid gzip (the stream is cut short)")
        if inflater.unused_data:
            raise SegmentError("body", "not valid gzip (data after the end of the stream)")
        return body
    return bytes(raw)


async def _collect(request: Request, call: str | None) -> None:
    limit = MAX_BATCH_BYTES if call is None else MAX_MESSAGE_BYTES
    body = await _body(request, limit)
    data, shallow = read_json(body)
    if not isinstance(data, dict):
        raise SegmentError("body", "must be a JSON object")
    lh = service_of(request)
    key = write_key(request, data.get("writeKey"))
    info = check(
        lh,
        key,
        Scope.INGEST,
        ingest_limiter(request, Scope.INGEST),
        client=client_address(request),
        collection=True,
    )
    origin = request.headers.get("origin")
    if not info.admits(origin):
        setattr(request.state, REFUSED_ORIGIN, True)  # no CORS header on this answer
        raise HTTPException(
            403,
            f"this public key is not accepted from {(origin or '')[:100]!r}: the origin is "
            "not among the key's (leadheat keys create NAME --public --origin …)",
        )
    received = lh.clock()
    if call is None:
        check_size(body, MAX_BATCH_BYTES, "batch")
        message_sizes_ok(data, len(body))
        messages = parse_batch(data, received, public=info.public, shallow=shallow)
        field = "batch"
    else:
        check_size(body, MAX_MESSAGE_BYTES, "body")
        messages = [parse_message(data, "", received, call, public=info.public, shallow=shallow)]
        field = ""
    await group_commit_of(request).collect(messages, field, public=info.public, actor=actor(info))


@router.post(
    "/batch",
    response_model=SuccessOut,
    summary="A batch of analytics calls",
    openapi_extra=SEGMENT_BODY,
)
async def batch(request: Request) -> None:
    """All or nothing: one bad message refuses the batch and says which (``batch[3]…``)."""
    await _collect(request, None)


def _single(call: str) -> Any:
    async def endpoint(request: Request) -> None:
        await _collect(request, call)

    endpoint.__name__ = call
    endpoint.__doc__ = f"One `{call}` call, as Segment's HTTP Tracking API takes it."
    return endpoint


for _call in CALLS:
    router.add_api_route(
        f"/{_call}",
        _single(_call),
        methods=["POST"],
        response_model=SuccessOut,
        summary=f"A {_call} call",
        openapi_extra=SEGMENT_BODY,
    )

SHORT_PATHS = {
    "t": "track",
    "p": "page",
    "i": "identify",
    "g": "group",
    "a": "alias",
    "s": "screen",
}
"""Segment's analytics-next posts each call to a one-letter path (and a batch to ``/v1/b``)."""

for _short, _call in SHORT_PATHS.items():
    router.add_api_route(f"/{_short}", _single(_call), methods=["POST"], include_in_schema=False)
router.add_api_route("/b", batch, methods=["POST"], include_in_schema=False)

beacon = APIRouter(prefix="/beacon/v1", include_in_schema=False, route_class=CollectionRoute)
"""RudderStack's beacon mode: ``navigator.sendBeacon`` sets no headers, so the write key
comes in the query string (``?writeKey=…``)."""
beacon.add_api_route("/batch", batch, methods=["POST"])
