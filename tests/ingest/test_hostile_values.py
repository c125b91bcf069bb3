"""Requests that decode fine but carry values the store cannot hold as sent, over HTTP and gRPC.

Each must be answered 200 with the offending records rejected and quarantined with the reason
(or stored, with the out-of-range typed column left empty), never a 500 / INTERNAL, and the
server must keep answering. The fuzz test found the first of these; they are kept here as known
answers against an in-process server.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import duckdb
import grpc
import httpx
import pytest
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1 import metrics_pb2

from tests.factories import decision_attributes
from tests.inprocess import start_inprocess

T0 = 1_764_000_000_000_000_000
_ids = itertools.count(1)
_RESPONSES: dict[str, tuple[Any, str, str]] = {
    "logs": (logs_service_pb2.ExportLogsServiceResponse, "rejected_log_records", "LogsService"),
    "traces": (trace_service_pb2.ExportTraceServiceResponse, "rejected_spans", "TraceService"),
    "metrics": (
        metrics_service_pb2.ExportMetricsServiceResponse,
        "rejected_data_points",
        "MetricsService",
    ),
}
_GRPC_PACKAGE = {"logs": "logs", "traces": "trace", "metrics": "metrics"}


def _kv(key: str, value: object) -> KeyValue:
    any_value = AnyValue()
    if isinstance(value, bool):
        any_value.bool_value = value
    elif isinstance(value, int):
        any_value.int_value = value
    else:
        any_value.string_value = str(value)
    return KeyValue(key=key, value=any_value)


def _histogram(service: object = "checkout", **point: object):
    """A cumulative latency histogram point (valid unless ``point`` overrides a field)."""
    request = metrics_service_pb2.ExportMetricsServiceRequest()
    resource_metrics = request.resource_metrics.add()
    resource_metrics.resource.attributes.append(_kv("service.name", service))
    scope = resource_metrics.scope_metrics.add()
    metric = scope.metrics.add(name="http.server.request.duration", unit="s")
    metric.histogram.aggregation_temporality = metrics_pb2.AGGREGATION_TEMPORALITY_CUMULATIVE
    values = {"count": 3, "sum": 0.6, "explicit_bounds": [0.1, 1.0], "bucket_counts": [1, 1, 1],
              "start_time_unix_nano": T0, "time_unix_nano": T0 + next(_ids)} | point  # fmt: skip
    data_point = metric.histogram.data_points.add(**values)
    data_point.attributes.append(_kv("http.route", "/checkout"))
    gauge = scope.metrics.add(name="queue.depth")
    gauge.gauge.data_points.add(time_unix_nano=T0, as_double=3.0)
    return request


def _span(name: str, status_code: object = 200, **ids: bytes):
    request = trace_service_pb2.ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    resource_spans.resource.attributes.append(_kv("service.name", "checkout"))
    n = next(_ids)
    values = {"trace_id": n.to_bytes(16, "big"), "span_id": n.to_bytes(8, "big")} | ids
    span = resource_spans.scope_spans.add().spans.add(
        name=name, start_time_unix_nano=T0, end_time_unix_nano=T0 + 10**8, **values
    )
    span.attributes.append(_kv("http.response.status_code", status_code))
    return request


def _decision(observed: int):
    request = logs_service_pb2.ExportLogsServiceRequest()
    resource_logs = request.resource_logs.add()
    for key, value in (("service.name", "checkout"), ("deployment.environment.name", "prod")):
        resource_logs.resource.attributes.append(_kv(key, value))
    record = resource_logs.scope_logs.add().log_records.add(
        time_unix_nano=T0, observed_time_unix_nano=observed, event_name="feature_flag.evaluation"
    )
    for key, value in decision_attributes(**{"policy.rule.id": "hostile-observed"}).items():
        record.attributes.append(_kv(key, value))
    return request


# name → (signal, request builder, records rejected, fragment of the partial-success message)
CASES: dict[str, tuple[str, Callable[[], object], int, str]] = {
    "histogram count past int64": (
        "metrics", lambda: _histogram(count=2**64 - 1, bucket_counts=[2**64 - 3, 1, 1]), 1,
        "a count is over"),
    "bucket counts not matching the bounds": (
        "metrics", lambda: _histogram(bucket_counts=[1, 1, 1, 0, 0]), 1,
        "5 bucket counts for 2 bounds"),
    "bounds not increasing": (
        "metrics", lambda: _histogram(explicit_bounds=[1.0, float("nan")]), 1,
        "strictly increasing"),
    "bucket counts not adding up to the count": (
        "metrics", lambda: _histogram(count=100), 1, "not to the count 100"),
    "service.name not a string": ("metrics", lambda: _histogram(service=True), 1, "service.name"),
    "span without ids": ("traces", lambda: _span("no-ids", trace_id=b"", span_id=b""), 1,
                         "trace_id must be 16 bytes"),
    "status code past INTEGER": ("traces", lambda: _span("status-2^40", 2**40), 0, ""),
    "status code of thirty digits": ("traces", lambda: _span("status-9s", "9" * 30), 0, ""),
    "observed time past int64 nanoseconds": ("logs", lambda: _decision(2**64 - 1), 0, ""),
}  # fmt: skip


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    db = tmp_path_factory.mktemp("hostile") / "f.duckdb"
    process = start_inprocess(db, grpc=True)
    yield process, db
    process.stop()


def _send(server, transport: str, signal: str, request) -> bytes:
    process, _ = server
    body = request.SerializeToString()
    if transport == "http":
        response = httpx.post(f"{process.http_url}/v1/{signal}", content=body, timeout=30,
                              headers={"content-type": "application/x-protobuf"})  # fmt: skip
        assert response.status_code == 200, response.content
        return response.content
    service = _RESPONSES[signal][2]
    method = f"/opentelemetry.proto.collector.{_GRPC_PACKAGE[signal]}.v1.{service}/Export"
    with grpc.insecure_channel(process.grpc_target) as channel:
        answer: bytes = channel.unary_unary(method)(body, timeout=30)
        return answer


@pytest.mark.parametrize("transport", ["http", "grpc"])
@pytest.mark.parametrize("case", list(CASES))
def test_hostile_value_is_answered_with_partial_success(server, transport, case):
    signal, build, rejected, fragment = CASES[case]
    response_type, rejected_field, _ = _RESPONSES[signal]
    answer = response_type.FromString(_send(server, transport, signal, build()))
    assert getattr(answer.partial_success, rejected_field) == rejected
    assert fragment in answer.partial_success.error_message


def test_rejected_values_are_quarantined_and_the_rest_stored(server):
    process, db = server
    process.stop()
    con = duckdb.connect(str(db), read_only=True)
    assert con.sql("select count(*) from quarantine").fetchall() == [
        (2 * sum(case[2] for case in CASES.values()),)
    ]
    reasons = {row[0] for row in con.sql("select errors from quarantine").fetchall()}
    assert any("bucket counts add up to 3, not to the count 100" in r for r in reasons)
    statuses = con.sql(
        "select name, http_status_code from spans where name like 'status-%'"
    ).fetchall()
    assert sorted(statuses) == [("status-2^40", None)] * 2 + [("status-9s", None)] * 2
    observed = con.sql(
        "select observed_time from decisions where rule_id = 'hostile-observed'"
    ).fetchall()
    # 2**64 - 1 ns after the epoch is 2554-07-21, past where nanoseconds fit a signed 64-bit
    assert [(t.year, t.month, t.day) for (t,) in observed] == [(2554, 7, 21)] * 2
    drops = con.sql("select count(*), count(service_name) from metric_drops").fetchone()
    assert drops == (10, 8)  # every histogram request carried a gauge; two had no service name
