"""Running nurture sequences and daily digests: one pass enrols the leads the playbook's
rules pick, queues every due mail in the durable outbox (with the lead's timeline event in
the same transaction) and the reps' morning digests. The delivery worker runs a pass each
time round; ``leadheat sequences run`` runs one by hand.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, select
from sqlalchemy.exc import IntegrityError

from leadheat.engage.lists import tasks
from leadheat.engage.mail import read_token, render, unsubscribe_token, unsubscribe_url
from leadheat.engage.tasks import Task
from leadheat.identity import LeadKey
from leadheat.playbook import NurtureSequence, Playbook
from leadheat.predict.alarm import current_alarm
from leadheat.scoring.lead import score_history
from leadheat.service import LeadheatError
from leadheat.speed.calendar import BusinessCalendar
from leadheat.speed.messages import one_line
from leadheat.store import nurture
from leadheat.store.database import reader_of
from leadheat.store.events import NewEvent, record_events
from leadheat.store.fields import lead_attributes
from leadheat.store.history import load_history
from leadheat.store.models import Delivery, Identity, Lead, LeadState
from leadheat.store.outbox import enqueue
from leadheat.store.ranking import judge_leads
from leadheat.store.reps import list_reps
from leadheat.times import isoformat

if TYPE_CHECKING:
    from leadheat.service import Leadheat

log = logging.getLogger("leadheat.nurture")
SENT_EVENT = "email_sent"
"""The timeline event of a nurture mail (worth no points unless the playbook says so)."""


@dataclass
class PassReport:
    enrolled: int = 0
    queued: int = 0
    stopped: Counter[str] = field(default_factory=Counter)
    digests: int = 0


def first_send(sequence: NurtureSequence, enrolled_at: datetime) -> datetime:
    return enrolled_at + sequence.steps[0].after


def enroll_by_rules(lh: Leadheat, report: PassReport) -> None:
    """Enrol every open lead with an address that a sequence's rules pick and that was
    never in that sequence."""
    _, book = lh.playbook()
    now = lh.clock()
    wanted = {name: seq for name, seq in book.sequences.items() if seq.enroll}
    if not wanted:
        return
    picks: list[tuple[int, str]] = []
    with lh.engine.connect() as connection:  # choosing reads many leads: no write lock held
        rows = list(
            connection.execute(
                select(Lead)
                .join(LeadState, LeadState.lead_id == Lead.id)
                .where(
                    Lead.merged_into_id.is_(None),
                    Lead.email.is_not(None),
                    LeadState.status == "open",
                )
            ).mappings()
        )
        gone = nurture.every_unsubscribed(connection)
        rows = [row for row in rows if row["email"].strip().lower() not in gone]
        judged = judge_leads(connection, book, now, [row["id"] for row in rows])
        for name, sequence in wanted.items():
            taken = nurture.enrolled(connection, name)
            for row in rows:
                if row["id"] in taken or row["id"] not in judged:
                    continue
                temperature = judged[row["id"]].verdict.temperature.value
                attributes = lead_attributes(row)
                if any(
                    (rule.temperature is None or rule.temperature == temperature)
                    and (rule.condition is None or rule.condition.holds(attributes))
                    for rule in sequence.enroll
                ):
                    picks.append((row["id"], name))
    if not picks:
        return
    with lh.transaction() as connection:
        for lead_id, name in picks:
            try:
                with connection.begin_nested():
                    nurture.enroll(
                        connection, lead_id, name, first_send(wanted[name], now), now, "playbook"
                    )
            except (nurture.EnrollmentError, IntegrityError):
                continue  # closed, unsubscribed or enrolled by another worker meanwhile
            report.enrolled += 1


def _context(
    connection: Connection, book: Playbook, lead_id: int, now: datetime, link: str
) -> dict[str, Any]:
    """What a template sees: the lead's fields, its score and explanation, recent events."""
    history = load_history(reader_of(connection), lead_id)
    score = score_history(history, book, now)
    recent: list[dict[str, Any]] = [
        {"type": e.type, "at": e.at, "properties": dict(e.properties)}
        for e in sorted(history.events, key=lambda e: e.at, reverse=True)
        if e.at <= now and e.type != SENT_EVENT
    ][:20]
    return {
        "lead": dict(history.attributes),
        "score": {
            "temperature": score.temperature.value,
            "grade": score.grade,
            "heat": score.heat,
            "reason": score.reason,
            "signals": [
                {"type": s.type, "events": s.events, "heat": s.heat, "last_at": s.last_at}
                for s in score.signals
            ],
        },
        "recent_events": recent,
        "viewed": [
            e["properties"].get("name") or e["properties"].get("product")
            for e in recent
            if e["type"] in ("product_view", "add_to_cart")
            and (e["properties"].get("name") or e["properties"].get("product"))
        ],
        "unsubscribe_url": link,
    }


def _email_key(connection: Connection, lead_id: int, email: str) -> LeadKey:
    identity = connection.execute(
        select(Identity.value).where(Identity.lead_id == lead_id, Identity.kind == "email")
    ).first()
    return LeadKey("email", identity.value if identity is not None else email.strip().lower())


