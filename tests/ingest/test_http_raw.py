"""Raw OTLP/HTTP requests against an in-process server: JSON, gzip, and a table of bad inputs."""

from __future__ import annotations

import gzip
import json
import os
import zlib

import duckdb
import httpx
import pytest
from google.rpc import status_pb2
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2

from tests.factories import decision_attributes, otlp_json_logs, privacy_decision_attributes
from tests.inprocess import start_inprocess

PROTOBUF = "application/x-protobuf"
JSON = "application/json"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """One server for the module, with a 1 MiB body limit and an 8 MiB decompressed limit so
    limits are cheap to hit."""
    db = tmp_path_factory.mktemp("raw") / "f.duckdb"
    process = start_inprocess(db, max_body_bytes=1 << 20, max_decompressed_bytes=8 << 20)
    yield process, db
    process.stop()


def _post(server, path: str, body: bytes, content_type: str, **headers: str) -> httpx.Response:
    process, _ = server
    return httpx.post(
        f"{process.http_url}{path}",
        content=body,
        headers={"content-type": content_type, **headers},
        timeout=30,
    )


def _gzip_bomb(inflated_bytes: int) -> bytes:
    """A gzip stream of zeros that inflates to `inflated_bytes`, built without holding them."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    chunk = bytes(1 << 20)
    parts = [compressor.compress(chunk) for _ in range(inflated_bytes // len(chunk))]
    parts.append(compressor.flush())
    return b"".join(parts)


def test_json_request_answered_in_json_with_partial_success(server):
    """An OTLP/JSON export gets an OTLP/JSON answer naming the rejected record's reason."""
    body = json.dumps(
        otlp_json_logs(
            [decision_attributes(), privacy_decision_attributes(**{"privacy.purpose": None})]
        )
    )
    response = _post(server, "/v1/logs", body.encode(), JSON)
    assert response.status_code == 200
    assert response.headers["content-type"] == JSON
    partial = response.json()["partialSuccess"]
    assert int(partial["rejectedLogRecords"]) == 1
    assert "feature_flag.evaluation.privacy@" in partial["errorMessage"]
    assert "/privacy.purpose" in partial["errorMessage"]


def test_gzip_protobuf_request_accepted(server):
    """A gzip-compressed protobuf export is decoded and fully accepted."""
    request = logs_service_pb2.ExportLogsServiceRequest()
    from google.protobuf import json_format

    json_format.ParseDict(json.loads(json.dumps(otlp_json_logs([decision_attributes()]))), request)
    response = _post(
        server,
        "/v1/logs",
        gzip.compress(request.SerializeToString()),
        PROTOBUF,
        **{"content-encoding": "gzip"},
    )
    answer = logs_service_pb2.ExportLogsServiceResponse.FromString(response.content)
    assert response.status_code == 200
    assert answer.partial_success.rejected_log_records == 0


BAD_INPUTS = [
    ("truncated protobuf", "/v1/logs", b"\x0a\x80\x01\x0a", PROTOBUF, {}, 400, "protobuf"),
    ("random bytes", "/v1/logs", os.urandom(64) + b"\xff\xff\xff\xff\xff", PROTOBUF, {}, 400, ""),
    (
        "JSON that is not OTLP",
        "/v1/logs",
        b'{"resourceLogs": "nope"}',
        JSON,
        {},
        400,
        "resourceLogs",
    ),
    ("not JSON", "/v1/logs", b"{not json", JSON, {}, 400, "JSON"),
    ("empty JSON body", "/v1/logs", b"", JSON, {}, 400, ""),
    ("wrong content type", "/v1/logs", b"hello", "text/plain", {}, 415, "application/x-protobuf"),
    ("unknown content encoding", "/v1/logs", b"x", PROTOBUF, {"content-encoding": "br"}, 415, "br"),
    ("oversize body", "/v1/logs", bytes(2 << 20), PROTOBUF, {}, 413, "limit"),
    ("gzip bomb", "/v1/logs", None, PROTOBUF, {"content-encoding": "gzip"}, 413, "decompress"),
    (
        "corrupt gzip",
        "/v1/logs",
        b"\x1f\x8b\x08\x00garbage",
        PROTOBUF,
        {"content-encoding": "gzip"},
        400,
        "gzip",
    ),
    (
        "invalid UTF-8 string",
        "/v1/logs",
        b"\x0a\x0c\x0a\x0a\x0a\x08\x0a\x01k\x12\x03\x0a\x01\xff",
        PROTOBUF,
        {},
        400,
        "",
    ),
    ("wrong path", "/v1/nothing", b"", PROTOBUF, {}, 404, "/v1/logs"),
]


@pytest.mark.parametrize(
    ("path", "body", "content_type", "headers", "status", "fragment"),
    [case[1:] for case in BAD_INPUTS],
    ids=[case[0] for case in BAD_INPUTS],
)
def test_bad_input_answered_with_status_and_reason(
    server, path, body, content_type, headers, status, fragment
):
    """Each bad request gets the OTLP status code and a google.rpc.Status saying what was wrong."""
    if body is None:
        body = _gzip_bomb(32 << 20)  # four times the decompressed limit, in 32 KiB
    response = _post(server, path, body, content_type, **headers)
    assert response.status_code == status
    if response.headers["content-type"] == PROTOBUF:
        message = status_pb2.Status.FromString(response.content).message
    else:
        message = response.json()["message"]
    assert message
    assert fragment.lower() in message.lower()


def test_wrong_method_answered_405(server):
    """GET on an export path is 405 with a Status body."""
    process, _ = server
    response = httpx.get(f"{process.http_url}/v1/logs", headers={"content-type": JSON})
    assert response.status_code == 405
    assert "POST" in response.json()["message"]


def test_missing_service_name_rejected_per_record(server):
    """A record without service.name is rejected and quarantined; the request still succeeds."""
    body = json.dumps(
        otlp_json_logs([decision_attributes()], resource={"deployment.environment.name": "prod"})
    )
    response = _post(server, "/v1/logs", body.encode(), JSON)
    assert response.status_code == 200
    assert "/service.name" in response.json()["partialSuccess"]["errorMessage"]


def test_deeply_nested_value_does_not_break_server(server):
    """A deeply nested attribute value is refused without taking the server down."""
    value: dict = {"stringValue": "leaf"}
    for _ in range(200):
        value = {"arrayValue": {"values": [value]}}
    doc = otlp_json_logs([decision_attributes()])
    doc["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0]["attributes"].append(
        {"key": "deep", "value": value}
    )
    response = _post(server, "/v1/logs", json.dumps(doc).encode(), JSON)
    assert response.status_code in (200, 400)
    if response.status_code == 200:
        assert int(response.json()["partialSuccess"]["rejectedLogRecords"]) == 1


def test_server_still_answers_and_counts_reconcile_after_bad_inputs(server):
    """After every bad input the server answers, and stored + quarantined = accepted + rejected."""
    process, db = server
    response = _post(
        server, "/v1/logs", json.dumps(otlp_json_logs([decision_attributes()])).encode(), JSON
    )
    assert response.status_code == 200
    process.stop()
    con = duckdb.connect(str(db), read_only=True)
    accepted, rejected = con.sql(
        "select sum(accepted), sum(rejected) from ingest_log where status_code = 200"
    ).fetchone()
    stored = con.sql("select count(*) from decisions").fetchone()[0]
    quarantined = con.sql("select count(*) from quarantine").fetchone()[0]
    assert (stored, quarantined) == (accepted, rejected)
