"""OTLP/gRPC: the logs, trace and metrics services, on the same path as OTLP/HTTP.

The methods are registered with generic handlers that hand over the raw request bytes, so a gRPC
export goes through exactly the decoding, limits, contracts and writer of an HTTP one
(:meth:`IngestService.export`). gRPC itself inflates gzip and enforces the message size limit
(RESOURCE_EXHAUSTED). Errors map to the status codes the OTLP specification names; when the
writer is full the answer is UNAVAILABLE with a ``google.rpc.RetryInfo`` detail, which OTLP
exporters honour before retrying.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from google.protobuf.duration_pb2 import Duration
from google.rpc import error_details_pb2, status_pb2
from grpc import aio

from ingest.decode import encode_export_response
from ingest.errors import IngestError, Overloaded
from ingest.pipeline import Signal
from ingest.service import IngestService
from store.errors import StoreError, TransientStoreError

log = logging.getLogger(__name__)
Metadata = tuple[tuple[str, bytes], ...]

# signal → fully qualified OTLP service name (the method is always Export)
SERVICES: dict[Signal, str] = {
    "logs": "opentelemetry.proto.collector.logs.v1.LogsService",
    "traces": "opentelemetry.proto.collector.trace.v1.TraceService",
    "metrics": "opentelemetry.proto.collector.metrics.v1.MetricsService",
}


def _retry_trailers(code: grpc.StatusCode, message: str, retry_after: float) -> Metadata:
    """The retry delay, as trailing metadata both kinds of OTLP exporter read.

    ``grpc-status-details-bin`` carries a google.rpc.Status with a RetryInfo detail (the gRPC
    rich error model: the Collector and the Go and Java SDKs); ``google.rpc.retryinfo-bin``
    carries the RetryInfo alone, which is where the Python SDK's exporter looks for it.
    """
    retry = error_details_pb2.RetryInfo(
        retry_delay=Duration(seconds=max(1, math.ceil(retry_after)))
    )
    status = status_pb2.Status(code=code.value[0], message=message)
    status.details.add().Pack(retry)
    return (
        ("grpc-status-details-bin", status.SerializeToString()),
        ("google.rpc.retryinfo-bin", retry.SerializeToString()),
    )


async def _abort_retry(
    context: aio.ServicerContext[Any, Any], message: str, retry_after: float
) -> None:
    code = grpc.StatusCode.UNAVAILABLE
    await context.abort(
        code, message, trailing_metadata=_retry_trailers(code, message, retry_after)
    )


def _metadata(context: aio.ServicerContext[Any, Any], key: str) -> str | None:
    for name, value in context.invocation_metadata() or ():
        if name == key:
            return value if isinstance(value, str) else value.decode()
    return None


def _export_method(
    service: IngestService, signal: Signal
) -> Callable[[bytes, aio.ServicerContext[Any, Any]], Awaitable[bytes]]:
    async def export(body: bytes, context: aio.ServicerContext[Any, Any]) -> bytes:
        try:
            result = await service.export(
                signal,
                body,
                content_type="application/x-protobuf",
                content_encoding=None,  # gRPC has already inflated a compressed message
                transport="grpc",
                authorization=_metadata(context, "authorization"),
            )
        except Overloaded as exc:
            await _abort_retry(context, str(exc), exc.retry_after)
            raise AssertionError("unreachable") from exc  # abort raises
        except IngestError as exc:
            await context.abort(grpc.StatusCode[exc.grpc_code], str(exc))
            raise AssertionError("unreachable") from exc
        except TransientStoreError as exc:
            await _abort_retry(context, f"store unavailable, retry: {exc}", 1.0)
            raise AssertionError("unreachable") from exc
        except StoreError as exc:
            log.exception("store failed on gRPC %s export", signal)
            await context.abort(grpc.StatusCode.INTERNAL, f"store failed: {exc}")
            raise AssertionError("unreachable") from exc
        except Exception as exc:  # a bug: answer INTERNAL (as HTTP answers 500), not UNKNOWN
            log.exception("unexpected error on gRPC %s export", signal)
            await context.abort(grpc.StatusCode.INTERNAL, f"internal error: {type(exc).__name__}")
            raise AssertionError("unreachable") from exc
        return encode_export_response(
            signal, rejected=result.rejected, error_message=result.error_message,
            encoding="protobuf",
        )  # fmt: skip

    return export


def create_grpc_server(
    service: IngestService,
    address: str,
    *,
    credentials: grpc.ServerCredentials | None = None,
) -> tuple[aio.Server, int]:
    """An aio server with the three OTLP services bound to ``address``; returns it and its port.

    Call inside the event loop that will run it; start it with ``await server.start()``.
    """
    limit = service.settings.max_decompressed_bytes
    server = aio.server(
        options=[
            ("grpc.max_receive_message_length", limit),
            ("grpc.max_send_message_length", 4 * 2**20),
        ]
    )
    handlers = [
        grpc.method_handlers_generic_handler(
            name, {"Export": grpc.unary_unary_rpc_method_handler(_export_method(service, signal))}
        )
        for signal, name in SERVICES.items()
    ]
    server.add_generic_rpc_handlers(handlers)
    if credentials is None:
        port = server.add_insecure_port(address)
    else:
        port = server.add_secure_port(address, credentials)
    return server, port
