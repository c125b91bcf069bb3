"""OTLP/protobuf bodies → Export*ServiceRequest messages."""

from __future__ import annotations

from typing import Any

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from ingest.errors import MalformedRequest

REQUEST_TYPES: dict[str, Any] = {
    "logs": ExportLogsServiceRequest,
    "traces": ExportTraceServiceRequest,
    "metrics": ExportMetricsServiceRequest,
}


def decode_protobuf(signal: str, body: bytes) -> Any:
    """Parse a protobuf body; undecodable bytes (truncation, bad UTF-8, nesting) → 400."""
    try:
        return REQUEST_TYPES[signal].FromString(body)
    except (DecodeError, RecursionError, ValueError) as exc:
        raise MalformedRequest("protobuf", f"{exc or type(exc).__name__}") from exc
