"""The worker: escalates SLA breaches and sends what the outbox holds, with retries.

``leadheat worker`` runs one; ``leadheat serve`` runs one in a thread, woken the moment a
request commits a notification, so an alert leaves within milliseconds rather than at the
next poll. Any number may run against one PostgreSQL database: claims are exclusive leases.
"""

from __future__ import annotations

import logging
import random
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

import httpx

from leadheat.delivery.egress import Egress
from leadheat.delivery.senders import SendError, SmtpServer, send_email, send_slack, send_webhook
from leadheat.engage.followup import catch_up
from leadheat.engage.nurture import PassReport, bounced, enroll_by_rules, send_digests, send_due
from leadheat.service import Leadheat
from leadheat.settings import Settings
from leadheat.store.outbox import DeliveryView

log = logging.getLogger("leadheat.worker")


@dataclass
class WorkReport:
    """What one pass did."""

    escalated: int = 0
    delivered: int = 0
    retrying: int = 0
    failed: int = 0
    nurtured: int = 0
    """Nurture mails and digests queued."""
    followups: int = 0
    """Leads whose follow-up state was recomputed (``engage.followup.catch_up``)."""

    @property
    def busy(self) -> bool:
        return bool(
            self.escalated
            or self.delivered
            or self.retrying
            or self.failed
            or self.nurtured
            or self.followups
        )


def backoff(attempts: int, base: float, cap: float, jitter: float = 0.1) -> timedelta:
    """Wait before the next attempt: ``base · 2^(attempts−1)``, at most ``cap``, stretched by
    up to ``jitter`` at random so that many failed alerts do not all retry at once.

    >>> [backoff(n, 2, 3600, jitter=0).total_seconds() for n in (1, 2, 3, 13)]
    [2.0, 4.0, 8.0, 3600.0]
    """
    seconds = min(cap, base * 2 ** min(attempts - 1, 60))
    return timedelta(seconds=seconds * (1 + random.uniform(0, jitter)))


