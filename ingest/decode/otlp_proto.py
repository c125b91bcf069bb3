"""OTLP/protobuf bodies → Export*ServiceRequest messages."""

from __future__ import annotations

from typing import Any

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from ingest.decode.depth import prune_wire
from ingest.errors import MalformedRequest

REQUEST_TYPES: dict[str, Any] = {
    "logs": ExportLogsServiceRequest,
    "traces": ExportTraceServiceRequest,
    "metrics": ExportMetricsServiceRequest,
}


def decode_protobuf(signal: str, body: bytes, max_value_depth: int | None = None) -> Any:
    """Parse a protobuf body; undecodable bytes (truncation, bad UTF-8) → 400.

    With ``max_value_depth``, a body that does not parse because attribute values nest past
    what the parser reads is parsed again with those values cut at that depth
    (:mod:`ingest.decode.depth`): their records are quarantined, not the request refused.
    """
    request_type = REQUEST_TYPES[signal]
    try:
        return request_type.FromString(body)
    except (DecodeError, RecursionError, ValueError) as exc:
        pruned = None
        if max_value_depth is not None:
            pruned = prune_wire(body, request_type.DESCRIPTOR, max_value_depth)
        if pruned is not None:
            try:
                return request_type.FromString(pruned)
            except (DecodeError, RecursionError, ValueError):
                pass  # not only too deep: the first error says what is wrong
        raise MalformedRequest("protobuf", f"{exc or type(exc).__name__}") from exc
