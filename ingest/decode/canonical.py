"""Decoded OTLP requests → canonical records: one flat JSON object per log record or span event.

This is the slowest stage of ingestion (building Python objects from parsed protobuf), so it
converts each resource's attributes once and copies them into every record of that resource.
Per-record limits are checked here; a record over a limit is marked, not dropped, so the
pipeline quarantines it with the reason.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ingest.errors import PayloadTooLarge
from ingest.limits import Limits

_EVALUATION = "feature_flag.evaluation"
_SPAN_KINDS = ("unspecified", "internal", "server", "client", "producer", "consumer")
_STATUS_CODES = ("unset", "ok", "error")
_NS_PER_MS = 1_000_000
# JSON has no NaN or infinities: they are stored as the proto3 JSON mapping (and OTLP/JSON)
# spells them, as strings, and checked by the contracts as such
_NON_FINITE = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}


def json_double(number: float) -> float | str:
    """A double attribute value as stored: itself, or "NaN", "Infinity", "-Infinity"."""
    return number if math.isfinite(number) else _NON_FINITE[repr(number)]


class _OverLimit(Exception):
    """A record breaks a per-record limit; carries the reason."""


@dataclass(slots=True)
class CanonicalRecord:
    """A canonical record and any per-record limit it broke (then it must be rejected)."""

    record: dict[str, Any]
    limit_violations: tuple[str, ...] = ()
    span_index: int = -1
    """For span events: the index of the span (in the request) the event belongs to."""


@dataclass(slots=True)
class SpanRow:
    """One span's typed fields for the `spans` table, plus its flat attributes."""

    start_time: int
    end_time: int
    duration_ms: float
    service_name: str | None
    environment: str | None
    name: str
    kind: str
    status_code: str
    http_route: str | None
    http_method: str | None
    http_status_code: int | None
    trace_id: str
    span_id: str
    parent_span_id: str | None
    attributes: dict[str, Any]
    limit_violations: tuple[str, ...] = ()

    def row(self) -> dict[str, Any]:
        """The `spans` columns (times in unix nanoseconds; attributes still a dict)."""
        return {
            "start_time": self.start_time,
            "end_time": self.end_time,
            "duration_ms": self.duration_ms,
            "service_name": self.service_name,
            "environment": self.environment,
            "name": self.name,
            "kind": self.kind,
            "status_code": self.status_code,
            "http_route": self.http_route,
            "http_method": self.http_method,
            "http_status_code": self.http_status_code,
            "trace_id": self.trace_id,
            "span_id": self.span_id,
            "parent_span_id": self.parent_span_id,
            "attributes": self.attributes,
        }


class _Converter:
    """AnyValue → JSON value under the per-record limits."""

    __slots__ = ("max_depth", "max_key", "max_string")

    def __init__(self, limits: Limits) -> None:
        self.max_depth = limits.max_value_depth
        self.max_string = limits.max_attribute_value_bytes
        self.max_key = limits.max_attribute_key_bytes

    def key(self, key: str) -> str:
        if len(key) > self.max_key // 4 and len(key.encode()) > self.max_key:
            raise _OverLimit(
                f"an attribute key is {len(key.encode())} bytes (starting {key[:40]!r}), over "
                f"the limit of {self.max_key}"
            )
        return key

    def value(self, any_value: Any, depth: int = 1) -> Any:
        kind = any_value.WhichOneof("value")
        if kind == "string_value":
            text: str = any_value.string_value
            if len(text) > self.max_string // 4 and len(text.encode()) > self.max_string:
                raise _OverLimit(
                    f"a string attribute value is {len(text.encode())} bytes, over the limit "
                    f"of {self.max_string}"
                )
            return text
        if kind == "int_value" or kind == "bool_value":
            return getattr(any_value, kind)
        if kind == "double_value":
            return json_double(any_value.double_value)
        if kind is None:
            return None
        if depth >= self.max_depth:
            raise _OverLimit(f"attribute value nested deeper than {self.max_depth} levels")
        if kind == "array_value":
            return [self.value(v, depth + 1) for v in any_value.array_value.values]
        if kind == "kvlist_value":
            return {
                self.key(kv.key): self.value(kv.value, depth + 1)
                for kv in any_value.kvlist_value.values
            }
        return base64.b64encode(any_value.bytes_value).decode()

    def attributes(self, key_values: Iterable[Any], into: dict[str, Any]) -> None:
        # the common kinds inline: this loop runs for every attribute of every record
        short = self.max_string // 4
        short_key = self.max_key // 4
        for kv in key_values:
            key = kv.key
            if len(key) > short_key:
                self.key(key)
            any_value = kv.value
            kind = any_value.WhichOneof("value")
            if kind == "string_value":
                text = any_value.string_value
                into[key] = text if len(text) <= short else self.value(any_value)
            elif kind == "int_value":
                into[key] = any_value.int_value
            elif kind == "bool_value":
                into[key] = any_value.bool_value
            else:
                into[key] = self.value(any_value)


