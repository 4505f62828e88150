"""Where outbound calls may go, as the operator allows: webhook and Slack hosts
(``LEADHEAT_WEBHOOK_HOSTS``) and the variables a webhook's signing secret may come from
(``LEADHEAT_SECRET_ENVS``).

A playbook is written by managers; the environment belongs to the operator. Without these
limits a playbook could aim webhooks at the database's admin port or a cloud metadata address
inside the network, or name ``LEADHEAT_SMTP_URL`` as its ``secret_env`` and so publish HMACs
keyed with the SMTP password. Hosts are checked when a playbook is checked or applied (as far
as the URL alone tells) and again when each webhook leaves, against every address its host
resolves to; the connection then goes to a checked address, so a name that resolves
differently a moment later (DNS rebinding) cannot slip through.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from leadheat.delivery.senders import SendError
from leadheat.playbook import Playbook, PlaybookError, PlaybookProblem, locate_line
from leadheat.settings import Settings

HOSTS_SETTING = "LEADHEAT_WEBHOOK_HOSTS"
SECRETS_SETTING = "LEADHEAT_SECRET_ENVS"
WEBHOOK_SECRET = "LEADHEAT_WEBHOOK_SECRET"
"""leadheat's own signing-secret setting: always allowed, and the prefix of the names
allowed when ``LEADHEAT_SECRET_ENVS`` is unset."""

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def _names(text: str | None) -> frozenset[str]:
    return frozenset(part.strip() for part in (text or "").split(",") if part.strip())


def literal_address(host: str) -> Address | None:
    """The address a URL's host names when it is an IP literal in any spelling the resolver
    accepts (``127.1`` and ``0x7f.0.0.1`` are loopback too), else ``None``.

    >>> literal_address("127.1"), literal_address("::1"), literal_address("hooks.example.com")
    (IPv4Address('127.0.0.1'), IPv6Address('::1'), None)
    """
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if re.fullmatch(r"[0-9a-fx.]+", host.lower()):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def _kind(address: Address) -> str:
    for kind in ("loopback", "link-local", "unspecified", "multicast", "reserved", "private"):
        if getattr(address, f"is_{kind.replace('-', '_')}"):
            return kind
    return "non-public"


@dataclass(frozen=True)
class Egress:
    """The operator's limits on outbound calls.

    >>> Egress().url_problem("http://169.254.169.254/latest/meta-data")
    'http://169.254.169.254/...: 169.254.169.254 is a link-local address; list it in LEADHEAT_WEBHOOK_HOSTS to allow it'
    >>> Egress(hosts=frozenset({"hooks.example.com"})).url_problem("https://crm.example.org/x")
    'https://crm.example.org/...: host crm.example.org is not in LEADHEAT_WEBHOOK_HOSTS (hooks.example.com)'
    >>> Egress().secret_env_problem("LEADHEAT_SMTP_URL")
    'LEADHEAT_SMTP_URL is not a signing secret: name LEADHEAT_WEBHOOK_SECRET or a variable starting with it, or list it in LEADHEAT_SECRET_ENVS'
    """  # noqa: E501

    hosts: frozenset[str] = frozenset()
    """Hosts webhooks and Slack messages may go to, lower case (``*.example.com`` for any
    name under it); listed hosts may be internal. Empty: any host whose addresses are all
    public."""
    secret_envs: frozenset[str] | None = None
    """Variables a webhook's ``secret_env`` may name besides ``LEADHEAT_WEBHOOK_SECRET``;
    ``None``: any name starting with ``LEADHEAT_WEBHOOK_SECRET``."""

    @staticmethod
    def from_settings(settings: Settings) -> Egress:
        return Egress(
            hosts=frozenset(host.lower().rstrip(".") for host in _names(settings.webhook_hosts)),
            secret_envs=None if settings.secret_envs is None else _names(settings.secret_envs),
        )

    @staticmethod
    def from_environment() -> Egress:
        """The limits ``LEADHEAT_WEBHOOK_HOSTS`` and ``LEADHEAT_SECRET_ENVS`` set now."""
        return Egress.from_settings(Settings())

    def listed(self, host: str) -> bool:
        """Whether the operator named ``host`` (exactly, or under a ``*.`` entry).

        >>> Egress(hosts=frozenset({"*.example.com"})).listed("hooks.example.com")
        True
        """
        host = host.lower().rstrip(".")
        return host in self.hosts or any(
            entry.startswith("*.") and host.endswith(entry[1:]) for entry in self.hosts
        )

    def url_problem(self, url: str) -> str | None:
        """What forbids calling ``url``, as far as the URL alone tells; ``None`` if nothing.
        The message shows the scheme and host only: the rest of a URL may be a secret."""
        parts = urlsplit(url)
        host = parts.hostname or ""
        shown = f"{parts.scheme}://{host}/..."
        if parts.scheme not in ("http", "https") or not host:
            return f"{shown}: not an http(s) URL with a host"
        if self.hosts:
            if not self.listed(host):
                allowed = ", ".join(sorted(self.hosts))
                return f"{shown}: host {host} is not in {HOSTS_SETTING} ({allowed})"
            return None
        address = literal_address(host)
        if address is not None and not address.is_global:
            return (
                f"{shown}: {host} is a {_kind(address)} address; "
                f"list it in {HOSTS_SETTING} to allow it"
            )
        return None

    def addresses_for(self, url: str) -> list[str]:
        """The checked addresses to connect to for ``url``: its host resolved now, every
        address it resolves to allowed (a listed host may be internal; any other must be
        public). Raises :class:`SendError`, permanent when the operator's limits forbid it."""
        problem = self.url_problem(url)
        if problem is not None:
            raise SendError(f"refused: {problem}", permanent=True)
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as error:
            raise SendError(f"cannot resolve {host}: {error}") from None
        addresses = list(dict.fromkeys(str(info[4][0]) for info in found))
        if not addresses:
            raise SendError(f"cannot resolve {host}: no addresses")
        if not self.listed(host):
            for text in addresses:
                address = ipaddress.ip_address(text.partition("%")[0])
                if not address.is_global:
                    raise SendError(
                        f"refused: {host} resolves to {text}, a {_kind(address)} address; "
                        f"list the host in {HOSTS_SETTING} to allow it",
                        permanent=True,
                    )
        return addresses

    def secret_env_problem(self, name: str) -> str | None:
        """Why a webhook may not be signed with the variable ``name``; ``None`` if it may.

        leadheat's other settings (``LEADHEAT_DATABASE_URL``, ``LEADHEAT_SMTP_URL``, …) are
        never signing secrets, whatever the list says: an HMAC keyed with one is sent to the
        receiver with every webhook.
        """
        if name == WEBHOOK_SECRET:
            return None
        if self.secret_envs is None:
            if name.startswith(WEBHOOK_SECRET):
                return None
            return (
                f"{name} is not a signing secret: name {WEBHOOK_SECRET} or a variable "
                f"starting with it, or list it in {SECRETS_SETTING}"
            )
        if name.startswith("LEADHEAT_") and not name.startswith(WEBHOOK_SECRET):
            return f"{name} is one of leadheat's own settings, never a signing secret"
        if name not in self.secret_envs:
            return f"{name} is not in {SECRETS_SETTING}"
        return None

    def secret(self, name: str) -> str | None:
        """The value of the signing-secret variable ``name`` (``None`` when unset or empty);
        :class:`SendError` (permanent) when the operator does not allow that variable."""
        problem = self.secret_env_problem(name)
        if problem is not None:
            raise SendError(f"refused: secret_env {problem}", permanent=True)
        return os.environ.get(name) or None

    def playbook_problems(self, book: Playbook, source: str) -> list[PlaybookProblem]:
        """Each alert whose URL or ``secret_env`` these limits forbid, with its line."""
        problems = []
        for index, alert in enumerate(book.speed.alerts):
            where = ("speed", "alerts", index)
            found = []
            if alert.url is not None and alert.channel in ("webhook", "slack"):
                found.append(("url", self.url_problem(alert.url)))
            if alert.channel == "webhook":
                found.append(("secret_env", self.secret_env_problem(alert.secret_env)))
            for key, problem in found:
                if problem is not None:
                    line = locate_line(source, (*where, key)) or locate_line(source, where)
                    dotted = ".".join(str(part) for part in (*where, key))
                    problems.append(PlaybookProblem(dotted, line, problem))
        return problems

    def check_playbook(self, book: Playbook, source: str, source_name: str = "playbook") -> None:
        """Raise :class:`PlaybookError` naming every alert these limits forbid."""
        problems = self.playbook_problems(book, source)
        if problems:
            raise PlaybookError(problems, source_name)
