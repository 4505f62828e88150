"""The team's own model, trained on the store's history: as-of features that never see the
future, censoring, versioned models, probabilities in every view, and real data (Olist)."""

from __future__ import annotations

import csv
import json
import random
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from conftest import Clock, LiveServer
from leadheat.cli import app
from leadheat.engage.lists import tasks
from leadheat.identity import parse_lead_key
from leadheat.ingest.records import OutcomeInput, TouchInput
from leadheat.playbook import default_playbook
from leadheat.predict import team
from leadheat.predict.alarm import save_check
from leadheat.predict.asof import LeakageError, cut, features_as_of
from leadheat.scoring.lead import EventRecord, LeadHistory, OutcomeRecord
from leadheat.service import Leadheat, LeadInput
from leadheat.store.events import NewEvent
from leadheat.store.snapshots import load_snapshot
from leadheat.web.auth import add_user
from receivers import MailBox

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
PASSWORD = "correct horse battery"
DAY = timedelta(days=1)


def test_the_feature_builder_refuses_anything_after_the_decision() -> None:
    """Shuffle a converted lead's timestamps so that some land after its first touch: the
    builder must refuse, never quietly learn from them."""
    book = default_playbook()
    touch = START + 10 * DAY
    events = [EventRecord("page_view", START + k * DAY) for k in range(8)]
    events.append(EventRecord("purchase", touch + 2 * DAY))  # the sale itself
    history = LeadHistory({"title": "CTO"}, events, (), [OutcomeRecord("won", touch + 3 * DAY)])
    with pytest.raises(LeakageError, match="after the decision time"):
        features_as_of(history, START, [touch], touch, book, ["page_view", "purchase"])
    rng = random.Random(4)
    for _ in range(20):
        moved = [EventRecord(e.type, START + rng.random() * 20 * DAY) for e in events]
        shuffled = LeadHistory(history.attributes, moved, (), ())
        late = any(e.at > touch for e in moved)
        if late:
            with pytest.raises(LeakageError):
                features_as_of(shuffled, START, [touch], touch, book, ["purchase"])
        else:
            features_as_of(shuffled, START, [touch], touch, book, ["purchase"])
    known = features_as_of(cut(history, touch), START, [touch], touch, book, ["purchase"])
    assert known["count:purchase"] == "0" and known["events"] == "8"


def _population(lh: Leadheat, clock: Clock, leads: int = 400, every: bool = False) -> None:
    """SYNTHETIC: leads who asked for a demo shortly before the first call convert far more
    often; the model must find that from outcomes alone. Outcomes are recorded only for
    deals closed 60 days before the end (``every``: for all), so later leads are censored."""
    rng = random.Random(11)
    events, touches, outcomes, people = [], [], [], []
    for number in range(leads):
        email = f"p{number}@example.com"
        arrived = START + number * timedelta(hours=14)
        eager = rng.random() < 0.4
        people.append(LeadInput([parse_lead_key(email)], {"source": rng.choice("abc")}, arrived))
        events.append(NewEvent(parse_lead_key(email), "page_view", arrived, f"v{number}"))
        call = arrived + timedelta(hours=rng.uniform(1, 48))
        if eager:
            asked = call - timedelta(hours=rng.uniform(0.2, 3))
            events.append(NewEvent(parse_lead_key(email), "demo_request", asked, f"d{number}"))
        touches.append(TouchInput(parse_lead_key(email), "call", call))
        won = rng.random() < (0.7 if eager else 0.1)
        closed = call + timedelta(days=rng.uniform(3, 40))
        if (every and number < leads - 10) or closed < START + leads * timedelta(
            hours=14
        ) - 60 * DAY:
            outcomes.append(OutcomeInput(parse_lead_key(email), "won" if won else "lost", closed))
            # the sale leaves traces after the decision: they must not help the model
            if won:
                events.append(NewEvent(parse_lead_key(email), "purchase", closed, f"s{number}"))
    latest = max([START + leads * timedelta(hours=14), *(o.at for o in outcomes)])
    clock.now = latest + DAY
    lh.upsert_leads(people, react=False)
    lh.record_events(events, react=False)
    lh.record_touches(touches)
    lh.record_outcomes(outcomes)


