"""Values past a record limit quarantine the record, never refuse the request: a value nested
50 deep (past what the protobuf parsers read), a 1 MiB attribute key; NaN and the infinities
are stored as proto3 JSON spells them rather than as null."""

from __future__ import annotations

import gzip
import json
import math

import grpc
import httpx
import pytest
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

from ingest.decode import decode_logs
from ingest.limits import Limits
from tests.factories import RESOURCE, decision_attributes, otlp_json_logs
from tests.ingest.live import live_receivers

LOGS_EXPORT = "/opentelemetry.proto.collector.logs.v1.LogsService/Export"
T0 = 1_764_000_000_000_000_000


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field, by hand (the message classes refuse deep nesting)."""
    length, size = b"", len(payload)
    while True:
        length += bytes([size & 0x7F | (0x80 if size > 0x7F else 0)])
        size >>= 7
        if not size:
            break
    return bytes([number << 3 | 2]) + length + payload


def _deep_request(depth: int) -> bytes:
    """Two decisions; the first carries an attribute nested ``depth`` arrays deep (spliced in
    as bytes: the message classes refuse to build it)."""
    resource = Resource()
    for key, value in RESOURCE.items():
        resource.attributes.add(key=key, value=AnyValue(string_value=value))
    records = []
    for rule in ("deep", "beside"):
        record = LogRecord(time_unix_nano=T0, event_name="feature_flag.evaluation")
        for key, value in decision_attributes(**{"policy.rule.id": rule}).items():
            record.attributes.add(key=key, value=AnyValue(string_value=value))
        records.append(record.SerializeToString())
    value = _field(1, b"leaf")
    for _ in range(depth):
        value = _field(5, _field(1, value))  # AnyValue.array_value.values[0]
    records[0] += _field(6, _field(1, b"deep") + _field(2, value))  # LogRecord.attributes
    scope_logs = b"".join(_field(2, r) for r in records)  # ScopeLogs.log_records
    resource_logs = _field(1, resource.SerializeToString()) + _field(2, scope_logs)
    return _field(1, resource_logs)  # ExportLogsServiceRequest.resource_logs


@pytest.mark.parametrize("depth", [50, 1000])
def test_a_value_nested_past_the_parser_quarantines_its_record(depth):
    """50 (or 1000) arrays deep: the record breaks max_value_depth, the one beside is kept."""
    items = decode_logs(_deep_request(depth), content_type="application/x-protobuf",
                        content_encoding=None, limits=Limits())  # fmt: skip
    assert [item.record["policy.rule.id"] for item in items] == ["deep", "beside"]
    assert [bool(item.limit_violations) for item in items] == [True, False]
    assert "nested deeper than 8" in items[0].limit_violations[0]


def test_a_deep_json_value_quarantines_its_record():
    """The same in OTLP/JSON, whose parser stops at 100 levels."""
    value: dict = {"stringValue": "leaf"}
    for _ in range(60):
        value = {"arrayValue": {"values": [value]}}
    document = otlp_json_logs([decision_attributes(), decision_attributes()])
    document["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0]["attributes"].append(
        {"key": "deep", "value": value}
    )
    items = decode_logs(json.dumps(document).encode(), content_type="application/json",
                        content_encoding=None, limits=Limits())  # fmt: skip
    assert [bool(item.limit_violations) for item in items] == [True, False]


def _logs_with(rule: str, **extra: float) -> bytes:
    request = logs_service_pb2.ExportLogsServiceRequest()
    resource_logs = request.resource_logs.add()
    for key, value in RESOURCE.items():
        resource_logs.resource.attributes.add(key=key, value=AnyValue(string_value=value))
    record = resource_logs.scope_logs.add().log_records.add(
        time_unix_nano=T0, event_name="feature_flag.evaluation"
    )
    for key, value in decision_attributes(**{"policy.rule.id": rule}).items():
        record.attributes.add(key=key, value=AnyValue(string_value=value))
    for key, number in extra.items():
        record.attributes.append(KeyValue(key=key, value=AnyValue(double_value=number)))
    return request.SerializeToString()


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    with live_receivers(tmp_path_factory.mktemp("limits") / "f.duckdb") as receivers:
        yield receivers


@pytest.mark.parametrize("transport", ["http", "grpc"])
def test_a_deep_value_over_either_transport_rejects_one_record(live, transport):
    """Over HTTP and gRPC (gzip), the request is answered 200 / OK with one record rejected."""
    body = _deep_request(50)
    if transport == "http":
        response = httpx.post(f"{live.http_url}/v1/logs", content=body,
                              headers={"content-type": "application/x-protobuf"})  # fmt: skip
        assert response.status_code == 200
        content = response.content
    else:
        with grpc.insecure_channel(live.grpc_target,
                                   compression=grpc.Compression.Gzip) as channel:  # fmt: skip
            content = channel.unary_unary(LOGS_EXPORT)(body, timeout=30)
    answer = logs_service_pb2.ExportLogsServiceResponse.FromString(content)
    assert answer.partial_success.rejected_log_records == 1
    assert "nested deeper than 8 levels" in answer.partial_success.error_message


@pytest.mark.parametrize("encoding", ["protobuf", "json"])
def test_non_finite_doubles_are_stored_as_proto3_json_spells_them(live, encoding):
    """NaN, Infinity and -Infinity arrive in the stored attributes as strings, not null
    (protobuf bodies take the compiled decoder, OTLP/JSON the Python one)."""
    rule = f"non-finite-{encoding}"
    numbers = {"x.nan": math.nan, "x.inf": math.inf, "x.minus": -math.inf, "x.finite": 0.5}
    if encoding == "protobuf":
        body, media = gzip.compress(_logs_with(rule, **numbers)), "application/x-protobuf"
    else:
        document = otlp_json_logs([decision_attributes(**{"policy.rule.id": rule})])
        attributes = document["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0]["attributes"]
        spelled = {"x.nan": "NaN", "x.inf": "Infinity", "x.minus": "-Infinity", "x.finite": 0.5}
        attributes += [{"key": k, "value": {"doubleValue": v}} for k, v in spelled.items()]
        body, media = gzip.compress(json.dumps(document).encode()), "application/json"
    response = httpx.post(f"{live.http_url}/v1/logs", content=body,
                          headers={"content-type": media, "content-encoding": "gzip"})  # fmt: skip
    assert response.status_code == 200
    ((attributes,),) = live.query(f"select attributes from decisions where rule_id = '{rule}'")
    stored = json.loads(attributes)
    assert [stored[k] for k in numbers] == ["NaN", "Infinity", "-Infinity", 0.5]


def test_an_attribute_key_over_the_limit_rejects_its_record(live):
    """A 1 MiB attribute key quarantines its record with the reason."""
    document = otlp_json_logs([decision_attributes(**{"k" * (1 << 20): "v"})])
    response = httpx.post(f"{live.http_url}/v1/logs", json=document)
    assert response.status_code == 200
    partial = response.json()["partialSuccess"]
    assert int(partial["rejectedLogRecords"]) == 1
    assert "attribute key is 1048576 bytes" in partial["errorMessage"]
    assert "over the limit of 1024" in partial["errorMessage"]