class Worker:
    """Sends notifications for one database."""

    def __init__(
        self, lh: Leadheat, settings: Settings | None = None, *, followups: bool = True
    ) -> None:
        self.lh = lh
        self.followups = followups
        """Whether each pass also recomputes stale follow-up state (not where a keeper
        process does: :mod:`leadheat.engage.keeper`)."""
        self.settings = settings or Settings(database_url=lh.url)
        self.smtp = SmtpServer.from_url(self.settings.smtp_url) if self.settings.smtp_url else None
        self.egress = Egress.from_settings(self.settings)
        timeout = min(10.0, self.settings.lease / 2)
        self._timeout = timeout
        self._clients: dict[str, httpx.Client] = {}
        self._secret: bytes | None = None
        self._last_sweep: datetime | None = None
        self._digests: set[str] = set()

    def close(self) -> None:
        for client in self._clients.values():
            client.close()

    def _client(self, url: str) -> httpx.Client:
        """One HTTP client per host: calls go to a checked address, so a pooled connection
        (authenticated by TLS as one host) must never carry a request for another host."""
        host = urlsplit(url).hostname or ""
        if host not in self._clients:
            self._clients[host] = httpx.Client(timeout=self._timeout, follow_redirects=False)
        return self._clients[host]

    def _signing_secret(self, env: str | None) -> bytes:
        named = self.egress.secret(env) if env else None
        if named:
            return named.encode()
        if self.settings.webhook_secret:
            return self.settings.webhook_secret.encode()
        if self._secret is None:
            self._secret = self.lh.signing_secret().encode()
        return self._secret

    def _send(self, item: DeliveryView) -> None:
        if item.channel == "webhook":
            secret = self._signing_secret(item.secret_env)
            addresses = self.egress.addresses_for(item.target)
            client = self._client(item.target)
            send_webhook(client, item.target, item.payload, item.key, secret, addresses)
        elif item.channel == "slack":
            addresses = self.egress.addresses_for(item.target)
            send_slack(self._client(item.target), item.target, item.payload, item.key, addresses)
        elif item.channel == "email":
            send_email(self.smtp, self.settings.mail_from, item.target, item.payload, item.key)
        else:
            raise SendError(f"unknown channel {item.channel!r}", permanent=True)

    def nurture(self) -> int:
        """Queue due nurture mail; every ``nurture_every`` seconds also enrol leads by the
        sequences' rules and queue the reps' digests (both read many leads)."""
        report = PassReport()
        now = self.lh.clock()
        if self._last_sweep is None or now - self._last_sweep >= timedelta(
            seconds=self.settings.nurture_every
        ):
            self._last_sweep = now
            enroll_by_rules(self.lh, report)
            if self.smtp is not None:  # digests are mail: without a server they only fail
                send_digests(self.lh, report, self._digests)
        send_due(self.lh, self.settings.public_url, report)
        return report.queued + report.digests

    def run_once(self, limit: int = 50) -> WorkReport:
        """Escalate due SLA clocks, then send every notification that is due now.

        Successes are recorded a batch at a time, in one short transaction, so that the
        worker holds the database's write lock as little as possible while requests pour in.
        Whatever goes wrong with one notification is that notification's failure alone: the
        rest of the batch goes on, and what was sent is recorded even if the pass stops.
        """
        report = WorkReport(escalated=self.lh.escalate())
        report.nurtured = self.nurture()
        lease = timedelta(seconds=self.settings.lease)
        while True:
            claimed = self.lh.claim_deliveries(lease, limit, self.settings.max_attempts)
            done: list[int] = []
            try:
                for item in claimed:
                    if self._deliver(item, report):
                        done.append(item.id)
            finally:
                self.lh.deliveries_done(done)
            report.delivered += len(done)
            if len(claimed) < limit:
                if self.followups:  # after the urgent work, a bounded share
                    report.followups = catch_up(self.lh)
                return report

    def _deliver(self, item: DeliveryView, report: WorkReport) -> bool:
        """Send one notification; on failure record it (retry later or give up) and say no."""
        try:
            self._send(item)
            return True
        except SendError as error:
            reason, permanent = str(error), error.permanent
        except Exception as error:  # a surprise here must not stop the others: retry it
            log.exception("delivery %s (%s) failed unexpectedly", item.id, item.channel)
            reason, permanent = f"{type(error).__name__}: {error}", False
        attempts = item.attempts + 1  # the claim counted this one
        give_up = permanent or attempts >= self.settings.max_attempts
        wait = backoff(attempts, self.settings.retry_base, self.settings.retry_max)
        self.lh.delivery_failed(item.id, reason, None if give_up else wait)
        if give_up:
            report.failed += 1
            if item.trigger == "nurture":
                bounced(self.lh, item.payload)
            log.warning("gave up on delivery %s (%s): %s", item.id, item.channel, reason)
        else:
            report.retrying += 1
        return False

    def run(self, stop: threading.Event) -> None:
        """Work until ``stop`` is set; sleep between passes unless a write wakes it."""
        while not stop.is_set():
            try:
                report = self.run_once()
            except Exception:  # a database hiccup must not kill the loop: log, wait, go on
                log.exception("worker pass failed; retrying")
                report = WorkReport()
            if report.busy:
                continue
            self.lh.outbox_ready.wait(self.settings.worker_poll)
            self.lh.outbox_ready.clear()


def start_in_thread(
    lh: Leadheat, settings: Settings | None = None, *, followups: bool = True
) -> tuple[threading.Thread, threading.Event]:
    """A worker in a daemon thread (as ``serve`` runs it); set the event to stop it."""
    stop = threading.Event()
    worker = Worker(lh, settings, followups=followups)

    def loop() -> None:
        try:
            worker.run(stop)
        finally:
            worker.close()

    thread = threading.Thread(target=loop, name="leadheat-worker", daemon=True)
    thread.start()
    return thread, stop
