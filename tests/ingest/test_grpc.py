"""OTLP/gRPC against an in-process server: the bad inputs, raw, and partial success.

The stock SDK gRPC exporters against a real `flaglens serve` are in test_grpc_exporters.py.
"""

from __future__ import annotations

import os

import duckdb
import grpc
import pytest
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2

from tests.factories import (
    decision_attributes,
    privacy_decision_attributes,
    proto_logs,
)
from tests.inprocess import start_inprocess

LOGS_EXPORT = "/opentelemetry.proto.collector.logs.v1.LogsService/Export"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    db = tmp_path_factory.mktemp("grpc") / "f.duckdb"
    process = start_inprocess(db, grpc=True, max_body_bytes=1 << 20)
    yield process, db
    process.stop()


def _logs_request(records: list[dict]) -> bytes:
    return proto_logs(records).SerializeToString()


def _call(server, body: bytes, **kwargs) -> bytes:
    process, _ = server
    with grpc.insecure_channel(process.grpc_target) as channel:
        export = channel.unary_unary(LOGS_EXPORT)
        return export(body, timeout=30, **kwargs)


def test_partial_success_comes_back_over_grpc(server):
    """A rejected record is counted and explained in the gRPC answer too (the stock exporter
    does not show it)."""
    answer = logs_service_pb2.ExportLogsServiceResponse.FromString(
        _call(server, _logs_request([decision_attributes(),
                                     privacy_decision_attributes(**{"privacy.purpose": None})]))
    )  # fmt: skip
    assert answer.partial_success.rejected_log_records == 1
    assert "/privacy.purpose" in answer.partial_success.error_message


def test_gzip_compressed_export_is_accepted(server):
    answer = logs_service_pb2.ExportLogsServiceResponse.FromString(
        _call(server, _logs_request([decision_attributes()]), compression=grpc.Compression.Gzip)
    )
    assert answer.partial_success.rejected_log_records == 0


@pytest.mark.parametrize(
    ("body", "code", "fragment"),
    [
        (b"\x0a\x80\x01\x0a", grpc.StatusCode.INVALID_ARGUMENT, "protobuf"),
        (os.urandom(64) + b"\xff\xff\xff\xff\xff", grpc.StatusCode.INVALID_ARGUMENT, ""),
        (b"\x0a\x0c\x0a\x0a\x0a\x08\x0a\x01k\x12\x03\x0a\x01\xff", grpc.StatusCode.INVALID_ARGUMENT,
         ""),
        (bytes(80 << 20), grpc.StatusCode.RESOURCE_EXHAUSTED, ""),
    ],
    ids=["truncated protobuf", "random bytes", "invalid UTF-8", "over the message size limit"],
)  # fmt: skip
def test_bad_input_answered_with_the_otlp_status(server, body, code, fragment):
    with pytest.raises(grpc.RpcError) as caught:
        _call(server, body)
    assert caught.value.code() == code
    assert fragment in (caught.value.details() or "")


def test_too_many_records_is_resource_exhausted(tmp_path, monkeypatch):
    monkeypatch.setenv("FLAGLENS_MAX_RECORDS_PER_REQUEST", "3")  # read as `flaglens serve` does
    server = start_inprocess(tmp_path / "f.duckdb", grpc=True)
    try:
        with pytest.raises(grpc.RpcError) as caught:
            _call((server, None), _logs_request([decision_attributes() for _ in range(4)]))
        assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "3" in caught.value.details()
    finally:
        server.stop()


def test_deeply_nested_value_rejects_only_its_record(server):
    value: object = "leaf"
    for _ in range(20):
        value = [value]
    body = _logs_request([decision_attributes(deep=value), decision_attributes()])
    answer = logs_service_pb2.ExportLogsServiceResponse.FromString(_call(server, body))
    assert answer.partial_success.rejected_log_records == 1
    assert "nested deeper" in answer.partial_success.error_message


def test_grpc_gzip_bomb_is_resource_exhausted(server):
    """gRPC inflates gzip itself and stops at the decompressed-size limit (64 MiB)."""
    with pytest.raises(grpc.RpcError) as caught:
        _call(server, bytes(80 << 20), compression=grpc.Compression.Gzip)
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_empty_request_and_missing_service_name(server):
    empty = logs_service_pb2.ExportLogsServiceResponse.FromString(_call(server, b""))
    assert empty.partial_success.rejected_log_records == 0
    body = proto_logs([decision_attributes()], {"deployment.environment.name": "prod"})
    answer = logs_service_pb2.ExportLogsServiceResponse.FromString(
        _call(server, body.SerializeToString())
    )
    assert answer.partial_success.rejected_log_records == 1
    assert "/service.name" in answer.partial_success.error_message


def test_everything_acknowledged_is_stored_and_counts_reconcile(server):
    process, db = server
    sent = decision_attributes()
    _call(server, _logs_request([sent]))  # still answering after bad input
    process.stop()
    con = duckdb.connect(str(db), read_only=True)
    stored = {r[0] for r in con.sql("select decision_id from decisions").fetchall()}
    assert sent["decision.id"] in stored
    accepted, rejected = con.sql(
        "select sum(accepted), sum(rejected) from ingest_log "
        "where status_code = 200 and transport = 'grpc'"
    ).fetchone()
    quarantined = con.sql("select count(*) from quarantine").fetchone()[0]
    assert rejected == quarantined > 0
    logged = con.sql("select count(*) from decisions where source = 'log'").fetchone()[0]
    assert accepted == logged
