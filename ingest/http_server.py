"""The OTLP/HTTP receiver: a FastAPI app over an :class:`~ingest.service.IngestService`.

Answers follow the OTLP/HTTP specification: 200 with an ``Export*ServiceResponse`` (partial
success when records were rejected) in the request's encoding; failures carry a
``google.rpc.Status`` body, also in the request's encoding (JSON when it cannot be told);
413/415/400 for bodies that cannot be used, 503 with ``Retry-After`` when the writer is full.
"""

from __future__ import annotations

import logging
import math
from typing import Literal

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ingest.decode import SUPPORTED_MEDIA_TYPES, encode_export_response, encode_status
from ingest.errors import IngestError, Overloaded, PayloadTooLarge, UnsupportedMediaType
from ingest.pipeline import Signal
from ingest.service import IngestService
from store.errors import StoreError, TransientStoreError

log = logging.getLogger(__name__)

Encoding = Literal["protobuf", "json"]
OPA_DECISION_LOGS_PATH = "/v1/opa/logs"
"""Where Open Policy Agent's decision-log plugin uploads (its ``decision_logs.resource``)."""

_MEDIA_TYPE = {"protobuf": "application/x-protobuf", "json": "application/json"}
# google.rpc.Code numbers for the statuses this receiver answers with
_GRPC_CODES = {
    400: 3,  # INVALID_ARGUMENT
    401: 16,  # UNAUTHENTICATED
    403: 7,  # PERMISSION_DENIED
    404: 5,  # NOT_FOUND
    405: 12,  # UNIMPLEMENTED
    413: 8,  # RESOURCE_EXHAUSTED
    415: 3,  # INVALID_ARGUMENT
    429: 8,  # RESOURCE_EXHAUSTED
    500: 13,  # INTERNAL
    503: 14,  # UNAVAILABLE
}


def _request_encoding(request: Request) -> Encoding:
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    return "protobuf" if media == "application/x-protobuf" else "json"


def status_response(
    status: int, message: str, encoding: Encoding, *, retry_after: float | None = None
) -> Response:
    """A failure answer: ``google.rpc.Status`` in the given encoding."""
    headers = {}
    if retry_after is not None:
        headers["Retry-After"] = str(max(1, math.ceil(retry_after)))
    body = encode_status(_GRPC_CODES.get(status, 2), message, encoding)
    return Response(body, status_code=status, media_type=_MEDIA_TYPE[encoding], headers=headers)


async def _read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it passes ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(limit=limit, received=int(declared), stage="body")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(limit=limit, received=size, stage="body")
        chunks.append(chunk)
    return b"".join(chunks)


def create_app(service: IngestService) -> FastAPI:
    """Build the OTLP/HTTP app; the caller owns the service's start and close."""
    app = FastAPI(title="flaglens OTLP receiver", docs_url=None, redoc_url=None)
    app.state.service = service
    limit = service.settings.max_body_bytes

    async def export(signal: Signal, request: Request) -> Response:
        encoding = _request_encoding(request)
        content_type = request.headers.get("content-type", "")
        try:
            media = content_type.split(";", 1)[0].strip().lower()
            if media not in SUPPORTED_MEDIA_TYPES:
                raise UnsupportedMediaType(received=content_type or None)
            body = await _read_body(request, limit)
        except IngestError as exc:  # refused before the service saw it: count it here
            service.telemetry.record_request(signal, "http", exc.status)
            return status_response(exc.status, str(exc), encoding)
        try:
            result = await service.export(
                signal,
                body,
                content_type=content_type,
                content_encoding=request.headers.get("content-encoding"),
                transport="http",
                authorization=request.headers.get("authorization"),
            )
        except Overloaded as exc:
            return status_response(exc.status, str(exc), encoding, retry_after=exc.retry_after)
        except IngestError as exc:
            return status_response(exc.status, str(exc), encoding)
        except TransientStoreError as exc:
            return status_response(503, f"store unavailable, retry: {exc}", encoding, retry_after=1)
        except StoreError as exc:
            log.exception("store failed on %s export", signal)
            return status_response(500, f"store failed: {exc}", encoding)
        if signal == "opa":  # OPA reads the status only; say what happened for people
            return JSONResponse(
                {
                    "received": result.received,
                    "rejected": result.rejected,
                    "duplicates": result.duplicates,
                    "error_message": result.error_message,
                }
            )
        body_out = encode_export_response(
            signal, rejected=result.rejected, error_message=result.error_message, encoding=encoding
        )
        return Response(body_out, status_code=200, media_type=_MEDIA_TYPE[encoding])

    @app.post("/v1/logs")
    async def export_logs(request: Request) -> Response:
        return await export("logs", request)

    @app.post("/v1/metrics")
    async def export_metrics(request: Request) -> Response:
        return await export("metrics", request)

    @app.post("/v1/traces")
    async def export_traces(request: Request) -> Response:
        return await export("traces", request)

    @app.post(OPA_DECISION_LOGS_PATH)
    async def export_opa_decisions(request: Request) -> Response:
        return await export("opa", request)

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        stats = service.writer.stats()
        return JSONResponse(
            {
                "status": "ok",
                "writer": stats.as_dict(),
                "decode_workers": {
                    "processes": service.preparers.workers,
                    "restarts": service.preparers.restarts,
                },
                "ingest": service.telemetry.snapshot(),
                "contracts": service.reloader.snapshot(),
            }
        )

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(service.telemetry.prometheus_text(), media_type="text/plain; version=0.0.4")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 404:
            message = (
                f"no OTLP endpoint at {request.url.path}; "
                "flaglens serves POST /v1/logs, /v1/traces, /v1/metrics and (OPA decision "
                f"logs) {OPA_DECISION_LOGS_PATH}"
            )
        elif exc.status_code == 405:
            message = (
                f"{request.method} is not allowed on {request.url.path}; OTLP exports use POST"
            )
        else:
            message = str(exc.detail)
        return status_response(exc.status_code, message, _request_encoding(request))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unexpected error on %s", request.url.path)
        return status_response(
            500, f"internal error: {type(exc).__name__}", _request_encoding(request)
        )

    return app
