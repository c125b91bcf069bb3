"""Builders for the records tests send: each returns valid data unless told otherwise."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from ingest.pipeline import IngestPipeline, PreparedExport, RequestMeta

_ids = itertools.count(1)

RESOURCE = {"service.name": "checkout", "deployment.environment.name": "prod"}
# when the records built here happened (2025-11-24T16:00Z), and that day as a page's URL query
RECORD_TIME_NS = 1_764_000_000_000_000_000
RECORDS_DAY = "from=2025-11-24T00%3A00Z&to=2025-11-25T00%3A00Z"


def proto_value(value: Any) -> AnyValue:
    """A Python value as an OTLP protobuf AnyValue: None is the empty value, bytes bytes_value,
    lists arrays and dicts key-value lists, to any depth."""
    if value is None:
        return AnyValue()
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    if isinstance(value, str):
        return AnyValue(string_value=value)
    if isinstance(value, bytes):
        return AnyValue(bytes_value=value)
    out = AnyValue()
    if isinstance(value, list):
        out.array_value.values.extend(proto_value(v) for v in value)
    else:
        out.kvlist_value.values.extend(
            KeyValue(key=k, value=proto_value(v)) for k, v in value.items()
        )
    return out


def decision_attributes(**overrides: Any) -> dict[str, Any]:
    """Attributes of a valid release-module feature_flag.evaluation event; None drops a key."""
    attributes: dict[str, Any] = {
        "feature_flag.key": "new-checkout",
        "feature_flag.version": "v3",
        "feature_flag.result.variant": "on",
        "feature_flag.result.reason": "targeting_match",
        "feature_flag.provider.name": "flagd",
        "feature_flag.context.id": "user-1",
        "decision.id": f"d-{next(_ids):08d}",
        "policy.module": "release",
        "policy.rule.id": "rollout-50",
        "cohort.id": "beta",
    }
    attributes.update(overrides)
    return {key: value for key, value in attributes.items() if value is not None}


def privacy_decision_attributes(**overrides: Any) -> dict[str, Any]:
    """Attributes of a valid privacy-module decision (purpose and consent present)."""
    base = decision_attributes(
        **{
            "policy.module": "privacy",
            "privacy.purpose": "personalisation",
            "privacy.consent.state": "granted",
        }
    )
    base.update(overrides)
    return {key: value for key, value in base.items() if value is not None}


def otlp_json_logs(
    records: list[dict[str, Any]], resource: dict[str, Any] | None = None
) -> dict[str, Any]:
    """An OTLP/JSON ExportLogsServiceRequest with one resource and the given attribute maps."""

    def any_value(value: Any) -> dict[str, Any]:
        if isinstance(value, bool):
            return {"boolValue": value}
        if isinstance(value, int):
            return {"intValue": str(value)}
        if isinstance(value, float):
            return {"doubleValue": value}
        if isinstance(value, list):
            return {"arrayValue": {"values": [any_value(v) for v in value]}}
        return {"stringValue": str(value)}

    def key_values(mapping: dict[str, Any]) -> list[dict[str, Any]]:
        return [{"key": k, "value": any_value(v)} for k, v in mapping.items()]

    return {
        "resourceLogs": [
            {
                "resource": {"attributes": key_values(resource or RESOURCE)},
                "scopeLogs": [
                    {
                        "scope": {"name": "tests"},
                        "logRecords": [
                            {
                                "timeUnixNano": str(RECORD_TIME_NS),
                                "observedTimeUnixNano": str(RECORD_TIME_NS),
                                "eventName": "feature_flag.evaluation",
                                "attributes": key_values(attrs),
                            }
                            for attrs in records
                        ],
                    }
                ],
            }
        ]
    }


def proto_logs(
    records: list[dict[str, Any]], resource: dict[str, Any] | None = None
) -> ExportLogsServiceRequest:
    """What :func:`otlp_json_logs` describes, built as the protobuf message: the same request
    without protobuf's JSON parser, which takes about eight times as long."""
    request = ExportLogsServiceRequest()
    resource_logs = request.resource_logs.add()
    resource_logs.resource.attributes.extend(
        KeyValue(key=k, value=proto_value(v)) for k, v in (resource or RESOURCE).items()
    )
    scope_logs = resource_logs.scope_logs.add()
    scope_logs.scope.name = "tests"
    for attrs in records:
        record = scope_logs.log_records.add(
            time_unix_nano=RECORD_TIME_NS, observed_time_unix_nano=RECORD_TIME_NS,
            event_name="feature_flag.evaluation",
        )  # fmt: skip
        record.attributes.extend(KeyValue(key=k, value=proto_value(v)) for k, v in attrs.items())
    return request


def prepare_http(
    pipeline: IngestPipeline,
    request_id: int,
    signal: Any,
    body: bytes,
    content_type: str,
    content_encoding: str | None = None,
) -> PreparedExport:
    """Decode and check a body as the HTTP receiver would, its request metadata taken from the
    body and headers (raises IngestError as the receiver's pipeline call does)."""
    meta = RequestMeta(
        request_id=request_id, signal=signal, transport="http",
        encoding="json" if "json" in content_type else "protobuf",
        compression=content_encoding, body_bytes=len(body), received_at=datetime.now(UTC),
    )  # fmt: skip
    return pipeline.prepare(
        meta, body, content_type=content_type, content_encoding=content_encoding
    )


def write_documents(store: Any, documents: list[tuple[str, dict[str, Any]]]) -> None:
    """Store OTLP/JSON documents (signal, document) through the pipeline and the writer, as
    the receivers would."""
    import json

    from contracts import load_registry
    from ingest.limits import Limits
    from store.writer import StoreWriter

    pipeline = IngestPipeline(load_registry(), Limits())
    with StoreWriter(store) as writer:
        for signal, document in documents:
            body = json.dumps(document).encode()
            prepared = prepare_http(
                pipeline, writer.next_request_id(), signal, body, "application/json"
            )
            writer.submit(prepared.batch).result()
