"""Sign-in throttling that holds guessers back without locking out the person they guess at,
over real HTTP from several loopback addresses (and through a real ``leadheat serve`` for
the forwarded headers it believes)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from conftest import LiveServer, free_port, serve
from leadheat.api import limits
from leadheat.service import Leadheat
from leadheat.web.auth import add_user
from leadheat.web.signin import SignInThrottle
from test_web_auth import PASSWORD, csrf_in

RITA = "rita@example.com"


@pytest.fixture
def lh(tmp_path: Path) -> Iterator[Leadheat]:
    """SQLite alone: the throttle lives in the server's memory, whatever the database (the
    sign-in itself runs on both in tests/test_web_auth.py)."""
    instance = Leadheat(f"sqlite:///{tmp_path / 'leadheat.db'}")
    instance.init()
    yield instance
    instance.close()


@pytest.fixture
def server(lh: Leadheat) -> Iterator[LiveServer]:
    add_user(lh, RITA, "rep", PASSWORD)
    running = LiveServer(lh)
    yield running
    running.stop()


def _attempt(url: str, email: str, password: str, source: str = "127.0.0.1", **headers: str) -> int:
    """One sign-in through the form, from the loopback address ``source``; its status."""
    transport = httpx.HTTPTransport(local_address=source)
    with httpx.Client(base_url=url, transport=transport, headers=headers) as client:
        token = csrf_in(client.get("/login").text)
        reply = client.post(
            "/login", data={"email": email, "password": password, "csrf_token": token}
        )
        return reply.status_code


def test_guesses_from_one_address_do_not_lock_the_person_out(server: LiveServer) -> None:
    attacker = "127.0.0.2"
    codes = [_attempt(server.url, RITA, f"guess {n}", attacker) for n in range(8)]
    assert codes == [401] * 5 + [429] * 3
    assert _attempt(server.url, RITA, PASSWORD, attacker) == 429  # the guesser learns nothing
    assert _attempt(server.url, RITA, PASSWORD, "127.0.0.1") == 303  # Rita signs in
    assert _attempt(server.url, "RITA@example.com ", "guess", "127.0.0.3") == 401  # elsewhere


def test_guesses_spread_over_addresses_meet_the_emails_own_limit(server: LiveServer) -> None:
    """An email's own allowance holds back guesses from many addresses, but not the person
    from an address they signed in from before."""

    class Tight(SignInThrottle):
        PER_EMAIL = (6.0, 600.0)

    server.app.state.sign_in_throttle = Tight()
    assert _attempt(server.url, RITA, PASSWORD, "127.0.0.1") == 303
    codes = [
        _attempt(server.url, RITA, "guess", f"127.0.0.{10 + n // 3}") for n in range(9)
    ]  # three guesses from each of three addresses
    assert codes == [401] * 6 + [429] * 3
    assert _attempt(server.url, RITA, PASSWORD, "127.0.0.20") == 429  # a new address waits
    assert _attempt(server.url, RITA, PASSWORD, "127.0.0.1") == 303  # Rita's own does not


def test_a_flood_of_junk_failures_does_not_reset_an_attackers_throttle(
    lh: Leadheat, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The buckets are bounded; a flood of new ones forgets the idle ones, not the bucket
    of an attacker who keeps trying (it cleared them all, a fresh allowance for the
    attacker)."""
    monkeypatch.setattr(limits, "MAX_BUCKETS", 8)
    add_user(lh, RITA, "rep", PASSWORD)
    server = LiveServer(lh)
    try:
        attacker = "127.0.0.2"
        assert [_attempt(server.url, RITA, "guess", attacker) for _ in range(5)] == [401] * 5
        for n in range(12):  # junk from elsewhere, a new email each time
            assert _attempt(server.url, f"junk{n}@example.com", "x", f"127.0.1.{n // 4}") == 401
            assert _attempt(server.url, RITA, "guess", attacker) == 429, n
    finally:
        server.stop()


@pytest.mark.slow
def test_forwarded_headers_are_believed_only_from_configured_proxies(tmp_path: Path) -> None:
    """``leadheat serve`` ignores ``X-Forwarded-For`` unless LEADHEAT_TRUSTED_PROXIES names
    the client (uvicorn believed it from any loopback client): a guesser cannot take a new
    address for every guess."""
    db_url = f"sqlite:///{tmp_path / 'leadheat.db'}"
    lh = Leadheat(db_url)
    lh.init()
    add_user(lh, RITA, "rep", PASSWORD)
    lh.close()

    def codes(url: str, email: str, password: str, forwarded: list[str]) -> list[int]:
        return [
            _attempt(url, email, password, **{"X-Forwarded-For": address}) for address in forwarded
        ]

    port = free_port()
    direct = serve(db_url, port, tmp_path / "direct.log")
    try:
        url = f"http://127.0.0.1:{port}"
        spray = [  # a new email and a made-up address each time
            _attempt(url, f"guess{n}@example.com", "guess", **{"X-Forwarded-For": f"203.0.113.{n}"})
            for n in range(30)
        ]
        # the connection's address's allowance: twenty, then one every 6 s (some came back)
        assert spray[:20] == [401] * 20 and 429 in spray, spray
    finally:
        direct.terminate()
        direct.wait(10)
    port = free_port()
    proxied = serve(db_url, port, tmp_path / "proxied.log", LEADHEAT_TRUSTED_PROXIES="127.0.0.1")
    try:
        url = f"http://127.0.0.1:{port}"
        guesser = ["198.51.100.7"] * 6
        assert codes(url, RITA, "guess", guesser) == [401] * 5 + [429]
        assert codes(url, RITA, PASSWORD, ["198.51.100.99"]) == [303]  # Rita, behind the proxy
    finally:
        proxied.terminate()
        proxied.wait(10)
