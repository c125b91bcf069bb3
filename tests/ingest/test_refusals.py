"""Requests refused as a whole (401, 413, 415, 503) get their ``ingest_log`` row as every
request does; gRPC gzip exports are logged as sent; a client that leaves mid-body costs one
log line, not a traceback."""

from __future__ import annotations

import gzip
import json
import logging
import socket
import time

import grpc
import httpx
import pytest
from google.protobuf import json_format
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2

from ingest.auth import token_hash
from tests.factories import decision_attributes, otlp_json_logs
from tests.ingest.live import live_receivers

TOKEN = "refusals-token"
LOGS_EXPORT = "/opentelemetry.proto.collector.logs.v1.LogsService/Export"


def _body(count: int = 20) -> bytes:
    request = logs_service_pb2.ExportLogsServiceRequest()
    document = otlp_json_logs([decision_attributes() for _ in range(count)])
    json_format.ParseDict(json.loads(json.dumps(document)), request)
    return request.SerializeToString()


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    folder = tmp_path_factory.mktemp("refusals")
    tokens = folder / "tokens.toml"
    tokens.write_text(
        f'[[token]]\nname = "all"\nsha256 = "{token_hash(TOKEN)}"\nservices = ["*"]\n'
    )
    with live_receivers(folder / "f.duckdb", auth_file=tokens, max_body_bytes=1 << 16,
                        max_inflight_bytes=1 << 20) as receivers:  # fmt: skip
        yield receivers


def _post(live, body: bytes, **headers: str) -> httpx.Response:
    return httpx.post(f"{live.http_url}/v1/logs", content=body, timeout=10,
                      headers={"content-type": "application/x-protobuf", **headers})  # fmt: skip


def test_every_refused_request_has_its_ledger_row(live):
    """401, 413, 415 and 503 answers are each recorded with their status and reason."""
    auth = {"authorization": f"Bearer {TOKEN}"}
    assert _post(live, _body()).status_code == 401
    assert _post(live, bytes(1 << 17), **auth).status_code == 413
    assert _post(live, b"x", **auth, **{"content-type": "text/plain"}).status_code == 415
    held = live.service.inflight.admit(1 << 20)
    try:
        refused = _post(live, _body(), **auth)
    finally:
        held.release()
    assert refused.status_code == 503
    with grpc.insecure_channel(live.grpc_target) as channel, pytest.raises(grpc.RpcError):
        channel.unary_unary(LOGS_EXPORT)(_body(), timeout=10)  # no token
    rows = live.query(
        "select transport, status_code, error from ingest_log where status_code <> 200 "
        "order by request_id"
    )
    assert [(t, s) for t, s, _ in rows] == [
        ("http", 401), ("http", 413), ("http", 415), ("http", 503), ("grpc", 401)
    ]  # fmt: skip
    assert "no bearer token" in rows[0][2]
    assert "--max-inflight-bytes" in rows[3][2]


def test_grpc_gzip_exports_are_logged_as_sent(live):
    """A gzip gRPC export is recorded with its compression and its size as sent."""
    body = _body(200)
    with grpc.insecure_channel(live.grpc_target, compression=grpc.Compression.Gzip) as channel:
        channel.unary_unary(LOGS_EXPORT)(
            body, timeout=10, metadata=(("authorization", f"Bearer {TOKEN}"),)
        )
    ((compression, body_bytes, received),) = live.query(
        "select compression, body_bytes, received from ingest_log "
        "where transport = 'grpc' and status_code = 200"
    )
    assert (compression, received) == ("gzip", 200)
    assert body_bytes == pytest.approx(len(gzip.compress(body)), rel=0.2)
    assert body_bytes < len(body) / 3


def test_a_client_leaving_mid_body_costs_one_line(live, caplog):
    """A client that drops its connection in the middle of the body: no traceback, no 500."""
    with caplog.at_level(logging.DEBUG):
        with socket.create_connection(live.http_address, timeout=5) as sock:
            sock.sendall(b"POST /v1/logs HTTP/1.1\r\nHost: x\r\n"
                         b"Content-Type: application/x-protobuf\r\n"
                         b"Authorization: Bearer " + TOKEN.encode() + b"\r\n"
                         b"Content-Length: 60000\r\n\r\n" + bytes(1000))  # fmt: skip
            time.sleep(0.2)
        time.sleep(0.5)
    noisy = [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert noisy == []
    assert [r.getMessage() for r in caplog.records if "abandoned" in r.getMessage()] == [
        "logs export abandoned: client left after 1000 bytes of the body"
    ]


def test_healthz_and_metrics_take_a_token_for_their_detail(live):
    """With a token file, /healthz without a token says only whether the server is healthy,
    and /metrics is 401; with any token of the file both answer in full."""
    bare = httpx.get(f"{live.http_url}/healthz")
    assert (bare.status_code, bare.json()) == (200, {"status": "ok"})
    assert httpx.get(f"{live.http_url}/metrics").status_code == 401
    auth = {"authorization": f"Bearer {TOKEN}"}
    full = httpx.get(f"{live.http_url}/healthz", headers=auth).json()
    assert {"writer", "inflight", "connections", "problem"} <= set(full)
    metrics = httpx.get(f"{live.http_url}/metrics", headers=auth)
    assert metrics.status_code == 200 and "flaglens_writer_queue_rows" in metrics.text
