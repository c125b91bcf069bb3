"""``/api/v1/quarantine``: the quarantined records, newest first, a page at a time."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request

from analytics.analyses import json_ready
from analytics.quarantine import quarantined_records
from api import params
from api.guard import QueryGuard

_PARAMS = (*params.WINDOW_PARAMS, "service", "contract", "limit", "offset")


def next_page(request: Request, offset: int, limit: int, got: int) -> str | None:
    """The URL of the next page (None when this one was the last)."""
    if got < limit:
        return None
    query = dict(request.query_params) | {"offset": str(offset + limit), "limit": str(limit)}
    return f"{request.url.path}?{urlencode(query)}"


def router(guard: QueryGuard) -> APIRouter:
    routes = APIRouter(prefix="/api/v1", tags=["quarantine"])

    @routes.get(
        "/quarantine",
        summary="Quarantined records, newest first",
        description="Records that broke their contract (or had none), with every reason and "
        "the whole record. `next` is the URL of the following page, or null.",
    )
    def quarantine(
        request: Request,
        start: Annotated[str | None, Query(alias="from")] = None,
        end: Annotated[str | None, Query(alias="to")] = None,
        service: str | None = None,
        contract: Annotated[str | None, Query(description="contract id")] = None,
        limit: int | None = None,
        offset: int | None = None,
    ) -> dict[str, Any]:
        params.only(request, _PARAMS)
        window = params.window(start, end)
        size, first = params.page(limit, offset, guard.limits.page_max)
        records = guard.run(
            lambda session: quarantined_records(
                session.cursor(), window, service=service, contract=contract, limit=size,
                offset=first,
            )
        )  # fmt: skip
        return {
            "records": json_ready(records),
            "next": next_page(request, first, size, len(records)),
        }

    return routes
