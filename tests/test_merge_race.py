"""A write that waits for a lead another transaction is merging away lands on the lead the
merge kept (PostgreSQL: two writers at once; SQLite runs one at a time)."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import select

from conftest import Clock
from leadheat.identity import LeadKey
from leadheat.ingest.segment import parse_batch
from leadheat.service import Leadheat, LeadInput
from leadheat.store.leads import find_leads, merge_leads
from leadheat.store.models import Event


def test_an_event_for_a_lead_merged_meanwhile_goes_to_the_lead_kept(
    lh: Leadheat, clock: Clock
) -> None:
    if lh.engine.dialect.name == "sqlite":
        pytest.skip("SQLite runs one writer at a time: no write waits on another's merge")
    now = clock.now
    email, visitor = LeadKey("email", "noor@globex.example"), LeadKey("anonymous", "anon-1")
    lh.upsert_leads([LeadInput([email], {"name": "Noor Haddad"})])

    def track(event: str, message_id: str) -> list[object]:
        at = (now - timedelta(minutes=1)).isoformat()
        call = {"type": "track", "event": event, "anonymousId": visitor.value}
        return list(
            parse_batch({"batch": [{**call, "timestamp": at, "messageId": message_id}]}, now)
        )

    lh.collect(track("Product Viewed", "m-1"))  # type: ignore[arg-type]
    with lh.engine.connect() as connection:
        found = find_leads(connection, [email, visitor])
    kept, absorbed = found[email], found[visitor]

    failures: list[BaseException] = []

    def second_write() -> None:
        try:
            lh.collect(track("form_submit", "m-2"))  # type: ignore[arg-type]
        except BaseException as error:  # reported below, in the test's thread
            failures.append(error)

    with lh.engine.connect() as merging:
        transaction = merging.begin()
        merge_leads(merging, kept, absorbed, now)  # holds both leads' locks until commit
        writer = threading.Thread(target=second_write)
        writer.start()
        time.sleep(1.0)
        assert writer.is_alive(), "the second write should wait for the merge's locks"
        transaction.commit()
    writer.join(timeout=30)
    assert not writer.is_alive()
    assert not failures
    with lh.engine.connect() as connection:
        placed = dict(connection.execute(select(Event.event_id, Event.lead_id)).all())
    assert placed == {"m-1": kept, "m-2": kept}
