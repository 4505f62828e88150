"""A top-N of hot leads reads the heat index from the top and stops early; it must list the
same leads, in the same order, as the full list of hot leads cut at N."""

from __future__ import annotations

import random
from datetime import timedelta

from conftest import NOW
from leadheat.identity import LeadKey
from leadheat.service import Leadheat, LeadInput
from leadheat.store.events import NewEvent


def test_top_n_equals_the_full_hot_list_cut_at_n(lh: Leadheat) -> None:
    rng = random.Random(3)
    leads = 700  # more than two index pages of candidates
    lh.upsert_leads(
        [
            LeadInput(
                [LeadKey("email", f"p{i}@example.com")],
                {
                    "title": "VP Sales" if i % 4 else "Intern",
                    "need": "yes",
                    "budget": "yes",
                    "timeline": "Q1" if i % 5 else None,
                },
                NOW - timedelta(days=30),
            )
            for i in range(leads)
        ],
        react=False,
    )
    events = [
        NewEvent(
            LeadKey("email", f"p{rng.randrange(leads)}@example.com"),
            rng.choice(["demo_request", "page_view", "trial_signup"]),
            NOW - timedelta(hours=rng.randrange(0, 24 * 20)),
            f"e{n}",
        )
        for n in range(leads * 6)
    ]
    # ties: two leads with exactly the same history have exactly the same heat
    for twin in ("p1@example.com", "p2@example.com"):
        events.append(NewEvent(LeadKey("email", twin), "demo_request", NOW, f"twin-{twin}"))
    lh.record_events(events, react=False)
    everything = [(r.email, r.heat) for r in lh.hot()]
    assert len(everything) > 256
    for n in (1, 2, 50, 256, 257, len(everything) + 5):
        assert [(r.email, r.heat) for r in lh.hot(limit=n)] == everything[:n]
