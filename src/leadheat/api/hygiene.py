"""Input no database can hold, refused at the door.

JSON allows ``\\u0000`` in any string and URLs allow ``%00``; SQLite stores the character,
PostgreSQL's text and jsonb cannot, and would fail the request with a 500 deep inside a
transaction. Refusing it up front gives every backend the same clear 400.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, NamedTuple

from fastapi import Request

from leadheat.ingest.segment import (
    MAX_BATCH_BYTES,
    MAX_DEPTH,
    MAX_MESSAGE_BYTES,
    SegmentError,
    check_depth,
)
from leadheat.service import InputError

NUL_JSON = b"\\u0000"


class TooLargeError(InputError):
    """A body or a message over the ingest limits: 413, naming it (``body``, ``[3]``)."""


async def one_message(request: Request) -> None:
    """Dependency for the REST routes that store one record (a lead, a touch, evidence):
    the body is one message, held to Segment's 32 KB as on ``/v1``. A record bigger than
    that is no lead's data but a way to fill the database (events of several MB were
    stored before this limit)."""
    await _sized(request, MAX_MESSAGE_BYTES)


async def message_list(request: Request) -> None:
    """Dependency for ``POST /api/v1/events`` (one event or a list): the body is held to a
    batch's 500 KB and each event in a list to a message's 32 KB, as on ``/v1/batch``."""
    body = await _sized(request, MAX_BATCH_BYTES)
    if len(body) <= MAX_MESSAGE_BYTES:
        return  # no event in it can be larger
    if not body.lstrip().startswith(b"["):
        raise _too_large(len(body), MAX_MESSAGE_BYTES)  # one event
    items = strict_json(body)
    for index, item in enumerate(items):
        size = len(json.dumps(item, separators=(",", ":"), ensure_ascii=False).encode())
        if size > MAX_MESSAGE_BYTES:
            raise TooLargeError(
                f"[{index}]",
                f"the event is {size} bytes; the limit is {MAX_MESSAGE_BYTES} bytes "
                f"({MAX_MESSAGE_BYTES // 1024} KB)",
            )


async def _sized(request: Request, limit: int) -> bytes:
    """The body, refused as :class:`TooLargeError` over ``limit`` bytes (by its declared length
    before any of it is read, and by what arrived)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(int(declared), limit)
    body = await request.body()
    if len(body) > limit:
        raise _too_large(len(body), limit)
    return body


def _too_large(size: int, limit: int) -> TooLargeError:
    """
    >>> _too_large(40_000, MAX_MESSAGE_BYTES).message
    'the message is 40000 bytes; the limit is 32768 bytes (32 KB)'
    """
    what, advice = ("message", "") if limit == MAX_MESSAGE_BYTES else ("body", "; send fewer")
    return TooLargeError(
        "body",
        f"the {what} is {size} bytes; the limit is {limit} bytes ({limit // 1024} KB){advice}",
    )


def refuse_nul(body: bytes, field: str = "body") -> None:
    """Refuse a (JSON) body that carries a NUL character."""
    if NUL_JSON in body or b"\x00" in body:
        raise InputError(field, "text may not contain the NUL character (\\u0000)")


async def no_nul(request: Request) -> None:
    """Dependency for routes that store what they are given: URL and body without NUL, and a
    JSON body read as strictly as the collection endpoints read theirs (no ``NaN``, no huge
    integers, no duplicate keys, no lone surrogates, at most ``MAX_DEPTH`` levels deep)."""
    if "%00" in str(request.url) or "\x00" in str(request.url):
        raise InputError("url", "the URL may not contain the NUL character (%00)")
    body = await request.body()
    refuse_nul(body)
    if body.strip() and "json" in request.headers.get("content-type", "json"):
        read = read_json(body)
        if not read.shallow:
            check_depth(read.value, "body")


MAX_DIGITS = 308
"""The most digits a JSON integer may have. A longer one is beyond what a double holds (what
JavaScript SDKs send, and what scoring compares attributes as: ``float()`` of it raises
``OverflowError``); from 4,300 digits Python will not even read it (``ValueError``)."""


_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
"""``\\ud800`` to ``\\udfff``: a lone one reads as a string no database can encode."""


class JsonBody(NamedTuple):
    """A body read by :func:`read_json`."""

    value: Any
    shallow: bool
    """Whether no object or list in it nests deeper than :data:`MAX_DEPTH`, read from the
    bytes: only a deeper one needs the walk over the value that names the place
    (:func:`~leadheat.ingest.segment.check_depth`)."""


def strict_json(body: bytes) -> Any:
    """The body as JSON, read as strictly as the SDKs write it (:func:`read_json`)."""
    return read_json(body).value


