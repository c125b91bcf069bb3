"""Connection limits of the OTLP/HTTP (and gRPC) listener, over raw sockets: silent and slow
clients are timed out, oversized heads refused with 431, and a flood of idle connections
cannot lock exporters out."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import time

import httpx
import pytest

from ingest.connections import connection_budget, limit_accept_errors
from tests.factories import decision_attributes, otlp_json_logs
from tests.ingest.live import live_receivers

FAST = {"header_timeout": 0.5, "body_timeout": 0.8}


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    db = tmp_path_factory.mktemp("connections") / "f.duckdb"
    with live_receivers(db, max_connections=24, max_headers=50, max_header_bytes=8192,
                        **FAST) as receivers:  # fmt: skip
        yield receivers


def _connect(live) -> socket.socket:
    sock = socket.create_connection(live.http_address, timeout=5)
    return sock


def _answer(sock: socket.socket, timeout: float = 5) -> bytes:
    """Everything the server sends until it closes the connection."""
    sock.settimeout(timeout)
    data = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk


def _export(live) -> httpx.Response:
    body = json.dumps(otlp_json_logs([decision_attributes()])).encode()
    return httpx.post(f"{live.http_url}/v1/logs", content=body, timeout=10,
                      headers={"content-type": "application/json"})  # fmt: skip


def test_a_silent_connection_is_closed(live):
    """A connection that never sends a byte is closed after the header timeout."""
    with _connect(live) as sock:
        started = time.monotonic()
        assert _answer(sock) == b""
        assert 0.4 < time.monotonic() - started < 3


def test_unfinished_headers_are_answered_408(live):
    """Headers still incomplete at the header timeout: 408 and close."""
    with _connect(live) as sock:
        sock.sendall(b"POST /v1/logs HTTP/1.1\r\nHost: x\r\nContent-Type: appl")
        answer = _answer(sock)
    assert answer.startswith(b"HTTP/1.1 408 ")


def test_a_slow_body_is_answered_408(live):
    """A body that does not arrive within the body timeout: 408 and close."""
    with _connect(live) as sock:
        sock.sendall(b"POST /v1/logs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 1000\r\n\r\n{\"resourceLogs\": [")  # fmt: skip
        started = time.monotonic()
        answer = _answer(sock)
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert b"body not received within 0.8 s" in answer
    assert time.monotonic() - started < 3


def test_a_body_trickled_a_byte_at_a_time_is_cut_off(live):
    """The body timeout bounds the whole body, not the gap between bytes."""
    with _connect(live) as sock:
        sock.sendall(b"POST /v1/logs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 100\r\n\r\n")  # fmt: skip
        deadline = time.monotonic() + 3
        closed = False
        while time.monotonic() < deadline and not closed:
            try:
                sock.sendall(b" ")
            except OSError:
                closed = True
            time.sleep(0.1)
        answer = _answer(sock) if not closed else b"HTTP/1.1 408 (closed)"
    assert answer.startswith(b"HTTP/1.1 408 ")


@pytest.mark.parametrize(
    ("head", "problem"),
    [
        (b"".join(b"X-H%d: v\r\n" % i for i in range(60)), b"more than 50 header fields"),
        (b"X-Big: " + b"v" * 9000 + b"\r\n", b"over 8192 bytes"),
    ],
    ids=["too many headers", "header too large"],
)
def test_a_head_over_a_limit_is_answered_431(live, head, problem):
    """Too many header fields, or too many bytes of them: 431 and close."""
    with _connect(live) as sock:
        sock.sendall(b"POST /v1/logs HTTP/1.1\r\nHost: x\r\n" + head + b"\r\n")
        answer = _answer(sock)
    assert answer.startswith(b"HTTP/1.1 431 ")
    assert problem in answer


def test_an_endless_header_is_refused_before_it_is_held(live):
    """A header line that never ends is refused once it passes the limit (431 and close), not
    held until it ends or times out."""
    before = live.service.connection_stats()["http"]
    with _connect(live) as sock:
        sock.sendall(b"POST /v1/logs HTTP/1.1\r\nHost: x\r\nX-Endless: ")
        try:
            for _ in range(16):  # 64 KiB, eight times the limit: the kernel's buffers take it
                sock.sendall(b"v" * 4096)
        except OSError:
            pass  # refused while sending
        try:
            answer = _answer(sock)
        except ConnectionResetError:  # closed with the rest unread: the answer may be lost
            answer = b""
    after = live.service.connection_stats()["http"]
    assert answer.startswith(b"HTTP/1.1 431 ") or answer == b""
    assert after["headers_too_large"] == before["headers_too_large"] + 1
    assert after["header_timeouts"] == before["header_timeouts"]


def test_a_flood_of_idle_connections_does_not_lock_exporters_out(live):
    """Past the cap, a new connection replaces the longest-idle one: exporters are served."""
    flood = [_connect(live) for _ in range(60)]
    try:
        time.sleep(0.1)
        answers = [_export(live).status_code for _ in range(5)]
        stats = live.service.connection_stats()["http"]
    finally:
        for sock in flood:
            sock.close()
    assert answers == [200] * 5
    assert stats["evicted_idle"] >= 60 - 24
    assert stats["open"] <= 24


def test_grpc_connections_that_never_handshake_are_closed(live):
    """The gRPC listener closes a connection that does not complete its HTTP/2 handshake
    within the header timeout."""
    host, port = live.grpc_target.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        started = time.monotonic()
        sock.settimeout(10)
        try:
            while sock.recv(4096):
                pass
        except ConnectionResetError:
            pass
        assert time.monotonic() - started < 5


def test_the_cap_fits_the_descriptor_limit():
    """The per-listener cap leaves descriptors for the rest of the server."""
    assert connection_budget(10_000, 3, descriptors=1024) == (1024 - 256 - 128) // 3
    assert connection_budget(100, 3, descriptors=1024) == 100
    assert connection_budget(10_000, 1, descriptors=300) == 300 - 75 - 128


def test_failing_accepts_are_logged_once_per_interval(caplog):
    """asyncio reports a failing accept() every second; the log says so once per interval."""

    async def fail_accepts() -> None:
        loop = asyncio.get_running_loop()
        limit_accept_errors(loop, interval=60)
        for _ in range(50):
            loop.call_exception_handler({
                "message": "socket.accept() out of system resource",
                "exception": OSError(24, "Too many open files"),
            })  # fmt: skip

    with caplog.at_level(logging.ERROR):
        asyncio.run(fail_accepts())
    lines = [r for r in caplog.records if "accept" in r.getMessage()]
    assert len(lines) == 1
    assert "Too many open files" in lines[0].getMessage()
    assert lines[0].exc_info is None