def send_due(lh: Leadheat, public_url: str, report: PassReport, limit: int = 100) -> None:
    """Queue the due step of every active enrolment, or stop it if the lead answered, was
    touched, closed, unsubscribed or bounced since it was enrolled."""
    version, book = lh.playbook()
    now = lh.clock()
    with lh.engine.connect() as connection:
        if not nurture.any_due(connection, now):
            return
    secret = lh.signing_secret()
    with lh.transaction() as connection:
        for item in nurture.due(connection, now, limit):
            sequence = book.sequences.get(item.sequence)
            row = connection.execute(
                select(Lead.email, LeadState.status)
                .join(LeadState, LeadState.lead_id == Lead.id, isouter=True)
                .where(Lead.id == item.lead_id)
            ).one()
            reason = (
                "sequence removed"
                if sequence is None
                else nurture.why_stop(
                    connection, item, row.email, row.status or "open", sequence.stop_events
                )
            )
            if reason is not None or sequence is None:  # (never one without the other)
                nurture.end(connection, item.id, now, reason or "sequence removed")
                report.stopped[reason or "sequence removed"] += 1
                continue
            step = sequence.steps[item.step]
            token = unsubscribe_token(secret, item.lead_id, row.email)
            link = unsubscribe_url(public_url, token)
            context = _context(connection, book, item.lead_id, now, link)
            context.update(sequence=item.sequence, step=item.step + 1)
            try:
                subject = one_line(render(step.subject, context))
                body = render(step.body, context)
            except Exception as error:  # a manager's template (1/0, a forbidden attribute…)
                log.warning("sequence %s step %d: %s", item.sequence, item.step + 1, error)
                nurture.end(connection, item.id, now, "template error")
                report.stopped["template error"] += 1
                continue
            if "unsubscribe_url" not in step.body:
                body += f"\n\n--\nNo more of these mails: {link}\n"
            enqueue(
                connection,
                lead_id=item.lead_id,
                clock_id=None,
                trigger="nurture",
                channel="email",
                target=row.email,
                secret_env=None,
                payload={
                    "mail": {
                        "subject": subject,
                        "body": body,
                        "headers": {
                            "List-Unsubscribe": f"<{link}>",
                            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
                        },
                    },
                    "sequence": item.sequence,
                    "step": item.step + 1,
                    "enrollment": item.id,
                    "lead": {"id": item.lead_id},
                },
                now=now,
            )
            event = NewEvent(
                _email_key(connection, item.lead_id, row.email),
                SENT_EVENT,
                now,
                f"nurture:{item.id}:{item.step}",
                {"sequence": item.sequence, "step": item.step + 1, "subject": subject},
            )
            record_events(connection, book, version, [event], now)
            following = item.step + 1
            next_at = None
            if following < len(sequence.steps):
                next_at = max(item.enrolled_at + sequence.steps[following].after, now)
            nurture.advance(connection, item.id, following, next_at)
            report.queued += 1
    if report.queued:
        lh.outbox_ready.set()


def digest_key(rep: str, day: str) -> str:
    return hashlib.sha256(f"digest|{rep.casefold()}|{day}".encode()).hexdigest()