def read_json(body: bytes) -> JsonBody:
    """The body as JSON, read as strictly as the SDKs write it. Python's reader is lenient
    where storing would fail later with a 500: it takes ``NaN`` and ``Infinity`` (not JSON;
    PostgreSQL's jsonb refuses them mid-transaction), ``1e400`` as infinity, integers of any
    length, a key given twice (the last wins here; other parsers keep the first), and half
    of a surrogate pair, escaped or encoded, which neither database driver can encode.

    A key given twice is found by counting, not by checking each object's keys as they are
    read (that doubled the cost of reading a batch): the body's keys are its colons outside
    strings, the value's are the sizes of its objects. Only when they differ, or the body is
    refused, is it read again key by key, which names the key and refuses what the exact
    reading refuses first.

    >>> read_json(b'{"batch": [{"a": {"b": []}}], "k": "x:{"}')
    JsonBody(value={'batch': [{'a': {'b': []}}], 'k': 'x:{'}, shallow=True)
    >>> read_json(b'{"a": 1, "b": {"a": 2, "a": 3}}')
    Traceback (most recent call last):
    ...
    leadheat.ingest.segment.SegmentError: body: the key 'a' appears twice in one object
    """
    refuse_nul(body)
    try:
        text = body.decode("utf-8")  # strictly: json.loads lets encoded surrogates through
        try:
            data, keys = _read_counting_keys(text)
        except (ValueError, RecursionError):
            data, keys = _read_key_by_key(text), None  # raises as the exact reading does
        shape = _shape(body)
        if keys is not None and keys != shape.count(b":"):
            _read_key_by_key(text)  # a key given twice: raises, naming it
    except SegmentError:
        raise
    except RecursionError:
        raise SegmentError("body", "nested too deeply") from None
    except ValueError as error:  # JSONDecodeError, UnicodeDecodeError
        raise SegmentError("body", f"not JSON ({error})") from None
    if _SURROGATE_ESCAPE.search(body) is not None:
        try:
            json.dumps(data, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise SegmentError(
                "body", "a string holds half a surrogate pair (\\ud800 to \\udfff), not text"
            ) from None
    return JsonBody(data, _depth(shape, MAX_DEPTH) <= MAX_DEPTH)


def _read_counting_keys(text: str) -> tuple[Any, int]:
    """The JSON value, and how many keys its objects hold in all."""
    keys = 0

    def counted(obj: dict[str, Any]) -> dict[str, Any]:
        nonlocal keys
        keys += len(obj)
        return obj

    return _strict_loads(text, object_hook=counted), keys


def _read_key_by_key(text: str) -> Any:
    return _strict_loads(text, object_pairs_hook=_once_each)


def _strict_loads(text: str, **hook: Any) -> Any:
    """``json.loads`` refusing what storing cannot take: NaN, infinities, huge integers."""
    return json.loads(
        text, parse_constant=_not_a_number, parse_float=_finite, parse_int=_integer, **hook
    )


_NOT_SHAPE = bytes(range(256)).translate(None, b'"{}[]:,')
_NOT_BRACKET = bytes(range(256)).translate(None, b"{}[]")
_AS_PARENTHESES = bytes.maketrans(b"{}[]", b"()()")


def _shape(body: bytes) -> bytes:
    r"""The ``{}[]:,`` of a JSON body that are not inside its strings: its objects and lists,
    one colon for each key. Escaped backslashes and quotes are dropped first, so that every
    quote left opens or closes a string. Most strings hold none of ``{}[]:,`` and are
    ``""`` once the rest is dropped (with the commas and colons kept, two quotes in a row
    are always one string): those go in one pass, the others one by one.

    >>> _shape(b'{"a\\\\": [1, "x]", ""], "b\\"": {"c": ":{"}}')
    b'{:[,,],:{:}}'
    """
    if b"\\" in body:
        body = body.replace(b"\\\\", b"").replace(b'\\"', b"")
    shape = body.translate(None, _NOT_SHAPE).replace(b'""', b"")
    if b'"' in shape:
        shape = b"".join(shape.split(b'"')[::2])
    return shape


def _depth(shape: bytes, limit: int) -> int:
    """How deep the objects and lists of a :func:`_shape` nest, counted up to ``limit + 1``:
    each pass takes away the innermost (the empty ones), so a body nested ``n`` deep is
    empty after ``n`` passes.

    >>> _depth(b"{:[,{:[]},[]]}", 10), _depth(b"[[[[]]]]", 2), _depth(b"", 2)
    (4, 3, 0)
    """
    nesting = shape.translate(_AS_PARENTHESES, _NOT_BRACKET)
    depth = 0
    while nesting and depth <= limit:
        nesting = nesting.replace(b"()", b"")
        depth += 1
    return depth


def _not_a_number(text: str) -> Any:
    raise SegmentError("body", f"{text} is not a JSON number (send null, or leave it out)")


def _finite(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise SegmentError("body", f"the number {text[:40]} is too large")
    return number


def _integer(text: str) -> int:
    if len(text.lstrip("-")) > MAX_DIGITS:
        raise SegmentError(
            "body",
            f"a number of {len(text.lstrip('-'))} digits is too large (at most {MAX_DIGITS})",
        )
    return int(text)


def _once_each(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    data = dict(pairs)
    if len(data) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise SegmentError("body", f"the key {key[:100]!r} appears twice in one object")
            seen.add(key)
    return data
