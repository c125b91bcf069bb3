"""OTLP/gRPC: the logs, trace and metrics services, on the same path as OTLP/HTTP.

The methods are registered with generic handlers that hand over the raw request bytes, so a gRPC
export goes through exactly the decoding, limits, contracts and writer of an HTTP one
(:meth:`IngestService.export`). gRPC leaves gzip messages compressed and flaglens inflates them
(with the HTTP path's limits, and ``ingest_log`` records them as sent); gRPC enforces the size
of the message as sent (RESOURCE_EXHAUSTED), the metadata size, the connection cap and the
handshake and idle timeouts. Errors map to the status codes the OTLP specification names; when
the writer is full or the in-flight bound reached, the answer is UNAVAILABLE with a
``google.rpc.RetryInfo`` detail, which OTLP exporters honour before retrying.
"""

from __future__ import annotations

import logging
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, NoReturn

import grpc
from google.protobuf.duration_pb2 import Duration
from google.rpc import error_details_pb2, status_pb2
from grpc import aio

from ingest.decode import encode_export_response
from ingest.errors import IngestError, Overloaded, PayloadTooLarge
from ingest.pipeline import Signal
from ingest.service import IngestService
from ingest.settings import IngestSettings
from store.errors import StoreError, TransientStoreError

log = logging.getLogger(__name__)
Metadata = tuple[tuple[str, bytes], ...]
_PROTOBUF = "application/x-protobuf"
_GZIP_MAGIC = b"\x1f\x8b"
_IDENTITY_AND_GZIP = 0b101  # grpc_compression_algorithm bits: NONE = 0, DEFLATE = 1, GZIP = 2

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


async def _abort(context: aio.ServicerContext[Any, Any], error: IngestError) -> NoReturn:
    if isinstance(error, Overloaded):
        await _abort_retry(context, str(error), error.retry_after)
    else:
        await context.abort(grpc.StatusCode[error.grpc_code], str(error))
    raise AssertionError("unreachable")  # abort raises


async def _first_message(requests: AsyncIterator[bytes]) -> bytes | None:
    """The request message of a unary call (None: gRPC refused it, e.g. over the size limit,
    or the call was cancelled)."""
    async for message in requests:
        return message
    return None


def _export_method(
    service: IngestService, signal: Signal
) -> Callable[[AsyncIterator[bytes], aio.ServicerContext[Any, Any]], Awaitable[bytes]]:
    # A stream-request handler, although exporters make unary calls (the wire is the same):
    # it runs before the message is read, so a request past the in-flight bound is refused
    # without reading it.
    def refused(error: IngestError, body_bytes: int, compressed: bool) -> None:
        service.refuse_unread(
            signal, "grpc", error, content_type=_PROTOBUF,
            content_encoding="gzip" if compressed else None, body_bytes=body_bytes,
        )  # fmt: skip

    async def export(
        requests: AsyncIterator[bytes], context: aio.ServicerContext[Any, Any]
    ) -> bytes:
        authorization = _metadata(context, "authorization")
        try:
            if service.tokens is not None:  # nothing is read for a client that may not write
                service.tokens.writer(authorization)
            charge = service.admit(None)
        except IngestError as exc:
            refused(exc, 0, False)
            await _abort(context, exc)
        try:
            body = await _first_message(requests)
            if body is None:
                limit = service.settings.max_body_bytes
                refused(PayloadTooLarge(limit=limit, received=limit + 1, stage="body"), 0, False)
                return b""  # gRPC has answered RESOURCE_EXHAUSTED (or the client cancelled)
            # gRPC leaves messages compressed (per_message_decompression off): a protobuf
            # request cannot start with the gzip magic (field 3, wire type 7 does not exist)
            compressed = body.startswith(_GZIP_MAGIC)
            try:
                charge.reserve_body(len(body))
            except Overloaded as exc:
                refused(exc, len(body), compressed)
                await _abort(context, exc)
            try:
                result = await service.export(
                    signal,
                    body,
                    content_type=_PROTOBUF,
                    content_encoding="gzip" if compressed else None,
                    transport="grpc",
                    authorization=authorization,
                    charge=charge,
                )
            except IngestError as exc:
                await _abort(context, exc)
            except TransientStoreError as exc:
                await _abort_retry(context, f"store unavailable, retry: {exc}", 1.0)
                raise AssertionError("unreachable") from exc
            except StoreError as exc:
                log.exception("store failed on gRPC %s export", signal)
                await context.abort(grpc.StatusCode.INTERNAL, f"store failed: {exc}")
                raise AssertionError("unreachable") from exc
        except aio.AbortError:
            raise
        except Exception as exc:  # a bug: answer INTERNAL (as HTTP answers 500), not UNKNOWN
            log.exception("unexpected error on gRPC %s export", signal)
            await context.abort(grpc.StatusCode.INTERNAL, f"internal error: {type(exc).__name__}")
            raise AssertionError("unreachable") from exc
        finally:
            charge.release()
        return encode_export_response(
            signal, rejected=result.rejected, error_message=result.error_message,
            encoding="protobuf",
        )  # fmt: skip

    return export


def grpc_options(settings: IngestSettings, max_connections: int) -> list[tuple[str, int]]:
    """The gRPC server's channel arguments: limits as the HTTP listener has them."""
    return [
        # messages arrive as sent: flaglens inflates them, under the same limits as HTTP
        ("grpc.per_message_decompression", 0),
        ("grpc.compression_enabled_algorithms_bitset", _IDENTITY_AND_GZIP),
        ("grpc.max_receive_message_length", settings.max_body_bytes),
        ("grpc.max_send_message_length", 4 * 2**20),
        ("grpc.max_metadata_size", settings.max_header_bytes),
        ("grpc.max_allowed_incoming_connections", max_connections),
        ("grpc.server_handshake_timeout_ms", int(settings.header_timeout * 1000)),
        ("grpc.max_connection_idle_ms", int(settings.grpc_idle_timeout * 1000)),
        # No flow-control windows grown by bandwidth probing: a call that is refused before its
        # message is read then holds no more than a stream's lookahead window in gRPC's buffers
        # (a call that is read opens its window to the size of its message)
        ("grpc.http2.bdp_probe", 0),
    ]


def create_grpc_server(
    service: IngestService,
    address: str,
    *,
    credentials: grpc.ServerCredentials | None = None,
    max_connections: int | None = None,
) -> tuple[aio.Server, int]:
    """An aio server with the three OTLP services bound to ``address``; returns it and its port.

    ``max_connections`` (default: the setting) caps the open connections. Call inside the
    event loop that will run it; start it with ``await server.start()``.
    """
    if max_connections is None:
        max_connections = service.settings.max_connections
    settings = service.settings
    server = aio.server(options=grpc_options(settings, max_connections))
    handlers = [
        grpc.method_handlers_generic_handler(
            name, {"Export": grpc.stream_unary_rpc_method_handler(_export_method(service, signal))}
        )
        for signal, name in SERVICES.items()
    ]
    server.add_generic_rpc_handlers(handlers)
    if credentials is None:
        port = server.add_insecure_port(address)
    else:
        port = server.add_secure_port(address, credentials)
    return server, port