def test_train_from_the_store_and_use_the_probability_everywhere(db_url: str, clock: Clock) -> None:
    lh = Leadheat(db_url, clock=clock)
    lh.init()
    _population(lh, clock)
    info = team.train(lh, timedelta(days=90))
    assert info.version == 1 and info.rows + info.censored == 400
    assert info.censored > 0 and 0 < info.positives < info.rows
    tested = info.evaluation["leadheat"]
    assert tested["roc_auc"] > 0.7, info.evaluation
    for name in ("logistic regression", "LightGBM default", "naive Bayes (CRM)"):
        margin = info.evaluation[name]["leadheat_minus"]
        for measure in ("roc_auc", "brier"):
            found = margin[measure]
            assert found["value"] == pytest.approx(tested[measure] - info.evaluation[name][measure])
            assert found["low"] <= found["value"] <= found["high"], (name, measure, found)
    assert "purchase" not in str(team.current(lh)[1].encoder.names)  # type: ignore[index]
    open_leads = [r for r in lh.leads() if r.status == "open"]
    assert open_leads and all(r.probability is not None for r in open_leads)
    assert all(r.probability is None for r in lh.leads() if r.status != "open")
    by_probability, _ = lh.browse(order="probability", limit=500)
    shown = [r.probability for r in by_probability if r.probability is not None]
    assert shown == sorted(shown, reverse=True)
    view = lh.show(open_leads[0].lead_id)
    assert view.score.probability == open_leads[0].probability
    assert view.probability_at == clock.now
    assert lh.show(open_leads[0].lead_id, at=clock.now - DAY).score.probability is None
    version, why = team.explain(lh, open_leads[0].lead_id)  # type: ignore[misc]
    assert version == 1 and abs(why.probability - open_leads[0].probability) < 1e-9  # type: ignore[operator]
    assert why.raising or why.lowering
    again = team.train(lh, timedelta(days=90))
    assert again.version == 2
    lh.close()


def test_the_playbook_can_require_a_probability_for_hot(db_url: str, clock: Clock) -> None:
    clock.now = START
    lh = Leadheat(db_url, clock=clock)
    lh.init(
        "[fit]\nqualified_at = 0\n[signals.demo_request]\npoints = 30\n"
        "[temperature]\nhot_requires = []\nhot_min_probability = 0.5\n[speed]\nenabled = false\n"
    )
    lh.track("ana@example.com", "demo_request")
    (row,) = lh.leads()
    assert row.temperature.value == "warm" and "probability none < 0.5" in row.reason
    from leadheat.store.training import store_probabilities

    with lh.engine.begin() as connection:
        store_probabilities(connection, [(row.lead_id, 0.8)], clock.now)
    assert [r.email for r in lh.hot()] == ["ana@example.com"]
    assert lh.show("ana@example.com").score.temperature.value == "hot"
    lh.close()


