"""Who gets a lead: owner rules first (territory, segment, lists), then weighted round robin
among the reps who are active and below their capacity of open hot leads.

Round robin is "fewest leads per unit of weight next" (ties: longest since the last lead,
then email), which with equal weights is plain rotation and with weights 2:1 gives two leads
to one rep for every lead to the other, without any per-process state to lose.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from leadheat.playbook import OwnerRule
from leadheat.store.reps import Rep

_NEVER = datetime(1970, 1, 1, tzinfo=UTC)


def eligible(
    rules: Sequence[OwnerRule], attributes: Mapping[str, Any], reps: Sequence[Rep]
) -> tuple[list[Rep], str]:
    """The reps that may own a lead with these attributes, and why: the first owner rule
    that matches decides; with none matching, every rep may.

    >>> from leadheat.playbook import OwnerRule
    >>> anna = Rep("anna@x.com", None, "dach", True, None, 1, 0, None)
    >>> ben = Rep("ben@x.com", None, "default", True, None, 1, 0, None)
    >>> rules = [OwnerRule(field="country", one_of=["DE", "AT"], team="dach")]
    >>> [r.email for r in eligible(rules, {"country": "AT"}, [anna, ben])[0]]
    ['anna@x.com']
    >>> eligible(rules, {"country": "FR"}, [anna, ben])[1]
    'round robin over all reps'
    """
    for index, rule in enumerate(rules):
        if rule.condition.holds(attributes):
            if rule.team is not None:
                chosen = [rep for rep in reps if rep.team == rule.team]
                why = f"owner rule {index + 1} ({rule.label or rule.field}): team {rule.team}"
            else:
                wanted = {email.casefold() for email in rule.reps}
                chosen = [rep for rep in reps if rep.email.casefold() in wanted]
                named = rule.label or rule.field
                why = f"owner rule {index + 1} ({named}): {', '.join(rule.reps)}"
            return chosen, why
    return list(reps), "round robin over all reps"


def choose(reps: Sequence[Rep], open_hot: Mapping[str, int]) -> Rep | None:
    """The next rep by weighted round robin among the active ones with room; ``None`` when
    nobody can take another hot lead.

    >>> a = Rep("a@x.com", None, "t", True, None, 2.0, 0, None)
    >>> b = Rep("b@x.com", None, "t", True, None, 1.0, 0, None)
    >>> order = []
    >>> for _ in range(6):
    ...     rep = choose([a, b], {})
    ...     order.append(rep.email[0])
    ...     a, b = [r if r is not rep else Rep(r.email, r.name, r.team, r.active, r.capacity,
    ...             r.weight, r.assigned + 1, datetime(2026, 1, 1 + len(order), tzinfo=UTC))
    ...             for r in (a, b)]
    >>> "".join(order)
    'abaaba'
    """
    free = [
        rep
        for rep in reps
        if rep.active
        and rep.weight > 0
        and (rep.capacity is None or open_hot.get(rep.email, 0) < rep.capacity)
    ]
    if not free:
        return None
    return min(
        free,
        key=lambda rep: (
            (rep.assigned + 1) / rep.weight,
            rep.last_assigned_at or _NEVER,
            rep.email,
        ),
    )
