"""Dashboard access over real HTTP: sign-in, sessions that expire, CSRF, roles, headers."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from conftest import DEMO_MAKES_HOT, Cli, Clock, LiveServer
from leadheat.service import Leadheat
from leadheat.store.models import Touch, User, WebSession
from leadheat.store.nurture import list_enrollments
from leadheat.web.auth import SESSION_COOKIE, add_user
from leadheat.web.passwords import PasswordError
from leadheat.web.signin import SignInThrottle

PASSWORD = "correct horse battery"
TTL = 600.0


@pytest.fixture
def server(lh: Leadheat) -> Iterator[LiveServer]:
    """A live server over ``lh`` (whose clock the test moves), with a rep and a manager."""
    lh.apply_playbook(DEMO_MAKES_HOT)
    add_user(lh, "rita@example.com", "rep", PASSWORD)
    add_user(lh, "max@example.com", "manager", PASSWORD)
    running = LiveServer(lh, session_ttl=TTL)
    yield running
    running.stop()


def csrf_in(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no CSRF field on the page"
    return found.group(1)


@pytest.fixture
def client(server: LiveServer) -> Iterator[httpx.Client]:
    """An HTTP client of the live server, signed in as nobody."""
    with httpx.Client(base_url=server.url) as anonymous:
        yield anonymous


SignIn = Callable[[str], httpx.Client]


@pytest.fixture
def sign_in(server: LiveServer) -> Iterator[SignIn]:
    """Signs a person in through the form; returns their HTTP client (with the cookie)."""
    made: list[httpx.Client] = []

    def signed_in(email: str) -> httpx.Client:
        client = httpx.Client(base_url=server.url)
        made.append(client)
        token = csrf_in(client.get("/login").text)
        reply = client.post(
            "/login", data={"email": email, "password": PASSWORD, "csrf_token": token}
        )
        assert reply.status_code == 303, reply.text
        return client

    yield signed_in
    for client in made:
        client.close()


def test_pages_need_a_session(server: LiveServer) -> None:
    pages = ("/", "/hot/rows", "/lists", "/lists.csv", "/playbook", "/leads/1", "/tasks")
    pages += ("/accounts/acme.com",)
    for path in (*pages, "/recovery", "/winback", "/analytics", "/accounts", "/accounts/rows"):
        reply = httpx.get(server.url + path)
        assert reply.status_code == 303, path
        assert reply.headers["location"].startswith("/login?next=")
    reply = httpx.get(server.url + "/hot/rows", headers={"HX-Request": "true"})
    assert reply.status_code == 401 and reply.headers["hx-redirect"].startswith("/login")


def test_sign_in_and_out(server: LiveServer, lh: Leadheat, sign_in: SignIn) -> None:
    client = sign_in("RITA@example.com")
    cookie = client.cookies[SESSION_COOKIE]
    page = client.get("/")
    assert page.status_code == 200 and "rita@example.com (rep)" in page.text
    with lh.engine.connect() as connection:
        stored = connection.execute(select(WebSession.token_sha256)).scalars().all()
        hashes = connection.execute(select(User.password_hash)).scalars().all()
    assert stored and cookie not in stored  # only a hash of the token is kept
    assert all(h.startswith("scrypt$") and PASSWORD not in h for h in hashes)
    assert client.post("/logout", data={"csrf_token": csrf_in(page.text)}).status_code == 303
    with lh.engine.connect() as connection:
        assert connection.execute(select(WebSession)).first() is None
    reused = httpx.get(server.url + "/", cookies={SESSION_COOKIE: cookie})
    assert reused.status_code == 303


def test_a_wrong_password_or_unknown_email_is_refused_alike(client: httpx.Client) -> None:
    answers = []
    for email, password in (("rita@example.com", "wrong password"), ("nobody@x.com", PASSWORD)):
        token = csrf_in(client.get("/login").text)
        reply = client.post(
            "/login", data={"email": email, "password": password, "csrf_token": token}
        )
        assert reply.status_code == 401 and SESSION_COOKIE not in reply.cookies
        answers.append(re.search(r'role="alert">([^<]+)<', reply.text).group(1))  # type: ignore[union-attr]
    assert answers[0] == answers[1] == "the email or password is wrong"


def test_failed_sign_ins_are_throttled_per_email_and_address(
    server: LiveServer, client: httpx.Client
) -> None:
    """Five wrong passwords for one email, then even the right one is refused (a guesser
    learns nothing) until a minute has given back one try; another email is not held up
    until the address's own allowance (twenty failures) is spent."""
    now = [0.0]
    server.app.state.sign_in_throttle = SignInThrottle(clock=lambda: now[0])

    def attempt(email: str, password: str) -> httpx.Response:
        token = csrf_in(client.get("/login").text)
        return client.post(
            "/login", data={"email": email, "password": password, "csrf_token": token}
        )

    assert all(attempt("rita@example.com", "wrong").status_code == 401 for _ in range(5))
    held = attempt("Rita@Example.com ", PASSWORD)  # the same person however it is typed
    assert held.status_code == 429 and SESSION_COOKIE not in held.cookies
    assert held.headers["retry-after"] == "60" and "try again in 60 s" in held.text
    assert attempt("max@example.com", PASSWORD).status_code == 303  # someone else may
    now[0] += 30
    assert attempt("rita@example.com", PASSWORD).headers["retry-after"] == "30"
    now[0] += 30
    assert attempt("rita@example.com", PASSWORD).status_code == 303
    for n in range(20):  # the address's allowance, whole again after the minute
        assert attempt(f"guess{n}@example.com", "wrong").status_code == 401
    assert attempt("max@example.com", PASSWORD).status_code == 429
    now[0] += 6
    assert attempt("max@example.com", PASSWORD).status_code == 303


