"""Commands that keep leads from going cold: ``tasks``, ``recover``, ``winback``,
``sequences …`` and ``unsubscribe``. Registered on the main app in :mod:`leadheat.cli.app`.

The nurture engine (mail rendering, the prediction alarm) and the settings are imported by
the commands that use them, so that ``tasks`` and ``recover``, which a rep runs all day,
start without them."""

from __future__ import annotations

from typing import Annotated

import typer

from leadheat.cli.options import AtOption, JsonOption, LimitOption, instant
from leadheat.cli.output import emit, listing, out
from leadheat.cli.state import ACTOR, open_leadheat
from leadheat.engage.lists import mark_winback, recover, tasks, winback
from leadheat.engage.views import enrollment_json, lost_json, task_json, winback_json
from leadheat.store.nurture import list_enrollments
from leadheat.times import parse_duration

sequences_app = typer.Typer(
    help="Nurture sequences: list, enrol, stop, run a pass.", no_args_is_help=True
)
OwnerOption = Annotated[
    str | None, typer.Option("--owner", help="Only this rep's leads (their email).")
]


def tasks_command(
    owner: OwnerOption = None,
    overdue: Annotated[bool, typer.Option("--overdue", help="Only tasks past due.")] = False,
    at: AtOption = None,
    limit: LimitOption = None,
    as_json: JsonOption = False,
) -> None:
    """Follow-up tasks from the playbook's cadences: lead, due, reason, owner, next step."""
    lh = open_leadheat()
    found = tasks(lh, at=instant(at), owner=owner, overdue=overdue, limit=limit)
    listing(
        [task_json(task) for task in found],
        as_json,
        ("lead", "owner", "due", "temperature", "reason", "next step"),
        lambda item: (
            str(item["lead"]),
            item["owner"] or "(nobody)",
            item["due"] + ("  OVERDUE" if item["overdue"] else ""),
            item["temperature"],
            item["reason"],
            item["next_step"],
        ),
    )


def recover_command(
    within: Annotated[
        str | None,
        typer.Option(
            "--within", help='Hot within this span before now (default [recover] within, "30d").'
        ),
    ] = None,
    owner: OwnerOption = None,
    at: AtOption = None,
    limit: LimitOption = None,
    as_json: JsonOption = False,
) -> None:
    """Lost hot leads: hot lately, not now, no outcome and no touch since; latest first."""
    lh = open_leadheat()
    span = parse_duration(within) if within else None
    found = recover(lh, at=instant(at), within=span, owner=owner, limit=limit)
    listing(
        [lost_json(lost) for lost in found],
        as_json,
        ("lead", "owner", "hot from", "hot until", "now", "why it cooled"),
        lambda item: (
            str(item["lead"]),
            item["owner"] or "(nobody)",
            item["hot_from"],
            item["hot_until"],
            item["temperature"],
            item["reason"],
        ),
    )


def winback_command(
    older_than: Annotated[
        str | None,
        typer.Option(
            "--older-than",
            help='Leads on the list longer than this (default [winback] older_than, "180d").',
        ),
    ] = None,
    churned: Annotated[
        bool,
        typer.Option("--churned/--no-churned", help="Include expired trials and cancellations."),
    ] = True,
    horizon: Annotated[
        str | None,
        typer.Option("--horizon", help='Conversion counted within this span (default "90d").'),
    ] = None,
    at: AtOption = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show the list; do not mark the leads.")
    ] = False,
    enroll: Annotated[
        str | None, typer.Option("--enroll", help="Enrol every lead of the list in this sequence.")
    ] = None,
    limit: LimitOption = None,
    as_json: JsonOption = False,
) -> None:
    """Win-back list: cold leads that were engaged (expired trials, cancellations, old
    lists), marked previously_engaged, with the conversion rate to expect from history."""
    from leadheat.engage import nurture

    lh = open_leadheat()
    if enroll is not None:  # before anything is marked: a mistyped name changes nothing
        nurture.sequence_of(lh.playbook()[1], enroll)
    found = winback(
        lh,
        at=instant(at),
        older_than=parse_duration(older_than) if older_than else None,
        churned=churned,
        horizon=parse_duration(horizon) if horizon else None,
    )
    marked = 0 if dry_run else mark_winback(lh, found)
    enrolled = 0
    if enroll is not None and not dry_run:
        for lead in found.leads:
            try:
                nurture.enroll(lh, lead.lead_id, enroll, actor=ACTOR)
                enrolled += 1
            except nurture.SequenceError:  # enrolled in it before: once per sequence ever
                continue
    data = winback_json(found)
    data["marked"], data["enrolled"] = marked, enrolled
    if limit is not None:
        data["leads"] = data["leads"][:limit]
    if as_json:
        emit(data)
        return
    listing(
        data["leads"],
        False,
        ("lead", "why", "age (days)", "last interest"),
        lambda item: (
            str(item["lead"]),
            item["why"],
            f"{item['age_days']:.0f}",
            item["last_engaged_at"] or "",
        ),
    )
    expected = data["expected"]
    hot = expected["hot_rate"]
    out.print(
        f"{expected['leads']:,} leads; expect {expected['expected_conversions']:.1f} "
        f"conversions ({expected['expected_rate']:.1%}, 95% {expected['low']:.1%}–"
        f"{expected['high']:.1%}) within {data['horizon']}, from {expected['sample']:,} past "
        f"leads like them. Past hot leads converted at {hot['rate']:.1%} (n={hot['leads']:,}): "
        "do not plan on that here."
    )
    if not dry_run:
        out.print(
            f"marked {marked:,} previously_engaged" + (f", enrolled {enrolled:,}" if enroll else "")
        )


