"""One typed settings object, read from the environment (``LEADHEAT_*``) by whoever starts
leadheat; nothing reads the environment at import time."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from leadheat.store.database import DEFAULT_URL


class Settings(BaseSettings):
    """Where the data lives and how notifications leave (see README, "Settings").

    Secrets (the SMTP password inside ``smtp_url``, the webhook secret) come from the
    environment, never from the playbook, which every rep can read.
    """

    model_config = SettingsConfigDict(env_prefix="LEADHEAT_")

    database_url: str = DEFAULT_URL
    smtp_url: str | None = None
    """``smtp://user:password@host:587?starttls=true`` or ``smtps://…:465``."""
    mail_from: str = "leadheat@localhost"
    public_url: str = "http://localhost:8000"
    """Where people reach this server: the base of unsubscribe links in nurture mail."""
    nurture_every: float = Field(default=60.0, gt=0)
    """Seconds between a worker's passes that enrol leads by sequence rules and send digests."""
    webhook_secret: str | None = None
    """Signs webhooks (``X-Leadheat-Signature``); unset, the database's own secret does."""
    webhook_hosts: str | None = None
    """Comma-separated hosts webhook and Slack alerts may call (``*.example.com`` for any
    name under it), internal ones included; unset, any host whose addresses are all public."""
    secret_envs: str | None = None
    """Comma-separated variables an alert's ``secret_env`` may name; unset, those starting
    with ``LEADHEAT_WEBHOOK_SECRET``."""
    retry_base: float = Field(default=2.0, gt=0)
    """Seconds before the first retry of a failed notification; doubles each time."""
    retry_max: float = Field(default=3600.0, gt=0)
    max_attempts: int = Field(default=12, ge=1)
    lease: float = Field(default=60.0, gt=0)
    """Seconds a worker holds a notification it is sending before another may take it."""
    worker_poll: float = Field(default=1.0, gt=0)
    """Seconds between a worker's looks for due notifications and SLA breaches."""
    rate_limit: float = Field(default=500.0, ge=0)
    """Requests a second per API key on the ingest routes (0: no limit); bursts of twice it."""
    max_body: int = Field(default=5_000_000, ge=1024)
    """Bytes of the largest request body any route accepts."""
    body_timeout: float = Field(default=30.0, gt=0)
    """Seconds from a request's start by which its whole body must have arrived; a slower
    one is cut off (408, connection closed), so trickling clients cannot hold the server."""
    trusted_proxies: str = ""
    """Addresses or networks (``10.0.0.5,192.168.1.0/24``; ``*`` for any) of the reverse
    proxies in front of ``leadheat serve``, whose ``X-Forwarded-For`` and
    ``X-Forwarded-Proto`` are believed; empty (the default): none, a request's client address
    is its connection's. Sign-in throttling counts by client address, so a header believed
    from anyone would let a guesser pick a new address for every guess."""
    session_ttl: float = Field(default=28800.0, gt=0)
    """Seconds a dashboard sign-in lasts (8 hours); then the person signs in again."""
    backtest_timeout: float = Field(default=30.0, gt=0)
    """Seconds a backtest asked over HTTP (the API, the dashboard) may run before it is
    stopped and answered 503."""
