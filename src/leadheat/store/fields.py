"""Which lead attributes have a column of their own, and the attributes fit rules see: read
without the table definitions, so that a command that only reads (``leadheat show``) need not
load SQLAlchemy to build them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

COMMON_FIELDS = (
    "email",
    "external_id",
    "name",
    "title",
    "company",
    "country",
    "source",
    "campaign",
    "owner",
)
"""Lead attributes with a column of their own; any other attribute lives in ``attributes``."""


def lead_attributes(row: Mapping[Any, Any]) -> dict[str, Any]:
    """The attributes fit rules see: the common columns merged over the JSON attributes."""
    merged = dict(row["attributes"] or {})
    for name in COMMON_FIELDS:
        if row[name] is not None:
            merged[name] = row[name]
    return merged
