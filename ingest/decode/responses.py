"""Answers to exporters: Export*ServiceResponse with partial success, and google.rpc.Status."""

from __future__ import annotations

from typing import Any, Literal

from google.protobuf import json_format
from google.rpc import status_pb2
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

Encoding = Literal["protobuf", "json"]

# signal → (response message, partial-success message, the field counting rejected items)
_RESPONSES: dict[str, tuple[Any, Any, str]] = {
    "logs": (
        logs_service_pb2.ExportLogsServiceResponse,
        logs_service_pb2.ExportLogsPartialSuccess,
        "rejected_log_records",
    ),
    "traces": (
        trace_service_pb2.ExportTraceServiceResponse,
        trace_service_pb2.ExportTracePartialSuccess,
        "rejected_spans",
    ),
    "metrics": (
        metrics_service_pb2.ExportMetricsServiceResponse,
        metrics_service_pb2.ExportMetricsPartialSuccess,
        "rejected_data_points",
    ),
}


def export_response(signal: str, *, rejected: int, error_message: str) -> Any:
    """The response message; partial_success is set only when something was rejected or said."""
    response_type, partial_type, field = _RESPONSES[signal]
    if not rejected and not error_message:
        return response_type()
    partial = partial_type(error_message=error_message, **{field: rejected})
    return response_type(partial_success=partial)


def _encode(message: Any, encoding: Encoding) -> bytes:
    if encoding == "json":
        return json_format.MessageToJson(message, indent=None).encode()
    return bytes(message.SerializeToString())


def encode_export_response(
    signal: str, *, rejected: int, error_message: str, encoding: Encoding
) -> bytes:
    """The 200 answer's body in the request's encoding."""
    return _encode(
        export_response(signal, rejected=rejected, error_message=error_message), encoding
    )


def encode_status(code: int, message: str, encoding: Encoding) -> bytes:
    """A failure answer's body: google.rpc.Status with a gRPC code and a message."""
    return _encode(status_pb2.Status(code=code, message=message), encoding)
