"""The read API: a FastAPI app over an analytics session, under ``/api/v1``.

Every endpoint reads through a :class:`~api.guard.QueryGuard` (own cursors, a slot, a time
limit). Every failure is ``{"error": code, "detail": message}`` with its status (see
:mod:`api.errors`): a bad time, filter or parameter is a 400, never a 500. The OpenAPI
description is at ``/api/v1/openapi.json`` and browsable at ``/api/v1/docs``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import duckdb
from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from alerts.rules import DEFAULT_RULES_FILE, AlertConfig, load_alert_config
from analytics.errors import AnalyticsError
from analytics.session import Session
from api.errors import ApiError
from api.guard import QueryGuard
from api.limits import ApiLimits
from api.params import PREFIX
from api.routes import alerts, analyses, contracts, exports, quarantine, reports
from contracts.errors import ContractError
from store.connection import translate
from store.errors import StoreError, TransientStoreError

log = logging.getLogger(__name__)


def error_response(
    status: int, code: str, detail: str, *, retry_after: float | None = None
) -> JSONResponse:
    """The one shape of every failure the read listener answers."""
    headers = {}
    if retry_after is not None:
        headers["Retry-After"] = str(max(1, math.ceil(retry_after)))
    return JSONResponse({"error": code, "detail": detail}, status_code=status, headers=headers)


def _validation_detail(exc: RequestValidationError) -> str:
    problems = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error.get("loc", ()) if part != "query")
        problems.append(f"{where}: {error.get('msg')} (got {error.get('input')!r})")
    return "; ".join(problems) or "invalid request"


def create_api(
    session: Session,
    limits: ApiLimits | None = None,
    *,
    alert_rules: AlertConfig | None = None,
    dashboards_url: str = "",
    routers: Sequence[APIRouter] = (),
) -> FastAPI:
    """Build the read API over ``session``'s store and configuration.

    Args:
        session: where to read (its cursor factory) and the SLO, governance and key files.
        limits: slots, time limit, export cap (default :class:`ApiLimits`).
        alert_rules: the rules a dry run evaluates when none are sent (default: built-in).
        dashboards_url: base URL for the dashboard links in alert annotations.
        routers: more endpoints the application adds (the server's admin endpoints).
    """
    limits = limits or ApiLimits()
    guard = QueryGuard(session.cursor, session.config, limits)
    app = FastAPI(
        title="flaglens read API",
        version="1",
        description="Analyses, the weekly report, quarantined records, alerts and row exports "
        "of a running `flaglens serve`. With auth on, send a read token: "
        "`Authorization: Bearer <token>`.",
        openapi_url=f"{PREFIX}/openapi.json",
        docs_url=f"{PREFIX}/docs",
        redoc_url=None,
    )
    app.state.guard = guard
    rules = alert_rules or load_alert_config(DEFAULT_RULES_FILE)
    app.include_router(analyses.router(guard))
    app.include_router(reports.router(guard))
    app.include_router(quarantine.router(guard))
    app.include_router(alerts.router(guard, rules, dashboards_url=dashboards_url))
    app.include_router(exports.router(guard))
    app.include_router(contracts.router(guard))
    for extra in routers:
        app.include_router(extra)

    @app.exception_handler(ApiError)
    async def api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.detail, retry_after=exc.retry_after)

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(400, "bad_request", _validation_detail(exc))

    @app.exception_handler(AnalyticsError)
    async def analytics_error(_request: Request, exc: AnalyticsError) -> JSONResponse:
        return error_response(400, "bad_request", str(exc))

    @app.exception_handler(OverflowError)
    async def overflow(_request: Request, exc: OverflowError) -> JSONResponse:
        # datetime arithmetic past year 1 or 9999: only a time range near those ends gets here
        return error_response(
            400, "bad_request", f"the time range is out of bounds for this query: {exc}"
        )

    @app.exception_handler(ContractError)
    async def contract_error(_request: Request, exc: ContractError) -> JSONResponse:
        return error_response(400, "bad_request", str(exc))

    @app.exception_handler(StoreError)
    async def store_error(request: Request, exc: StoreError) -> JSONResponse:
        if isinstance(exc, TransientStoreError):
            return error_response(503, "unavailable", str(exc), retry_after=1)
        log.error("read API: store failed on %s: %s", request.url.path, exc)
        return error_response(500, "internal", f"the store failed: {exc}")

    @app.exception_handler(duckdb.Error)
    async def duckdb_error(request: Request, exc: duckdb.Error) -> JSONResponse:
        return await store_error(request, translate(exc))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 404:
            return error_response(
                404, "not_found",
                f"no endpoint at {request.url.path}; see {PREFIX}/docs for the endpoints",
            )  # fmt: skip
        if exc.status_code == 405:
            return error_response(
                405, "method_not_allowed", f"{request.method} is not allowed on {request.url.path}"
            )
        return error_response(exc.status_code, "http_error", str(exc.detail))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("read API: unexpected error on %s", request.url.path)
        return error_response(500, "internal", f"internal error: {type(exc).__name__}")

    return app
