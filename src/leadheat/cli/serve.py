"""``leadheat serve`` and ``leadheat worker``: the processes that run for good, the HTTP API
and the notification worker. Their heavy imports wait until they are run."""

from __future__ import annotations

from contextlib import suppress
from typing import Annotated, Any

import typer

from leadheat.cli.output import err, out
from leadheat.cli.state import database_url, open_leadheat
from leadheat.settings import Settings


def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 8000,
    worker: Annotated[
        bool,
        typer.Option(
            "--worker/--no-worker",
            help="Also run the notification worker in this process (default: yes).",
        ),
    ] = True,
    workers: Annotated[
        int,
        typer.Option(
            "--workers",
            min=1,
            max=64,
            help="Server processes sharing the port (uvicorn workers). More than one is for "
            "PostgreSQL; on SQLite they take turns at the one write lock.",
        ),
    ] = 1,
    keeper: Annotated[
        bool,
        typer.Option(
            "--keeper/--no-keeper",
            help="Keep the follow-up state (Tasks, Recovery) current in a process of its own, "
            "on another core (default: yes; an in-memory database keeps it in the worker).",
        ),
    ] = True,
) -> None:
    """Serve the HTTP API (REST under /api/v1, Segment-compatible /v1, docs at /docs)."""
    import os

    import uvicorn

    from leadheat.api import SERVE_KEEPER_ENV, SERVE_WORKER_ENV, create_app
    from leadheat.engage import keeper as keepers
    from leadheat.heap import settle_heap
    from leadheat.store.database import in_memory

    url = database_url()
    settings = Settings(database_url=url)
    keeper = keeper and not in_memory(url)
    shown = "localhost" if host in ("127.0.0.1", "0.0.0.0") else host
    processes = f", {workers} processes" if workers > 1 else ""
    if workers > 1:
        # each process builds its own app from the environment (uvicorn starts them fresh);
        # migrate once here, so that they do not all try at once
        open_leadheat().init()
        os.environ["LEADHEAT_DATABASE_URL"] = url
        os.environ[SERVE_WORKER_ENV] = "1" if worker else "0"
        os.environ[SERVE_KEEPER_ENV] = "1" if keeper else "0"
    out.print(
        f"leadheat serving {url} at http://{shown}:{port}{processes}  (API docs: /docs)"
        + ("" if worker else "  [no worker: run `leadheat worker`]")
    )
    # uvicorn believes X-Forwarded-For from loopback unless told otherwise: only from the
    # proxies the operator names (LEADHEAT_TRUSTED_PROXIES)
    trusted = settings.trusted_proxies.strip()
    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "log_level": "info",
        "proxy_headers": bool(trusted),
        "forwarded_allow_ips": trusted or None,
    }
    app = (
        None
        if workers > 1
        else create_app(settings, lh=open_leadheat(), worker=worker, keeper=keeper)
    )
    # started once the schema is migrated (above), before the server takes requests
    kept = keepers.Keeper(url) if keeper else None
    try:
        if app is None:
            uvicorn.run("leadheat.api:served_app", factory=True, workers=workers, **options)
        else:
            settle_heap()
            uvicorn.run(app, **options)
    finally:
        if kept is not None:
            kept.stop()


def keeper(
    poll: Annotated[
        float,
        typer.Option("--poll", min=0.01, help="Seconds between looks when nothing is stale."),
    ] = 0.05,
) -> None:
    """Keep the follow-up state (Tasks, Recovery) current: recompute each lead a write
    marked stale, from its history, outside the write lock.

    `leadheat serve` runs one beside itself; run this one where servers run with
    `--no-keeper` (one or more per database).
    """
    import os
    import signal
    import threading

    from leadheat.engage.keeper import PARENT_ENV, keep

    lh = open_leadheat()
    lh.init()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    parent = os.environ.get(PARENT_ENV)
    if parent is None:
        err.print(f"leadheat keeper on {database_url()} (Ctrl-C to stop)")
    else:  # Ctrl-C reaches the whole terminal's group: the server stops its keeper itself
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    with suppress(KeyboardInterrupt):
        keep(lh, stop, poll, int(parent) if parent else None)


def worker(
    once: Annotated[
        bool, typer.Option("--once", help="Do what is due now, then exit (for cron and tests).")
    ] = False,
    poll: Annotated[
        float | None,
        typer.Option(
            "--poll", min=0.05, help="Seconds between looks (default LEADHEAT_WORKER_POLL)."
        ),
    ] = None,
) -> None:
    """Send alerts from the outbox (with retries) and escalate SLA breaches.

    Any number of workers may run against one PostgreSQL database.
    """
    import signal
    import threading

    from leadheat.delivery.worker import Worker

    lh = open_leadheat()
    lh.playbook()
    settings = Settings(database_url=database_url())
    if poll is not None:
        settings = settings.model_copy(update={"worker_poll": poll})
    runner = Worker(lh, settings)
    try:
        if once:
            report = runner.run_once()
            out.print(
                f"escalated {report.escalated}, delivered {report.delivered}, "
                f"retrying {report.retrying}, failed {report.failed}"
            )
            return
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        err.print(f"leadheat worker on {database_url()} (Ctrl-C to stop)")
        with suppress(KeyboardInterrupt):
            runner.run(stop)
    finally:
        runner.close()
