"""A real ``leadheat serve`` process with its access log on: API keys never reach the log,
wherever a client puts them (query string, ``Authorization``, body), known or not."""

from __future__ import annotations

import base64
from pathlib import Path

import httpx
import pytest

from conftest import free_port, serve
from leadheat.service import Leadheat


@pytest.mark.slow
def test_keys_never_reach_the_servers_log(db_url: str, tmp_path: Path) -> None:
    lh = Leadheat(db_url)
    lh.init()
    ingest, _ = lh.create_key("website", ["ingest"])
    admin, _ = lh.create_key("crm", ["admin"])
    lh.close()
    unknown = "lh_0badc0de_" + "x" * 32
    port = free_port()
    log = tmp_path / "server.log"
    server = serve(db_url, port, log)
    url = f"http://127.0.0.1:{port}"
    event = {"userId": "u1", "event": "Signed Up"}
    try:
        with httpx.Client(base_url=url) as client:
            for key in (ingest, unknown):
                client.post(f"/v1/track?writeKey={key}", json=event)
                client.post(f"/beacon/v1/batch?writeKey={key}&x=1", json={"batch": [event]})
                client.post("/v1/track", json={**event, "writeKey": key})
                basic = base64.b64encode(f"{key}:".encode()).decode()
                client.post("/v1/track", json=event, headers={"Authorization": f"Basic {basic}"})
            for key in (admin, unknown):
                client.get(f"/api/v1/hot?api_key={key}")
                client.get("/api/v1/hot", headers={"Authorization": f"Bearer {key}"})
            assert client.get(
                "/api/v1/hot", headers={"Authorization": f"Bearer {admin}"}
            ).is_success
    finally:
        server.terminate()
        server.wait(10)
    printed = log.read_text()
    assert "POST /v1/track?writeKey=" in printed  # the access log was written, query and all
    for key in (ingest, admin, unknown):
        secret = key.split("_", 2)[2]  # lh_<id>_<secret>: a secret may hold "_" itself
        assert key not in printed and secret not in printed, printed
