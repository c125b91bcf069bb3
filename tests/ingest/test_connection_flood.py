"""A flood of idle connections against a real server under a low file descriptor limit: the
exporters keep being served and the log stays quiet (there were 1,100 stalled connections,
every exporter locked out and 148 MB of accept() tracebacks in 30 s)."""

from __future__ import annotations

import json
import resource
import socket
import time

import grpc
import httpx
import pytest

from tests.factories import decision_attributes, otlp_json_logs
from tests.servers import start_server

pytestmark = pytest.mark.e2e
DESCRIPTORS = 512
LOGS_EXPORT = "/opentelemetry.proto.collector.logs.v1.LogsService/Export"
_RECONNECT_SOON = [
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 100),
]


def _low_descriptor_limit() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (DESCRIPTORS, DESCRIPTORS))


def test_an_idle_flood_does_not_lock_exporters_out(tmp_path, monkeypatch):
    import tests.servers as servers

    real_popen = servers.subprocess.Popen

    def popen(*args, **kwargs):
        return real_popen(*args, preexec_fn=_low_descriptor_limit, **kwargs)

    monkeypatch.setattr(servers.subprocess, "Popen", popen)
    server = start_server(tmp_path / "f.duckdb", "--grpc-port", "0",
                          env={"FLAGLENS_HEADER_TIMEOUT": "3"})  # fmt: skip
    monkeypatch.undo()
    host, port = server.http_url.rsplit("//", 1)[1].rsplit(":", 1)
    grpc_host, grpc_port = server.grpc_target.rsplit(":", 1)
    flood: list[socket.socket] = []
    try:
        for _ in range(DESCRIPTORS + 200):  # more than the server has descriptors
            flood.append(socket.create_connection((host, int(port)), timeout=5))
        for _ in range(300):
            flood.append(socket.create_connection((grpc_host, int(grpc_port)), timeout=5))
        body = json.dumps(otlp_json_logs([decision_attributes()])).encode()
        started = time.monotonic()
        answers = [
            httpx.post(f"{server.http_url}/v1/logs", content=body, timeout=10,
                       headers={"content-type": "application/json"}).status_code
            for _ in range(20)
        ]  # fmt: skip
        assert answers == [200] * 20
        assert time.monotonic() - started < 20
        health = httpx.get(f"{server.http_url}/healthz").json()
        assert health["connections"]["http"]["evicted_idle"] >= 200
        assert health["connections"]["http"]["open"] <= DESCRIPTORS
        # the gRPC flood's connections are closed after the handshake timeout; then gRPC serves
        # (the channel tries to connect again every 100 ms until then, not on gRPC's backoff of
        # 1 s growing by 1.6 each time)
        with grpc.insecure_channel(server.grpc_target, options=_RECONNECT_SOON) as channel:
            channel.unary_unary(LOGS_EXPORT)(b"", timeout=20, wait_for_ready=True)
    finally:
        for sock in flood:
            sock.close()
        server.stop()
    output = "\n".join(server.output)
    assert "Traceback" not in output
    assert "Too many open files" not in output
    assert len(server.output) < 40, output[-4000:]