def _resource(converter: _Converter, resource: Any) -> tuple[dict[str, Any], str | None]:
    attributes: dict[str, Any] = {}
    try:
        converter.attributes(resource.attributes, attributes)
    except _OverLimit as exc:
        return attributes, str(exc)
    if "deployment.environment.name" not in attributes and "deployment.environment" in attributes:
        # the name before semantic conventions 1.27
        attributes["deployment.environment.name"] = attributes["deployment.environment"]
    return attributes, None


def _check_count(total: int, limits: Limits) -> None:
    if total > limits.max_records_per_request:
        raise PayloadTooLarge(limit=limits.max_records_per_request, received=total, stage="records")


def _too_many(count: int, limits: Limits) -> str | None:
    if count > limits.max_attributes_per_record:
        return (
            f"record has {count} attributes, over the limit of {limits.max_attributes_per_record}"
        )
    return None


def canonical_logs(request: Any, limits: Limits) -> list[CanonicalRecord]:
    """Every log record of an ExportLogsServiceRequest, as canonical records."""
    _check_count(
        sum(len(s.log_records) for r in request.resource_logs for s in r.scope_logs), limits
    )
    converter = _Converter(limits)
    out: list[CanonicalRecord] = []
    for resource_logs in request.resource_logs:
        resource, resource_problem = _resource(converter, resource_logs.resource)
        service = resource.get("service.name")
        for scope_logs in resource_logs.scope_logs:
            for log in scope_logs.log_records:
                record = dict(resource)
                problems: list[str] = [resource_problem] if resource_problem else []
                try:
                    converter.attributes(log.attributes, record)
                except _OverLimit as exc:
                    problems.append(str(exc))
                if service is None:
                    record.pop("service.name", None)
                else:
                    record["service.name"] = service  # records never speak for another service
                too_many = _too_many(
                    len(resource_logs.resource.attributes) + len(log.attributes), limits
                )
                if too_many:
                    problems.append(too_many)
                event_name = log.event_name or record.get("event.name")
                if event_name:
                    record["event_name"] = event_name
                record["time_unix_nano"] = log.time_unix_nano or log.observed_time_unix_nano
                record["observed_time_unix_nano"] = log.observed_time_unix_nano
                if log.trace_id:
                    record["trace_id"] = log.trace_id.hex()
                if log.span_id:
                    record["span_id"] = log.span_id.hex()
                if log.severity_number:
                    record["severity_number"] = log.severity_number
                if log.severity_text:
                    record["severity_text"] = log.severity_text
                if log.HasField("body"):  # the SDK sends an empty AnyValue for "no body"
                    try:
                        body = converter.value(log.body)
                    except _OverLimit as exc:
                        problems.append(f"body: {exc}")
                    else:
                        if body is not None:
                            record["body"] = body
                record["signal"] = "logs"
                out.append(CanonicalRecord(record, tuple(problems)))
    return out


