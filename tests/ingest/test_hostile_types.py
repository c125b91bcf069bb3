"""Every attribute value type, in service.name and in every other attribute, under a token
file: the odd records are quarantined, the valid ones beside them stored, never a 500 /
INTERNAL (a list or map in service.name broke the grant check, losing the whole batch)."""

from __future__ import annotations

import math

import grpc
import httpx
import pytest
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.common.v1.common_pb2 import KeyValue

from ingest.auth import token_hash
from tests.factories import decision_attributes, proto_value
from tests.ingest.live import live_receivers

TOKEN = "checkout-token"
T0 = 1_764_000_000_000_000_000
PROTOBUF = "application/x-protobuf"


# every AnyValue kind, and the values that break naive handling of them
KINDS = {
    "string": "payments", "bool": True, "int": 7, "double": 1.5, "nan": math.nan,
    "infinity": math.inf, "bytes": b"\x00\xff", "array": ["checkout", 1], "kvlist": {"k": "v"},
    "empty": None, "nested": [{"a": [b"x"]}],
}  # fmt: skip


def _logs(service: object, attributes: dict[str, object] | None = None):
    """One resource with `service`, one odd record; one valid checkout resource, one record."""
    request = logs_service_pb2.ExportLogsServiceRequest()
    valid = decision_attributes(**{"policy.rule.id": "valid"})
    for name, attrs in ((service, attributes or decision_attributes()), ("checkout", valid)):
        resource_logs = request.resource_logs.add()
        resource_logs.resource.attributes.extend([
            KeyValue(key="service.name", value=proto_value(name)),
            KeyValue(key="deployment.environment.name", value=proto_value("prod")),
        ])  # fmt: skip
        record = resource_logs.scope_logs.add().log_records.add(
            time_unix_nano=T0, event_name="feature_flag.evaluation"
        )
        record.attributes.extend(KeyValue(key=k, value=proto_value(v)) for k, v in attrs.items())
    return request


def _traces(service: object):
    request = trace_service_pb2.ExportTraceServiceRequest()
    for n, name in enumerate((service, "checkout"), start=1):
        resource_spans = request.resource_spans.add()
        resource_spans.resource.attributes.append(
            KeyValue(key="service.name", value=proto_value(name))
        )
        resource_spans.scope_spans.add().spans.add(
            name="GET /", trace_id=n.to_bytes(16, "big"), span_id=n.to_bytes(8, "big"),
            start_time_unix_nano=T0, end_time_unix_nano=T0 + 10**6,
        )  # fmt: skip
    return request


def _metrics(service: object):
    request = metrics_service_pb2.ExportMetricsServiceRequest()
    for name in (service, "checkout"):
        resource_metrics = request.resource_metrics.add()
        resource_metrics.resource.attributes.append(
            KeyValue(key="service.name", value=proto_value(name))
        )
        metric = resource_metrics.scope_metrics.add().metrics.add(name="requests")
        metric.sum.is_monotonic = True
        metric.sum.aggregation_temporality = 2
        metric.sum.data_points.add(time_unix_nano=T0, as_int=3)
    return request


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    folder = tmp_path_factory.mktemp("types")
    tokens = folder / "tokens.toml"
    tokens.write_text(
        f'[[token]]\nname = "checkout"\nsha256 = "{token_hash(TOKEN)}"\nservices = ["checkout"]\n'
    )
    with live_receivers(folder / "f.duckdb", auth_file=tokens) as receivers:
        yield receivers


@pytest.fixture(scope="module")
def http():
    """One client for the module's requests (a new httpx client builds an SSL context, ~50 ms)."""
    with httpx.Client(timeout=30) as client:
        yield client


def _send(live, transport: str, signal: str, request, http=None) -> bytes:
    body = request.SerializeToString()
    if transport == "http":
        response = http.post(
            f"{live.http_url}/v1/{signal}", content=body,
            headers={"content-type": PROTOBUF, "authorization": f"Bearer {TOKEN}"},
        )  # fmt: skip
        assert response.status_code == 200, response.content
        return response.content
    package, service = {"logs": ("logs", "LogsService"), "traces": ("trace", "TraceService"),
                        "metrics": ("metrics", "MetricsService")}[signal]  # fmt: skip
    method = f"/opentelemetry.proto.collector.{package}.v1.{service}/Export"
    with grpc.insecure_channel(live.grpc_target) as channel:
        answer: bytes = channel.unary_unary(method)(
            body, timeout=30, metadata=(("authorization", f"Bearer {TOKEN}"),)
        )
    return answer


@pytest.mark.parametrize("transport", ["http", "grpc"])
@pytest.mark.parametrize("kind", list(KINDS))
def test_any_service_name_type_quarantines_only_its_record(live, http, transport, kind):
    """A log record whose service.name is of any type but the token's service is rejected
    (only a string names a service); the valid record beside it is accepted."""
    answer = logs_service_pb2.ExportLogsServiceResponse.FromString(
        _send(live, transport, "logs", _logs(KINDS[kind]), http)
    )
    assert answer.partial_success.rejected_log_records == 1
    assert "log record 0: /service.name" in answer.partial_success.error_message


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize(
    "key", ["policy.module", "feature_flag.key", "decision.id", "event.name", "cohort.id"]
)
def test_any_type_in_any_attribute_is_data(live, http, key, kind):
    """Any value type in the attributes the contracts and tables read is answered 200."""
    attributes = decision_attributes(**{key: KINDS[kind]})
    answer = logs_service_pb2.ExportLogsServiceResponse.FromString(
        _send(live, "http", "logs", _logs("checkout", attributes), http)
    )
    assert answer.partial_success.rejected_log_records <= 1


@pytest.mark.parametrize("signal", ["traces", "metrics"])
@pytest.mark.parametrize("kind", ["array", "kvlist", "bytes", "nan"])
def test_spans_and_points_of_any_service_name_type(live, signal, kind):
    """Spans and data points whose service.name is not a string are rejected alone."""
    build, response_type, field = {
        "traces": (_traces, trace_service_pb2.ExportTraceServiceResponse, "rejected_spans"),
        "metrics": (_metrics, metrics_service_pb2.ExportMetricsServiceResponse,
                    "rejected_data_points"),
    }[signal]  # fmt: skip
    answer = response_type.FromString(_send(live, "grpc", signal, build(KINDS[kind])))
    assert getattr(answer.partial_success, field) == 1


def test_the_valid_records_were_stored(live):
    """Every valid record sent beside an odd one is in the store."""
    sent = 2 * len(KINDS)  # one valid record per request of the service.name test
    (stored,) = live.query("select count(*) from decisions where rule_id = 'valid'")[0]
    assert stored >= sent
    assert live.query("select count(*) from ingest_log where status_code >= 500") == [(0,)]
