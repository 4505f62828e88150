"""No page the server sends refers to another host: the dashboard's pages, the API's docs
(Swagger UI at ``/docs``, ReDoc at ``/redoc``) and the OpenAPI schema, over real HTTP. A team
on a network with no way out gets whole pages (FastAPI's default docs load from a CDN), and
no page tells a third party who is looking at what."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import closing
from urllib.parse import urlsplit

import httpx
import pytest

from conftest import DEMO_MAKES_HOT, LiveServer
from leadheat.identity import parse_lead_key
from leadheat.service import Leadheat, LeadInput
from leadheat.web.auth import add_user

PASSWORD = "correct horse battery"
MANAGER = "max@example.com"
ABSOLUTE = re.compile(r"""(?:https?:)?//[\w.:\[\]-]+""", re.IGNORECASE)
"""A URL with a host: ``https://cdn…``, ``http://…`` or scheme-relative ``//cdn…``."""
REFERENCES = re.compile(
    r"""(?:\b(?:src|href|action|formaction)\s*=\s*["']?|url\(\s*["']?|\burl:\s*["'])([^"'\s)>]+)""",
    re.IGNORECASE,
)
XML_NAMESPACE = re.compile(r"""\bxmlns(?::\w+)?\s*=\s*["'][^"']*["']""")
"""``xmlns="http://www.w3.org/2000/svg"`` names a vocabulary; nothing is loaded from it."""


@pytest.fixture
def server(lh: Leadheat) -> Iterator[LiveServer]:
    lh.apply_playbook(DEMO_MAKES_HOT)
    lh.add_rep(MANAGER)
    lh.upsert_leads([LeadInput([parse_lead_key("ana@acme.example.com")], {"title": "CTO"})])
    lh.track("ana@acme.example.com", "demo_request")
    add_user(lh, MANAGER, "manager", PASSWORD)
    running = LiveServer(lh)
    yield running
    running.stop()


def signed_in(server: LiveServer) -> httpx.Client:
    client = httpx.Client(base_url=server.url, follow_redirects=True)
    login = client.get("/login")
    found = re.search(r'name="csrf_token" value="([^"]+)"', login.text)
    assert found, "no CSRF field on the sign-in page"
    landed = client.post(
        "/login", data={"email": MANAGER, "password": PASSWORD, "csrf_token": found.group(1)}
    )
    assert landed.status_code == 200, landed.text
    return client


def other_hosts(body: str, server: LiveServer) -> list[str]:
    """Every URL in ``body`` whose host is not the server's own."""
    own = urlsplit(server.url).netloc
    text = XML_NAMESPACE.sub("", body)
    found = [m.group(0) for m in ABSOLUTE.finditer(text)]
    found += [ref for ref in REFERENCES.findall(text) if ref.startswith("//")]
    return sorted({url for url in found if urlsplit(url if "//" in url else "").netloc != own})


def test_no_served_page_refers_to_another_host(server: LiveServer) -> None:
    lead = server.lh.lead_id("ana@acme.example.com")
    pages = [
        "/", "/?scope=team", "/hot/rows?scope=team", f"/leads/{lead}", "/lists",
        "/lists?temperature=hot", "/tasks?scope=team", "/recovery", "/winback", "/analytics",
        "/playbook", "/docs", "/redoc", "/openapi.json", "/no-such-page",
    ]  # fmt: skip
    assets: set[str] = set()
    with closing(signed_in(server)) as client, httpx.Client(base_url=server.url) as stranger:
        answers = [(path, client.get(path)) for path in pages]
        answers.append(("/login", stranger.get("/login")))
        for path, answer in answers:
            assert answer.status_code in (200, 404), f"{path}: {answer.status_code}"
            assert other_hosts(answer.text, server) == [], path
            assets.update(
                ref for ref in REFERENCES.findall(answer.text) if ref.startswith("/static/")
            )
        assert {
            "/static/swagger-ui-bundle.js",
            "/static/swagger-ui.css",
            "/static/redoc.standalone.js",
            "/static/favicon.svg",
            "/static/dashboard.css",
        } <= assets
        for asset in sorted(assets):  # each one the pages name is served
            assert client.get(asset).status_code == 200, asset
        assert client.get("/favicon.ico").headers["content-type"] == "image/svg+xml"
        for path in ("/docs", "/redoc"):  # and the browser is told to load nothing else
            policy = client.get(path).headers["content-security-policy"]
            assert "default-src 'none'" in policy and "http" not in policy, policy
