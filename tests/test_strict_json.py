"""The strict JSON reader of the collection routes (``leadheat.api.hygiene.read_json``).

It finds a key given twice by counting keys (the body's colons outside strings against the
sizes of the objects read) and measures nesting from the bytes; both read the body's
strings by their quotes. Generated bodies, with every character that could fool that
reading in keys and strings (quotes, backslashes, brackets, colons, commas) and in every
way JSON may be written, must read as Python's own reader reads them, and any key given
twice must be refused.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leadheat.api.hygiene import read_json
from leadheat.ingest.segment import MAX_DEPTH, SegmentError

TRICKY = st.text(alphabet=st.sampled_from('a"\\{}[]:, é\u2603\U0001f600/\n'), max_size=6)
VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | TRICKY,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TRICKY, inner, max_size=4),
    max_leaves=25,
)
WRITTEN = st.sampled_from(
    [
        {},
        {"ensure_ascii": False},
        {"separators": (",", ":")},
        {"indent": 2, "ensure_ascii": False},
        {"separators": (" , ", " : ")},
    ]
)


def depth(value: Any) -> int:
    """How deep objects and lists nest in ``value`` (a scalar: 0)."""
    if isinstance(value, dict):
        return 1 + max(map(depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(depth, value), default=0)
    return 0


@settings(max_examples=400, deadline=None)
@given(value=VALUES, written=WRITTEN)
def test_a_body_reads_as_python_reads_it(value: Any, written: dict[str, Any]) -> None:
    body = json.dumps(value, **written).encode()
    read = read_json(body)
    assert read.value == json.loads(body)
    assert read.shallow == (depth(value) <= MAX_DEPTH)


@settings(max_examples=300, deadline=None)
@given(value=VALUES, key=TRICKY, written=WRITTEN, data=st.data())
def test_a_key_given_twice_is_refused_wherever_it_is(
    value: Any, key: str, written: dict[str, Any], data: st.DataObject
) -> None:
    """One object, anywhere in the body, gets ``key`` twice (JSON text cannot be built with
    a dict holding a key twice, so the second one is written in by replacing a marker)."""
    objects: list[dict[str, Any]] = []

    def collect(item: Any) -> None:
        if isinstance(item, dict):
            objects.append(item)
            for inner in item.values():
                collect(inner)
        elif isinstance(item, list):
            for inner in item:
                collect(inner)

    root = {"batch": value}
    collect(root)
    target = data.draw(st.sampled_from(objects))
    target[key] = 1
    target["\u2603TWICE\u2603"] = 2
    text = json.dumps(root, **written)
    marker = json.dumps("\u2603TWICE\u2603", ensure_ascii=written.get("ensure_ascii", True))
    body = text.replace(marker, json.dumps(key)).encode()
    with pytest.raises(SegmentError, match="appears twice in one object"):
        read_json(body)


@pytest.mark.parametrize(
    ("body", "shallow"),
    [
        (b"[" * MAX_DEPTH + b"]" * MAX_DEPTH, True),
        (b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1), False),
        (b'{"a": "' + b"[" * 40 + b'"}', True),
        (b'{"a\\\\": [{"b\\"[": ["]\\\\"]}]}', True),
        (b"7", True),
    ],
)
def test_nesting_is_measured_outside_strings(body: bytes, shallow: bool) -> None:
    assert read_json(body).shallow is shallow