def http_status_code(value: Any) -> int | None:
    """An HTTP status code attribute as an integer 100-599; anything else is None.

    The attribute stays in the record as sent; only the typed column is left empty, so a
    hostile value (``2**40``, thirty nines) can neither overflow the INTEGER column nor pass
    for an error status.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and value.isdigit() and len(value) == 3:
        value = int(value)
    if isinstance(value, int) and 100 <= value <= 599:
        return value
    return None


def _id_problems(span: Any) -> list[str]:
    """What is wrong with a span's ids, by the OTLP rule: 16- and 8-byte, not all zero."""
    problems = []
    if len(span.trace_id) != 16 or not any(span.trace_id):
        problems.append(f"trace_id must be 16 bytes, not all zero (got {span.trace_id.hex()!r})")
    if len(span.span_id) != 8 or not any(span.span_id):
        problems.append(f"span_id must be 8 bytes, not all zero (got {span.span_id.hex()!r})")
    if span.parent_span_id and len(span.parent_span_id) != 8:
        problems.append(
            f"parent_span_id must be empty or 8 bytes (got {span.parent_span_id.hex()!r})"
        )
    return problems


def _as_str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def canonical_traces(request: Any, limits: Limits) -> tuple[list[SpanRow], list[CanonicalRecord]]:
    """Spans of an ExportTraceServiceRequest and their feature_flag.evaluation events."""
    _check_count(sum(len(s.spans) for r in request.resource_spans for s in r.scope_spans), limits)
    converter = _Converter(limits)
    spans: list[SpanRow] = []
    events: list[CanonicalRecord] = []
    for resource_spans in request.resource_spans:
        resource, resource_problem = _resource(converter, resource_spans.resource)
        service = _as_str(resource.get("service.name"))
        environment = _as_str(resource.get("deployment.environment.name"))
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                attributes = dict(resource)
                problems: list[str] = [resource_problem] if resource_problem else []
                try:
                    converter.attributes(span.attributes, attributes)
                except _OverLimit as exc:
                    problems.append(str(exc))
                too_many = _too_many(
                    len(resource_spans.resource.attributes) + len(span.attributes), limits
                )
                if too_many:
                    problems.append(too_many)
                problems.extend(_id_problems(span))
                if service is not None:
                    attributes["service.name"] = service
                trace_id = span.trace_id.hex()
                span_id = span.span_id.hex()
                status_code = attributes.get(
                    "http.response.status_code", attributes.get("http.status_code")
                )
                kind = span.kind if 0 <= span.kind < len(_SPAN_KINDS) else 0
                status = span.status.code if 0 <= span.status.code < len(_STATUS_CODES) else 0
                spans.append(
                    SpanRow(
                        start_time=span.start_time_unix_nano,
                        end_time=span.end_time_unix_nano,
                        duration_ms=max(0, span.end_time_unix_nano - span.start_time_unix_nano)
                        / _NS_PER_MS,
                        service_name=service,
                        environment=environment,
                        name=span.name,
                        kind=_SPAN_KINDS[kind],
                        status_code=_STATUS_CODES[status],
                        http_route=_as_str(attributes.get("http.route")),
                        http_method=_as_str(
                            attributes.get("http.request.method", attributes.get("http.method"))
                        ),
                        http_status_code=http_status_code(status_code),
                        trace_id=trace_id,
                        span_id=span_id,
                        parent_span_id=span.parent_span_id.hex() or None,
                        attributes=attributes,
                        limit_violations=tuple(problems),
                    )
                )
                span_index = len(spans) - 1
                for event in span.events:
                    if event.name != _EVALUATION:
                        continue
                    record = dict(resource)
                    event_problems: list[str] = []
                    try:
                        converter.attributes(event.attributes, record)
                    except _OverLimit as exc:
                        event_problems.append(str(exc))
                    too_many = _too_many(
                        len(resource_spans.resource.attributes) + len(event.attributes), limits
                    )
                    if too_many:
                        event_problems.append(too_many)
                    if service is not None:
                        record["service.name"] = service
                    record["event_name"] = _EVALUATION
                    record["time_unix_nano"] = event.time_unix_nano or span.start_time_unix_nano
                    record["observed_time_unix_nano"] = event.time_unix_nano
                    if trace_id.strip("0"):
                        record["trace_id"] = trace_id
                    if span_id.strip("0"):
                        record["span_id"] = span_id
                    record["signal"] = "traces"
                    events.append(CanonicalRecord(record, tuple(event_problems), span_index))
    return spans, events
