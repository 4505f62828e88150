"""A client that trickles its request body (a byte every so often) is cut off once the body
is ``LEADHEAT_BODY_TIMEOUT`` seconds late: 408 and the connection closed, over a raw socket
against a real server. Neither uvicorn's keep-alive timeout nor a per-read timeout catches it."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from conftest import LiveServer
from leadheat.service import Leadheat

TIMEOUT = 1.5


@pytest.fixture
def impatient_server(tmp_path: Path) -> Iterator[LiveServer]:
    lh = Leadheat(f"sqlite:///{tmp_path / 'slow.db'}")
    lh.init()
    server = LiveServer(lh, body_timeout=TIMEOUT)
    yield server
    server.stop()
    lh.close()


def _trickle(server: LiveServer, request_head: str, length: int) -> tuple[bytes, float]:
    """Send the head at once, then the body a byte every 0.4 s; what came back (until the
    server closed the connection, or 8 s passed) and after how many seconds."""
    started = time.monotonic()
    answer = b""
    with socket.create_connection(("127.0.0.1", server.port)) as connection:
        connection.sendall(request_head.encode() + f"Content-Length: {length}\r\n\r\n".encode())
        connection.settimeout(0.4)
        sent = 0
        while time.monotonic() - started < 8:
            try:
                chunk = connection.recv(65536)
            except TimeoutError:
                if sent < length - 1:  # never the last byte: the body stays incomplete
                    try:
                        connection.sendall(b"{" if sent == 0 else b" ")
                    except OSError:
                        break
                    sent += 1
                continue
            except OSError:
                break
            if not chunk:
                break  # closed by the server
            answer += chunk
    return answer, time.monotonic() - started


@pytest.mark.parametrize(
    "head",
    [
        "POST /api/v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {admin}\r\n"
        "Content-Type: application/json\r\n",
        "POST /v1/batch HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n",
        "POST /login HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n",
    ],
    ids=["rest", "collection", "sign-in"],
)
def test_a_trickled_body_is_cut_off_after_the_timeout(
    impatient_server: LiveServer, head: str
) -> None:
    answer, took = _trickle(impatient_server, head.format(admin=impatient_server.admin_key), 100)
    assert answer.startswith(b"HTTP/1.1 408"), (answer[:200], took)
    assert b"did not arrive within 1.5 s" in answer
    assert TIMEOUT <= took < TIMEOUT + 3  # and the connection was closed, not left open
    # the server goes on serving others
    bearer = {"Authorization": f"Bearer {impatient_server.admin_key}"}
    assert httpx.get(f"{impatient_server.url}/api/v1/hot", headers=bearer).status_code == 200


def test_a_body_that_arrives_in_time_is_taken(impatient_server: LiveServer) -> None:
    body = b'{"lead": "ana@example.com", "type": "page_view"}'
    with socket.create_connection(("127.0.0.1", impatient_server.port)) as connection:
        connection.sendall(
            b"POST /api/v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + f"Authorization: Bearer {impatient_server.admin_key}\r\n".encode()
            + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
        )
        for part in (body[:20], body[20:]):
            time.sleep(0.5)  # slow, but the whole body is there within the limit
            connection.sendall(part)
        connection.settimeout(5)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 200"), answer[:300]