@sequences_app.command("list")
def sequences_list(as_json: JsonOption = False) -> None:
    """The playbook's sequences: steps, enrol rules and how many leads are in each."""
    lh = open_leadheat()
    _, book = lh.playbook()
    with lh.engine.connect() as connection:
        rows = list_enrollments(connection, limit=1_000_000)
    data = []
    for name, sequence in sorted(book.sequences.items()):
        mine = [row for row in rows if row.sequence == name]
        data.append(
            {
                "sequence": name,
                "steps": len(sequence.steps),
                "rules": len(sequence.enroll),
                "active": sum(row.status == "active" for row in mine),
                "finished": sum(row.status == "finished" for row in mine),
                "stopped": sum(row.status == "stopped" for row in mine),
            }
        )
    listing(
        data,
        as_json,
        ("sequence", "steps", "rules", "active", "finished", "stopped"),
        lambda item: tuple(
            str(item[k]) for k in ("sequence", "steps", "rules", "active", "finished", "stopped")
        ),
    )


@sequences_app.command("enroll")
def sequences_enroll(lead: str, sequence: str) -> None:
    """Enrol a lead in a sequence by hand (once per sequence)."""
    from leadheat.engage import nurture

    lh = open_leadheat()
    enrollment = nurture.enroll(lh, lead, sequence, actor=ACTOR)
    out.print(f"enrolled {lead} in {sequence} (enrolment {enrollment})")


@sequences_app.command("stop")
def sequences_stop(
    lead: str,
    sequence: Annotated[
        str | None, typer.Argument(help="Only this sequence (default: all).")
    ] = None,
) -> None:
    """Take a lead out of a sequence (or of all)."""
    from leadheat.engage import nurture

    lh = open_leadheat()
    stopped = nurture.stop(lh, lead, sequence, actor=ACTOR)
    out.print(f"stopped {stopped} enrolment(s) of {lead}")


@sequences_app.command("enrollments")
def sequences_enrollments(
    lead: Annotated[str | None, typer.Option("--lead", help="Only this lead.")] = None,
    sequence: Annotated[str | None, typer.Option("--sequence", help="Only this sequence.")] = None,
    status: Annotated[
        str | None, typer.Option("--status", help="active, finished or stopped.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most N, newest first.")] = 200,
    as_json: JsonOption = False,
) -> None:
    """Enrolments: sequence, mails sent, status, next send, why it stopped."""
    lh = open_leadheat()
    lead_id = lh.lead_id(lead) if lead else None
    with lh.engine.connect() as connection:
        rows = list_enrollments(
            connection, lead_id=lead_id, sequence=sequence, status=status, limit=limit
        )
    listing(
        [enrollment_json(row) for row in rows],
        as_json,
        ("lead", "sequence", "sent", "status", "next", "stopped because"),
        lambda item: (
            f"id:{item['lead_id']}",
            item["sequence"],
            str(item["sent"]),
            item["status"],
            item["next_at"] or "",
            item["stop_reason"] or "",
        ),
    )


@sequences_app.command("run")
def sequences_run() -> None:
    """One pass now: enrol by the playbook's rules, queue due mails and digests (the worker
    does this continuously; `leadheat worker --once` then sends them)."""
    from leadheat.engage import nurture
    from leadheat.settings import Settings

    lh = open_leadheat()
    report = nurture.run_pass(lh, Settings().public_url)
    stopped = ", ".join(f"{n} {why}" for why, n in sorted(report.stopped.items())) or "none"
    out.print(
        f"enrolled {report.enrolled}, mails queued {report.queued}, digests {report.digests}, "
        f"stopped: {stopped}"
    )


def unsubscribe_command(email: str) -> None:
    """Stop all nurture mail to an address (as its unsubscribe link does)."""
    from leadheat.engage import nurture

    lh = open_leadheat()
    new = nurture.unsubscribe(lh, email, source="cli")
    out.print(f"{email} unsubscribed" + ("" if new else " (already)"))