def test_cli_model_commands_on_the_store(tmp_path: Path, clock: Clock) -> None:
    db = f"sqlite:///{tmp_path / 'm.db'}"
    lh = Leadheat(db, clock=clock)
    lh.init()
    _population(lh, clock, every=True)  # the CLI runs on the real clock: no censoring
    lh.close()
    runner = CliRunner()
    untrained = runner.invoke(app, ["--db", db, "model", "evaluate"])
    assert untrained.exit_code == 1 and "no model yet" in str(untrained.exception)
    trained = runner.invoke(app, ["--db", db, "model", "train", "--horizon", "90d"])
    assert trained.exit_code == 0, trained.output
    assert "model version 1" in trained.output and "ROC-AUC" in trained.output
    assert "leadheat minus each baseline, 95% paired bootstrap" in trained.output
    assert re.search(r"\n  logistic regression: ROC-AUC [+-]0\.\d{4} \(95% ", trained.output)
    evaluated = runner.invoke(app, ["--db", db, "model", "evaluate", "--json"])
    assert '"censored"' in evaluated.output and '"roc_auc"' in evaluated.output
    explained = runner.invoke(app, ["--db", db, "model", "explain", "p399@example.com", "--json"])
    assert explained.exit_code == 0 and '"probability"' in explained.output
    assert "scored" in runner.invoke(app, ["--db", db, "model", "score"]).output
    listed = runner.invoke(
        app, ["--db", db, "leads", "--order", "probability", "--limit", "3", "--json"]
    )
    assert listed.exit_code == 0 and '"probability": 0.' in listed.output
    mixed = runner.invoke(app, ["--db", db, "model", "train", "--target", "x"])
    assert mixed.exit_code == 2 and "--from-csv" in mixed.output
    assert "chosen: " in trained.output and "  linear: ROC-AUC" in trained.output
    drift = runner.invoke(app, ["--db", db, "model", "drift", "--window", "3650d", "--json"])
    assert drift.exit_code == 0, drift.output
    report = json.loads(drift.output)
    assert report["rows"] == 400 and isinstance(report["alarm"], bool)
    kept = Leadheat(db)
    with kept.engine.connect() as connection:
        stored = load_snapshot(connection, "drift:model:1")
    kept.close()
    assert stored is not None and stored.body["window"] == "3650d"
    assert stored.body["version"] == 1 and stored.body["computed_at"]
    report.pop("window")  # "the last 3650d"
    assert {key: stored.body[key] for key in report} == report
    recalibrated = runner.invoke(app, ["--db", db, "model", "recalibrate", "--window", "3650d"])
    assert recalibrated.exit_code == 0, recalibrated.output
    assert "model version 2: calibration refitted on 400 outcomes" in recalibrated.output


def test_drift_on_the_store_reads_only_recent_outcomes(db_url: str, clock: Clock) -> None:
    """The window holds the leads whose outcome became known in it, scored as of their
    decision; a shorter window holds fewer; recalibrating stores the next version."""
    lh = Leadheat(db_url, clock=clock)
    lh.init()
    _population(lh, clock)
    with pytest.raises(team.NoModelError):
        team.drift(lh, timedelta(days=30))
    info = team.train(lh, timedelta(days=90))
    _, everything = team.drift(lh, timedelta(days=3650))
    assert everything.rows == info.rows and not everything.alarm
    _, recent = team.drift(lh, timedelta(days=90))
    assert 0 < recent.rows < everything.rows
    version, _, rows = team.recalibrate(lh, timedelta(days=3650))
    assert version == 2 and rows == info.rows
    assert team.current(lh)[0].version == 2  # type: ignore[index]
    lh.close()