def send_digests(lh: Leadheat, report: PassReport, handled: set[str] | None = None) -> None:
    """Each active rep's tasks for the day, once per working day, from when their team's
    day starts (nothing is sent to a rep with no task due by the day's end), after a line
    on the model's drift alarm when its latest check sounded one (the probabilities the
    tasks' order leans on may be off). ``handled``
    remembers the digests this process already settled, so that a day of passes reads the
    leads once, not once a minute."""
    _, book = lh.playbook()
    if not (book.cadence.enabled and book.cadence.digest):
        return
    handled = handled if handled is not None else set()
    now = lh.clock()
    with lh.engine.connect() as connection:
        reps = [rep for rep in list_reps(connection) if rep.active]
    due_reps = []
    for rep in reps:
        calendar = BusinessCalendar.of(book.speed.team(rep.team))
        local = now.astimezone(calendar.zone)
        midnight = datetime.combine(local.date(), datetime.min.time(), calendar.zone)
        opening = calendar.add(midnight, timedelta(0))
        if opening.astimezone(calendar.zone).date() != local.date() or now < opening:
            continue  # not a working day, or the day has not started
        day = local.date().isoformat()
        key = digest_key(rep.email, day)
        if key not in handled:
            due_reps.append((rep, day, key, calendar.add(opening, calendar.day_length)))
    if not due_reps:
        return
    with lh.engine.connect() as connection:
        keys = [key for _, _, key, _ in due_reps]
        sent = set(connection.execute(select(Delivery.key).where(Delivery.key.in_(keys))).scalars())
    handled.update(sent)
    due_reps = [item for item in due_reps if item[2] not in sent]
    if not due_reps:
        return
    alarm = current_alarm(lh)
    warning = (
        f"Model drift alarm (checked {alarm.checked_at:%Y-%m-%d %H:%M} UTC): {alarm.reason}\n\n"
        if alarm is not None
        else ""
    )
    by_owner: dict[str, list[Task]] = {}
    for task in tasks(lh, at=now):
        if task.owner:
            by_owner.setdefault(task.owner.casefold(), []).append(task)
    for rep, day, key, end in due_reps:
        handled.add(key)
        mine = [task for task in by_owner.get(rep.email.casefold(), []) if task.due <= end]
        if not mine:
            continue
        lines = [
            f"{'OVERDUE ' if t.overdue else ''}{t.due:%a %H:%M} UTC  {t.lead}"
            f"  ({t.temperature.value})\n    {t.reason}\n    next: {t.next_step}"
            for t in mine
        ]
        overdue = sum(t.overdue for t in mine)
        body = (
            f"Good morning{', ' + rep.name if rep.name else ''}.\n\n{warning}"
            f"{len(mine)} follow-ups today, {overdue} overdue:\n\n" + "\n\n".join(lines) + "\n"
        )
        with lh.transaction() as connection:
            if connection.execute(select(Delivery.id).where(Delivery.key == key)).first():
                continue
            enqueue(
                connection,
                lead_id=None,
                clock_id=None,
                trigger="digest",
                channel="email",
                target=rep.email,
                secret_env=None,
                payload={
                    "mail": {"subject": f"Your follow-ups for {day}", "body": body},
                    "rep": rep.email,
                    "day": day,
                    "tasks": [
                        {"lead": t.lead, "due": isoformat(t.due), "overdue": t.overdue}
                        for t in mine
                    ],
                },
                now=now,
                key=key,
            )
        report.digests += 1
    if report.digests:
        lh.outbox_ready.set()


def bounced(lh: Leadheat, payload: Mapping[str, Any]) -> None:
    """A nurture mail the server refused for good: its sequence stops (``bounce``), as it
    would for a bounce the mail provider reports as an event."""
    enrollment = payload.get("enrollment")
    if not isinstance(enrollment, int):
        return
    with lh.transaction() as connection:
        nurture.end(connection, enrollment, lh.clock(), "bounce")


class SequenceError(LeadheatError):
    """A sequence name the playbook does not define, or an enrolment that cannot be made."""


def sequence_of(book: Playbook, sequence: str) -> NurtureSequence:
    """The playbook's sequence of this name; an error naming the ones it defines if none."""
    found = book.sequences.get(sequence)
    if found is None:
        known = ", ".join(sorted(book.sequences)) or "none"
        raise SequenceError(f"no sequence {sequence!r} in the playbook (defined: {known})")
    return found


def enroll(lh: Leadheat, lead: str | int, sequence: str, *, actor: str) -> int:
    """Enrol a lead by hand; its first mail goes after the first step's delay."""
    _, book = lh.playbook()
    found = sequence_of(book, sequence)
    now = lh.clock()
    lead_id = lh.lead_id(lead)
    try:
        with lh.transaction() as connection:
            enrollment = nurture.enroll(
                connection, lead_id, sequence, first_send(found, now), now, actor
            )
    except nurture.EnrollmentError as error:
        raise SequenceError(str(error)) from None
    lh.outbox_ready.set()
    return enrollment


def stop(lh: Leadheat, lead: str | int, sequence: str | None, *, actor: str) -> int:
    """Take a lead out of a sequence (or all) by hand."""
    lead_id = lh.lead_id(lead)
    with lh.transaction() as connection:
        return nurture.stop(connection, [lead_id], lh.clock(), f"by {actor}", sequence)


def unsubscribe(lh: Leadheat, email: str, *, source: str, lead_id: int | None = None) -> bool:
    """Record that an address wants no more nurture mail; returns whether it is new."""
    with lh.transaction() as connection:
        return nurture.unsubscribe(connection, email, lead_id, lh.clock(), source)


def unsubscribe_address(lh: Leadheat, token: str) -> str | None:
    """The address an unsubscribe link is for, or ``None`` for a forged token; nothing
    changes (the confirm page a ``GET`` of the link shows: mail scanners follow links)."""
    found = read_token(lh.signing_secret(), token)
    return None if found is None else found[1]


def unsubscribe_by_token(lh: Leadheat, token: str, *, source: str) -> str | None:
    """Honour an unsubscribe link; returns the address, or ``None`` for a forged token."""
    found = read_token(lh.signing_secret(), token)
    if found is None:
        return None
    lead_id, email = found
    with lh.transaction() as connection:
        exists = connection.execute(select(Lead.id).where(Lead.id == lead_id)).first()
        nurture.unsubscribe(connection, email, lead_id if exists else None, lh.clock(), source)
    return email


def run_pass(lh: Leadheat, public_url: str) -> PassReport:
    """One full pass, as ``leadheat sequences run`` does it."""
    report = PassReport()
    enroll_by_rules(lh, report)
    send_digests(lh, report)
    send_due(lh, public_url, report)
    return report
