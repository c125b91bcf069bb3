"""``/api/v1/reports/weekly``: the weekly report's data (what ``report.json`` holds)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from analytics.errors import AnalyticsError
from api import params
from api.errors import BadRequest
from api.guard import QueryGuard
from reports.weekly import build_weekly, last_complete_week, parse_week


def router(guard: QueryGuard) -> APIRouter:
    routes = APIRouter(prefix="/api/v1/reports", tags=["reports"])

    @routes.get("/weekly", summary="The weekly report of the last complete ISO week")
    def last_week(request: Request) -> dict[str, Any]:
        params.only(request, ())
        return weekly(request, last_complete_week())

    @routes.get("/weekly/{week}", summary="The weekly report of one ISO week, e.g. 2026-W47")
    def weekly(request: Request, week: str) -> dict[str, Any]:
        params.only(request, ())
        try:
            parse_week(week)
        except AnalyticsError as exc:
            raise BadRequest(str(exc)) from exc
        return guard.run(lambda session: build_weekly(session, week))

    return routes
