"""Public (publishable) keys and key verification that made-up keys cannot exploit: created
and listed by the CLI, refused by shape before any lookup, remembered by hash in a bounded
cache, and a failed key costs its sender's address a token."""

from __future__ import annotations

import base64
import gc
import os
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import event

from conftest import Cli, LiveServer
from leadheat.service import Leadheat, LeadheatError

MiB = 1024 * 1024


@pytest.fixture
def cli(lh: Leadheat, capsys: pytest.CaptureFixture[str]) -> Cli:
    return Cli(lh.url, capsys)


def test_the_cli_creates_and_lists_public_keys(cli: Cli, lh: Leadheat) -> None:
    created = cli.json(
        "keys",
        "create",
        "website",
        "--scope",
        "ingest",
        "--public",
        "--origin",
        "https://www.acme.com",
        "--origin",
        "HTTPS://Acme.com:443/",
    )
    assert isinstance(created, dict)
    assert created["public"] is True
    assert created["origins"] == ["https://www.acme.com", "https://acme.com"]
    info = lh.verify_key(created["key"])
    assert info is not None and info.public
    assert info.origins == ("https://www.acme.com", "https://acme.com")

    code, _, err = cli("keys", "create", "crm", "--scope", "ingest")
    assert code == 0 and "public" not in err
    listed = cli.json("keys", "list")
    assert isinstance(listed, list)
    assert [(k["name"], k["public"], k["origins"]) for k in listed] == [
        ("website", True, ["https://www.acme.com", "https://acme.com"]),
        ("crm", False, []),
    ]
    code, table, _ = cli("keys", "list")
    assert code == 0
    website = next(line for line in table.splitlines() if "website" in line)
    crm = next(line for line in table.splitlines() if "crm" in line)
    assert "public" in website and "https://www" in website
    assert "secret" in crm


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--public", "--origin", "https://www.acme.com/pricing"], "--origin"),
        (["--public", "--origin", "ftp://www.acme.com"], "--origin"),
        (["--public", "--origin", "www.acme.com"], "--origin"),
        (["--public", "--origin", "https://user@www.acme.com"], "--origin"),
        (["--origin", "https://www.acme.com"], "--origin"),
        (["--public", "--scope", "read"], "--public"),
    ],
)
def test_bad_public_key_options_are_usage_errors(
    cli: Cli, lh: Leadheat, args: list[str], named: str
) -> None:
    code, out, err = cli("keys", "create", "site", "--scope", "ingest", *args)
    assert code == 2, (out, err)
    assert named in err
    assert lh.keys() == []


def test_the_library_refuses_what_the_cli_refuses(lh: Leadheat) -> None:
    with pytest.raises(LeadheatError, match="ingest alone"):
        lh.create_key("site", ["ingest", "admin"], public=True)
    with pytest.raises(LeadheatError, match="not a web origin"):
        lh.create_key("site", ["ingest"], public=True, origins=["https://acme.com/x"])
    with pytest.raises(LeadheatError, match="for public keys"):
        lh.create_key("site", ["ingest"], origins=["https://acme.com"])
    assert lh.keys() == []


def test_made_up_keys_are_refused_before_any_lookup(lh: Leadheat) -> None:
    key, _ = lh.create_key("site", ["ingest"])
    queries: list[str] = []
    event.listen(lh.engine, "before_cursor_execute", lambda *args: queries.append(args[2]))
    for made_up in (
        "lh_" + "x" * 400_000,
        "lh_3f9a0c1d_" + "a" * 33,
        "lh_3F9A0C1D_" + "a" * 32,
        key[:-1] + "!",
        key + "a",
        "",
    ):
        assert lh.verify_key(made_up) is None
    assert queries == []
    assert lh.verify_key(key) is not None
    asked = len(queries)
    assert asked > 0
    assert lh.verify_key(key) is not None  # remembered
    assert len(queries) == asked


def _rss() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.fixture
def server(tmp_path) -> Iterator[LiveServer]:  # type: ignore[no-untyped-def]
    lh = Leadheat(f"sqlite:///{tmp_path / 'keys.db'}")
    lh.init()
    server = LiveServer(lh)
    yield server
    server.stop()
    lh.close()


def test_unknown_keys_do_not_grow_the_server(server: LiveServer) -> None:
    """300 requests, each with a made-up 400 KB write key: the server (a thread of this
    process) keeps none of them."""
    with httpx.Client() as client:
        client.post(f"{server.url}/v1/batch", json={"writeKey": "warm-up", "batch": []})
        gc.collect()
        before = _rss()
        for number in range(300):
            body = {"writeKey": f"lh_{number:08x}_" + "k" * 400_000, "batch": []}
            answer = client.post(f"{server.url}/v1/batch", json=body)
            assert answer.status_code in (401, 429)
        gc.collect()
        grown = _rss() - before
    assert grown < 50 * MiB, f"RSS grew {grown / MiB:.0f} MiB"


def test_a_failed_key_counts_against_its_senders_address(tmp_path) -> None:  # type: ignore[no-untyped-def]
    lh = Leadheat(f"sqlite:///{tmp_path / 'keys.db'}")
    lh.init()
    server = LiveServer(lh, rate_limit=1)  # bursts of 2
    try:
        basic = "Basic " + base64.b64encode(b"lh_00000000_" + b"x" * 32 + b":").decode()
        with httpx.Client() as client:
            codes = [
                client.post(
                    f"{server.url}/v1/track",
                    json={"userId": "u", "event": "e"},
                    headers={"Authorization": basic},
                ).status_code
                for _ in range(3)
            ]
            assert codes == [401, 401, 429]
            last = client.post(f"{server.url}/v1/track", json={"userId": "u", "event": "e"})
            assert last.json()["error"].startswith("too many requests for this address")
            # the REST API counts the same address: no key at all is a failed key too
            rest = client.get(f"{server.url}/api/v1/hot")
            assert rest.status_code == 429 and int(rest.headers["Retry-After"]) >= 1
    finally:
        server.stop()
        lh.close()
