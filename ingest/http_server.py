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
from starlette.requests import ClientDisconnect

from ingest.decode import SUPPORTED_MEDIA_TYPES, encode_export_response, encode_status
from ingest.errors import (
    IngestError,
    Overloaded,
    PayloadTooLarge,
    Unauthenticated,
    UnsupportedMediaType,
)
from ingest.inflight import Charge
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
    status: int,
    message: str,
    encoding: Encoding,
    *,
    retry_after: float | None = None,
    close: bool = False,
) -> Response:
    """A failure answer: ``google.rpc.Status`` in the given encoding (``close``: and the
    connection closed after it)."""
    headers = {}
    if retry_after is not None:
        headers["Retry-After"] = str(max(1, math.ceil(retry_after)))
    if close:
        headers["Connection"] = "close"
    body = encode_status(_GRPC_CODES.get(status, 2), message, encoding)
    return Response(body, status_code=status, media_type=_MEDIA_TYPE[encoding], headers=headers)


class ClientGone(Exception):
    """The client closed the connection before its body was complete (nobody to answer)."""


async def _read_body(request: Request, limit: int, charge: Charge) -> bytes:
    """The request body, refused with 413 as soon as it passes ``limit`` bytes; a body of
    unknown length grows its in-flight ``charge`` as it arrives (Overloaded past the bound).

    Raises:
        ClientGone: the client disconnected mid-body.
    """
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(limit=limit, received=size, stage="body")
            if size > charge.body_bytes:
                charge.reserve_body(size)
            chunks.append(chunk)
    except ClientDisconnect as exc:
        raise ClientGone(f"client left after {size} bytes of the body") from exc
    return b"".join(chunks)


def _declared_length(request: Request) -> int | None:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isascii() and declared.isdigit():
        return int(declared)
    return None


def create_app(service: IngestService) -> FastAPI:
    """Build the OTLP/HTTP app; the caller owns the service's start and close."""
    app = FastAPI(title="flaglens OTLP receiver", docs_url=None, redoc_url=None)
    app.state.service = service
    limit = service.settings.max_body_bytes

    def refused(signal: Signal, request: Request, exc: IngestError, declared: int | None) -> None:
        service.refuse_unread(
            signal, "http", exc,
            content_type=request.headers.get("content-type"),
            content_encoding=request.headers.get("content-encoding"),
            body_bytes=declared or 0,
        )  # fmt: skip

    async def export(signal: Signal, request: Request) -> Response:
        encoding = _request_encoding(request)
        content_type = request.headers.get("content-type", "")
        declared = _declared_length(request)
        charge: Charge | None = None
        try:
            media = content_type.split(";", 1)[0].strip().lower()
            if media not in SUPPORTED_MEDIA_TYPES:
                raise UnsupportedMediaType(received=content_type or None)
            if declared is not None and declared > limit:
                raise PayloadTooLarge(limit=limit, received=declared, stage="body")
            if service.tokens is not None:  # no body is read for a client that may not write
                service.tokens.writer(request.headers.get("authorization"))
            # before a byte of the body is read: refused here, it is never held
            charge = service.admit(declared)
            body = await _read_body(request, limit, charge)
        except ClientGone as exc:
            log.debug("%s export abandoned: %s", signal, exc)
            if charge is not None:
                charge.release()
            return Response(status_code=400)  # nobody reads it
        except IngestError as exc:  # refused before the service saw it: count it here
            if charge is not None:
                charge.release()
            refused(signal, request, exc, declared)
            if isinstance(exc, Overloaded):
                return status_response(exc.status, str(exc), encoding, retry_after=exc.retry_after)
            # a body too large is not read to its end: close rather than drain it
            return status_response(
                exc.status, str(exc), encoding, close=isinstance(exc, PayloadTooLarge)
            )
        try:
            result = await service.export(
                signal,
                body,
                content_type=content_type,
                content_encoding=request.headers.get("content-encoding"),
                transport="http",
                authorization=request.headers.get("authorization"),
                charge=charge,
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
        finally:
            charge.release()
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

    def may_see_detail(request: Request) -> bool:
        """With a token file, /metrics and the detail of /healthz take a token (any of the
        file's): they name contracts, services' counters and the database's path."""
        if service.tokens is None:
            return True
        try:
            service.tokens.authenticate(request.headers.get("authorization"))
        except Unauthenticated:
            return False
        return True

    @app.get("/healthz")
    async def healthz(request: Request) -> JSONResponse:
        problem = service.writer.problem()
        status = "ok" if problem is None else "failing"
        code = 200 if problem is None else 503
        if not may_see_detail(request):
            return JSONResponse({"status": status}, status_code=code)
        return JSONResponse(
            {
                "status": status,
                "problem": problem,
                "writer": service.writer.stats().as_dict(),
                "inflight": service.inflight.snapshot().as_dict(),
                "decode_workers": {
                    "processes": service.preparers.workers,
                    "restarts": service.preparers.restarts,
                },
                "connections": service.connection_stats(),
                "ingest": service.telemetry.snapshot(),
                "contracts": service.reloader.snapshot(),
            },
            status_code=code,
        )

    @app.get("/metrics")
    async def metrics(request: Request) -> Response:
        if not may_see_detail(request):
            return status_response(401, "/metrics takes a bearer token of the token file", "json")
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