def test_a_drift_alarm_shows_by_the_probability_and_in_the_digest(
    db_url: str, clock: Clock, smtp_server: tuple[str, MailBox]
) -> None:
    """The current model's latest stored check: without an alarm neither the lead page nor
    the rep's digest says anything; with one both name it (a check of another model
    version does not count)."""
    from leadheat.delivery.worker import Worker
    from leadheat.settings import Settings

    lh = Leadheat(db_url, clock=clock)
    lh.init()
    _population(lh, clock)
    info = team.train(lh, timedelta(days=90))
    monday = (clock.now + timedelta(days=7 - clock.now.weekday())).replace(hour=9, minute=30)
    # open leads due for a follow-up on Monday: one for the quiet digest, one for the loud
    lead, other = (task.lead_id for task in tasks(lh, at=monday)[:2])
    lh.add_rep("anna@team.example", name="Anna")
    lh.patch_lead(lead, {"owner": "anna@team.example"})
    add_user(lh, "max@example.com", "manager", PASSWORD)
    clock.now = monday
    server = LiveServer(lh)
    smtp_url, box = smtp_server
    worker = Worker(lh, Settings(database_url=lh.url, smtp_url=smtp_url))
    browser = httpx.Client(base_url=server.url)
    try:
        token = re.search(r'name="csrf_token" value="([^"]+)"', browser.get("/login").text)
        assert token is not None
        signed = browser.post(
            "/login",
            data={"email": "max@example.com", "password": PASSWORD, "csrf_token": token[1]},
        )
        assert signed.status_code == 303, signed.text

        def page() -> str:
            shown = browser.get(f"/leads/{lead}")
            assert shown.status_code == 200 and "chance to convert" in shown.text
            return shown.text

        assert "drift" not in page()
        _, steady = team.drift(lh, timedelta(days=3650))
        assert not steady.alarm
        save_check(lh, info.version, steady, "3650d")
        reason = "ranking dropped: ROC-AUC 0.550 against 0.800 on the held-out rows"
        alarmed = replace(steady, alarm=True, reasons=(reason,))
        save_check(lh, info.version + 1, alarmed, "30d")  # not the model in use
        assert "drift" not in page()
        assert worker.run_once().nurtured == 1
        (quiet,) = box.wait_for(1)
        assert quiet["To"] == "anna@team.example"
        assert "drift" not in quiet.get_payload(decode=True).decode()

        clock.now = monday + timedelta(hours=1)
        save_check(lh, info.version, alarmed, "30d")
        line = f"Model drift alarm (checked {clock.now:%Y-%m-%d %H:%M} UTC): {reason}"
        assert line in page()
        lh.add_rep("otto@team.example", name="Otto")
        lh.patch_lead(other, {"owner": "otto@team.example"})
        assert worker.run_once().nurtured == 1
        loud = box.wait_for(2)[1]
        assert loud["To"] == "otto@team.example"
        text = loud.get_payload(decode=True).decode().replace("\r\n", "\n")
        assert f"Good morning, Otto.\n\n{line}\n\n" in text
    finally:
        browser.close()
        worker.close()
        server.stop()
        lh.close()


@pytest.mark.shared_data
def test_olist_funnel_real_ages_and_outcomes(shared_data: Path, tmp_path: Path) -> None:
    """Olist MQLs: first contact is the decision, won deals the outcome, 180-day horizon, as
    of 2018-09-01 (later contacts are censored). Origin channels convert very differently,
    so the model must beat a coin and the CRM-style naive Bayes must not be perfect."""
    folder = shared_data / "olist_marketing_funnel"
    now = datetime(2018, 9, 1, tzinfo=UTC)
    lh = Leadheat(f"sqlite:///{tmp_path / 'olist.db'}", clock=lambda: now)
    lh.init("[speed]\nenabled = false\n")
    people, touches = [], []
    with (folder / "olist_marketing_qualified_leads_dataset.csv").open() as file:
        for row in csv.DictReader(file):
            key = parse_lead_key(f"ext:{row['mql_id']}")
            contact = datetime.fromisoformat(row["first_contact_date"]).replace(tzinfo=UTC)
            fields = {"origin": row["origin"] or None, "landing_page": row["landing_page_id"]}
            people.append(LeadInput([key], fields, contact))
            touches.append(TouchInput(key, "first_contact", contact))
    outcomes = []
    with (folder / "olist_closed_deals_dataset.csv").open() as file:
        for row in csv.DictReader(file):
            won = datetime.fromisoformat(row["won_date"]).replace(tzinfo=UTC)
            if won <= now:
                outcomes.append(OutcomeInput(parse_lead_key(f"ext:{row['mql_id']}"), "won", won))
    lh.upsert_leads(people, react=False)
    lh.record_touches(touches)
    lh.record_outcomes(outcomes)
    info = team.train(lh, timedelta(days=180))
    assert info.rows + info.censored == 8000
    assert info.censored > 1000 and 300 < info.positives < 842
    results = info.evaluation
    assert results["leadheat"]["roc_auc"] > 0.6, results
    assert results["naive Bayes (CRM)"]["roc_auc"] < 0.95
    lh.close()
