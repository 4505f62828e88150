"""Server CPU of ``POST /v1/batch``'s request side: everything but storing the batch.

``bench/ingest_http.py`` reports events per server CPU-second end to end, where storing and
scoring the events take most of it and vary with the database. This serves the same app on
uvicorn, as ``leadheat serve`` does, with ``Leadheat.collect`` replaced by a no-op in the
server process, and posts the same Segment batches (100 ``track`` calls, HTTP Basic write
key, 8 keep-alive connections, the bench's raw-socket client): the server's CPU per request
is then what reading, checking and answering a batch costs (uvicorn, middleware, routing,
the key check, the strict JSON reader and the Segment reader). Issue 21's budget for it is
1.5 ms of the 5 ms that 20,000 events/s on one core leave a 100-event batch.

The server tunes its garbage collector as ``leadheat serve`` does (``settle_heap``); without
that, young-generation collections ran several times a request and overstated its cost by
about a third. ``--no-thread`` also replaces the hop to the group commit's writing thread
(``run_in_threadpool``) by a direct call, to see what the hop itself costs.
``--rounds`` runs the measurement that many times, each on a fresh server. The rate limit
is off (``rate_limit=0``), so that no answer is a cheap 429.

The data are SYNTHETIC (bench/ingest_http.py's batches). Loopback only.

Run ``.venv/bin/python bench/collect_request.py [--duration S] [--rounds R] [--no-thread]``;
compare two versions of the code by running it with each on ``PYTHONPATH``, alternately.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import multiprocessing
import os
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from ingest_http import (
    BATCH_SIZE,
    batch_body,
    batch_template,
    closed_loop,
    free_port,
)

CONNECTIONS = 8


def serve(port: int, url: str, key_file: str, thread: bool) -> None:
    """The server process: the app over ``url`` with ``collect`` doing nothing."""
    import uvicorn

    from leadheat.api import create_app, group_commit
    from leadheat.heap import settle_heap
    from leadheat.service import Leadheat
    from leadheat.settings import Settings

    lh = Leadheat(url)
    lh.init()
    key, _ = lh.create_key("bench", ["ingest"])
    lh.collect = lambda *args, **kwargs: None  # type: ignore[method-assign]
    if not thread:

        async def direct(call: Any, *args: Any) -> Any:
            return call(*args)

        group_commit.run_in_threadpool = direct  # type: ignore[assignment]
    Path(key_file).write_text(key)
    app = create_app(Settings(database_url=url, rate_limit=0), lh)
    settle_heap()  # as ``leadheat serve`` does
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


def one_round(seconds: float, thread: bool) -> tuple[int, float]:
    """Requests answered and server CPU milliseconds per request, on a fresh server."""
    folder = Path(tempfile.mkdtemp(prefix="leadheat-collect-request-"))
    port, key_file = free_port(), str(folder / "key")
    server = multiprocessing.Process(
        target=serve, args=(port, f"sqlite:///{folder / 'bench.db'}", key_file, thread)
    )
    server.start()
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or not server.is_alive():
                raise SystemExit("the server did not start")
            time.sleep(0.1)
        key = Path(key_file).read_text()
        basic = base64.b64encode(f"{key}:".encode()).decode()
        headers = {"Authorization": f"Basic {basic}", "Content-Type": "application/json"}
        template = batch_template(datetime.now(UTC))
        assert server.pid is not None
        result = asyncio.run(
            closed_loop(
                f"http://127.0.0.1:{port}",
                "/v1/batch",
                headers,
                lambda n: batch_body(template, n),
                BATCH_SIZE,
                seconds,
                CONNECTIONS,
                [server.pid],
            )
        )
    finally:
        server.terminate()
        server.join(10)
    if result.failed:
        raise SystemExit(f"{result.failed} requests failed: {result.first_error}")
    return result.requests, result.server_cpu_s / result.requests * 1000


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=5.0, help="measured seconds a round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--no-thread", action="store_true", help="call collect directly, not in a thread"
    )
    options = parser.parse_args(argv)
    load = os.getloadavg()[0]
    print(f"POST /v1/batch request side ({BATCH_SIZE} track calls; load average {load:.2f})")
    for number in range(1, options.rounds + 1):
        requests, cpu_ms = one_round(options.duration, not options.no_thread)
        print(f"round {number}: {requests} requests, {cpu_ms:.3f} ms server CPU a request")


if __name__ == "__main__":
    main()
