"""The read listener (dashboards and read API) has the OTLP/HTTP listener's connection limits,
over raw sockets: a silent connection is closed, an endless header refused with 431, and a
flood of idle connections cannot lock readers out."""

from __future__ import annotations

import socket
import time

import httpx
import pytest

from analytics.session import AnalyticsConfig, Session
from flaglens.read_listener import start_read_listener
from flaglens.server import bind_socket, url_of
from flaglens.settings import ServeSettings
from ingest.connections import ConnectionLimits
from store.connection import Store

LIMITS = ConnectionLimits(header_timeout=0.5, body_timeout=0.8, max_header_bytes=8192,
                          max_headers=50, max_connections=12)  # fmt: skip


@pytest.fixture(scope="module")
def listener(tmp_path_factory):
    db = tmp_path_factory.mktemp("read-limits") / "f.duckdb"
    store = Store.open(db)
    session = Session(store.cursor, AnalyticsConfig(db=db, warn=lambda _message: None))
    sock = bind_socket("127.0.0.1", 0)
    reading = start_read_listener(
        sock, url_of(sock), session, ServeSettings(db=db), None, dashboards=None,
        alert_rules=None, connections=LIMITS,
    )  # fmt: skip
    yield reading
    reading.stop()
    sock.close()
    store.close()


def _connect(listener) -> socket.socket:
    return socket.create_connection(listener.sock.getsockname()[:2], timeout=5)


def _answer(sock: socket.socket) -> bytes:
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except ConnectionResetError:
        pass
    return data


def test_a_silent_reader_connection_is_closed(listener):
    with _connect(listener) as sock:
        started = time.monotonic()
        assert _answer(sock) == b""
        assert 0.4 < time.monotonic() - started < 4


def test_an_endless_header_is_refused(listener):
    before = listener.connections.headers_too_large
    with _connect(listener) as sock:
        sock.sendall(b"GET /api/v1/analyses HTTP/1.1\r\nHost: x\r\nX-Endless: ")
        try:
            for _ in range(16):
                sock.sendall(b"v" * 4096)
        except OSError:
            pass
        answer = _answer(sock)
    assert answer.startswith(b"HTTP/1.1 431 ") or answer == b""
    assert listener.connections.headers_too_large == before + 1


def test_a_flood_of_idle_connections_does_not_lock_readers_out(listener):
    flood = [_connect(listener) for _ in range(40)]
    try:
        time.sleep(0.1)
        answers = [
            httpx.get(f"{listener.url}/api/v1/analyses", timeout=10).status_code for _ in range(5)
        ]
    finally:
        for sock in flood:
            sock.close()
    assert answers == [200] * 5
    assert listener.connections.evicted_idle > 0