def test_sessions_expire(server: LiveServer, clock: Clock, sign_in: SignIn) -> None:
    client = sign_in("rita@example.com")
    assert client.get("/").status_code == 200
    clock.now += timedelta(seconds=TTL - 1)
    assert client.get("/").status_code == 200
    clock.now += timedelta(seconds=2)
    reply = client.get("/lists")
    assert reply.status_code == 303 and reply.headers["location"] == "/login?next=%2Flists"


def test_state_changing_forms_need_the_csrf_token(
    server: LiveServer, lh: Leadheat, sign_in: SignIn
) -> None:
    lh.track("ana@example.com", "page_view")
    client = sign_in("rita@example.com")
    token = csrf_in(client.get("/").text)
    lead = lh.lead_id("ana@example.com")
    for data, headers in (
        ({"kind": "call"}, {}),
        ({"kind": "call", "csrf_token": "forged"}, {}),
        ({"kind": "call", "csrf_token": token}, {"Origin": "https://evil.example"}),
    ):
        reply = client.post(f"/leads/{lead}/touch", data=data, headers=headers)
        assert reply.status_code == 403, data
        assert "CSRF" in reply.text
    for path in (f"/leads/{lead}/outcome", f"/leads/{lead}/evidence", "/playbook", "/logout"):
        assert client.post(path, data={"outcome": "won"}).status_code == 403, path
    with lh.engine.connect() as connection:
        assert connection.execute(select(Touch)).first() is None
    ok = client.post(f"/leads/{lead}/touch", data={"kind": "call", "csrf_token": token})
    assert ok.status_code == 303
    # the sign-in form has its own token (a double-submit cookie): a forged post is refused
    forged = httpx.post(
        server.url + "/login",
        data={"email": "rita@example.com", "password": PASSWORD, "csrf_token": "x"},
    )
    assert forged.status_code == 403


def test_a_browser_gets_refusals_as_a_page_and_machines_as_json(
    server: LiveServer, lh: Leadheat, sign_in: SignIn
) -> None:
    """A stale form or an unknown address, asked for by a browser (``Accept: text/html``),
    is a styled page with the same message; the API, htmx and plain clients keep JSON."""
    lh.track("ana@example.com", "page_view")
    client = sign_in("rita@example.com")
    lead = lh.lead_id("ana@example.com")
    browser = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
    stale = client.post(f"/leads/{lead}/touch", data={"kind": "call"}, headers=browser)
    assert stale.status_code == 403 and stale.headers["content-type"].startswith("text/html")
    assert 'role="alert">' in stale.text and "CSRF" in stale.text
    assert "default-src 'none'" in stale.headers["content-security-policy"]
    lost = client.get("/no-such-page", headers=browser)
    assert lost.status_code == 404 and "<h1>That did not work</h1>" in lost.text
    for path, headers in (
        (f"/leads/{lead}/touch", {}),  # no Accept of HTML: a script
        (f"/leads/{lead}/touch", {**browser, "HX-Request": "true"}),  # htmx
    ):
        refused = client.post(path, data={"kind": "call"}, headers=headers)
        assert refused.status_code == 403 and "CSRF" in refused.json()["error"], headers
    api = client.get("/api/v1/no-such-route", headers=browser)
    assert api.status_code == 404 and api.json()["error"] == "Not Found"
    signed_out = httpx.get(server.url + "/lists", headers=browser)
    assert signed_out.status_code == 303  # still off to the sign-in page, not an error page


def test_only_managers_apply_a_playbook(server: LiveServer, lh: Leadheat, sign_in: SignIn) -> None:
    before, _ = lh.playbook()
    edited = DEMO_MAKES_HOT.replace("points = 25", "points = 30")
    rep = sign_in("rita@example.com")
    page = rep.get("/playbook")
    assert page.status_code == 200 and "Only managers may apply" in page.text
    assert "points = 25" in page.text  # everyone reads the current playbook
    refused = rep.post(
        "/playbook", data={"csrf_token": csrf_in(page.text), "source": edited, "action": "apply"}
    )
    assert refused.status_code == 403
    backtest = rep.post(
        "/playbook", data={"csrf_token": csrf_in(page.text), "source": edited, "action": "backtest"}
    )
    assert backtest.status_code == 403
    lh._book = None  # the server's writes go through the same object; read afresh
    assert lh.playbook()[0] == before
    manager = sign_in("max@example.com")
    token = csrf_in(manager.get("/playbook").text)
    broken = manager.post(
        "/playbook",
        data={"csrf_token": token, "source": "[temperature]\nhot_heat = -1", "action": "apply"},
    )
    assert broken.status_code == 422 and "hot_heat" in broken.text
    tried = manager.post(
        "/playbook", data={"csrf_token": token, "source": edited, "action": "backtest"}
    )
    assert tried.status_code == 200 and "Backtest: edited against current" in tried.text
    assert lh.playbook()[0] == before  # a backtest applies nothing
    applied = manager.post(
        "/playbook", data={"csrf_token": token, "source": edited, "action": "apply"}
    )
    assert applied.status_code == 303
    assert lh.playbook()[0] == before + 1


def test_dashboard_security_headers(client: httpx.Client) -> None:
    login = client.get("/login")
    assert "script-src 'self'" in login.headers["content-security-policy"]
    assert login.headers.get_list("content-security-policy") == [
        login.headers["content-security-policy"]
    ]
    assert login.headers["x-frame-options"] == "DENY"
    assert login.headers["x-content-type-options"] == "nosniff"
    assert login.headers["cache-control"] == "no-store"
    reply = client.post(
        "/login",
        data={"email": "rita@example.com", "password": PASSWORD, "csrf_token": csrf_in(login.text)},
    )
    cookie = reply.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and f"max-age={int(TTL)}" in cookie
    script = client.get("/static/htmx.min.js")
    assert script.status_code == 200 and script.headers["content-type"].startswith(
        "text/javascript"
    )
    assert client.get("/static/../settings.py").status_code == 404
    assert (
        client.get("/api/v1/leads")
        .headers["content-security-policy"]
        .startswith("default-src 'none'")
    )


def test_users_add(
    db_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    cli = Cli(db_url, capsys)
    assert cli("init")[0] == 0
    monkeypatch.setenv("LEADHEAT_PASSWORD", PASSWORD)
    assert cli("users", "add", "Max@Example.com", "--role", "manager") == (
        0,
        "added manager max@example.com\n",
        "",
    )
    assert (
        cli("users", "add", "max@example.com", "--role", "rep")[1]
        == "updated rep max@example.com\n"
    )
    code, _, err = cli("users", "add", "x@example.com", "--role", "boss")
    assert code == 1 and "--role 'boss' must be one of rep, manager" in err
    monkeypatch.setenv("LEADHEAT_PASSWORD", "short")
    code, _, err = cli("users", "add", "x@example.com")
    assert code == 1 and "at least 8 characters" in err
    assert cli("users", "list")[1] == "max@example.com\trep\n"
    added = cli.json("audit", "--action", "user.add")
    assert [(e["actor"], e["subject"], e["detail"]) for e in added] == [
        ("cli", "max@example.com", {"role": "rep", "created": False}),
        ("cli", "max@example.com", {"role": "manager", "created": True}),
    ]
    assert PASSWORD not in json.dumps(added)


def test_passwords_are_checked(lh: Leadheat) -> None:
    with pytest.raises(PasswordError):
        add_user(lh, "a@example.com", "rep", "1234567")
    with pytest.raises(ValueError, match="not an email"):
        add_user(lh, "nobody", "rep", PASSWORD)


def test_a_rep_enrols_a_lead_in_a_sequence(
    server: LiveServer, lh: Leadheat, sign_in: SignIn
) -> None:
    lh.apply_playbook(
        DEMO_MAKES_HOT
        + '[sequences.nudge]\n[[sequences.nudge.steps]]\nsubject = "Hi"\nbody = "Hello"\n'
    )
    lh.track("ana@example.com", "page_view")
    lead = lh.lead_id("ana@example.com")
    rep = sign_in("rita@example.com")
    page = rep.get(f"/leads/{lead}")
    assert "<option>nudge</option>" in page.text
    token = csrf_in(page.text)
    unknown = rep.post(f"/leads/{lead}/sequence", data={"csrf_token": token, "sequence": "nope"})
    assert unknown.status_code == 400 and "no sequence &#39;nope&#39;" in unknown.text
    done = rep.post(f"/leads/{lead}/sequence", data={"csrf_token": token, "sequence": "nudge"})
    assert done.status_code == 303 and done.headers["location"].endswith("done=enrolment")
    with lh.engine.connect() as connection:
        (enrolment,) = list_enrollments(connection, lead_id=lead)
    assert enrolment.sequence == "nudge"
    shown = rep.get(f"/leads/{lead}").text  # the timeline has it
    assert "nudge: enrolled by web:rita@example.com, active" in shown


def test_passwords_and_session_cookies_are_never_logged(db_url: str, tmp_path: Path) -> None:
    """A real ``leadheat serve`` process with its access log: sign in (right and wrong
    password), use the session, sign out; neither secret appears in what it printed."""
    from conftest import free_port, serve

    lh = Leadheat(db_url)
    lh.init()
    add_user(lh, "rita@example.com", "rep", PASSWORD)
    lh.close()
    port = free_port()
    log = tmp_path / "server.log"
    server = serve(db_url, port, log)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
            token = csrf_in(client.get("/login").text)
            wrong = client.post(
                "/login",
                data={
                    "email": "rita@example.com",
                    "password": "not " + PASSWORD,
                    "csrf_token": token,
                },
            )
            assert wrong.status_code in (400, 401, 403)
            token = csrf_in(client.get("/login").text)
            reply = client.post(
                "/login",
                data={"email": "rita@example.com", "password": PASSWORD, "csrf_token": token},
            )
            assert reply.status_code == 303
            cookies = [value for value in client.cookies.values() if len(value) > 20]
            assert cookies and client.get("/").status_code == 200
    finally:
        server.terminate()
        server.wait(10)
    printed = log.read_text()
    assert "POST /login" in printed  # the access log was written
    assert PASSWORD not in printed
    assert not any(cookie in printed for cookie in cookies)
