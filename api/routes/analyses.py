"""``/api/v1/analyses``: every analysis of `flaglens analyze`, answering what ``--format json``
prints."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request

from analytics.analyses import ANALYSES, DEFAULT_CORRECTION, Correction
from api import params
from api.errors import NotFound
from api.guard import QueryGuard

AnalysisName = Literal[
    "budgets", "latency", "cohorts", "changes", "mutations", "drift", "contracts"
]


def router(guard: QueryGuard) -> APIRouter:
    routes = APIRouter(prefix="/api/v1/analyses", tags=["analyses"])

    @routes.get("", summary="The analyses this API answers")
    def list_analyses(request: Request) -> dict[str, list[str]]:
        params.only(request, ())
        return {"analyses": list(ANALYSES)}

    @routes.get(
        "/{name}",
        summary="Run one analysis",
        description="The rows `flaglens analyze NAME --format json` prints for the same "
        "window, filters and options.",
    )
    def analyze(
        request: Request,
        name: str,
        start: Annotated[
            str | None, Query(alias="from", description="ISO-8601, now, now-6h")
        ] = None,
        end: Annotated[str | None, Query(alias="to", description="ISO-8601, now, now-6h")] = None,
        service: Annotated[str | None, Query(description="only this service")] = None,
        environment: Annotated[str | None, Query(description="only this environment")] = None,
        bucket: Annotated[str | None, Query(description="time bucket for series, e.g. 1h")] = None,
        by: Annotated[str | None, Query(description="latency grouping, comma separated")] = None,
        compare: Annotated[bool, Query(description="cohorts: against the previous window")] = False,
        rates: Annotated[bool, Query(description="contracts: rates, not each error")] = False,
        correction: Annotated[
            Correction,
            Query(
                description="changes, cohorts with compare: the correction over every test "
                "ranked together, bh (Benjamini-Hochberg, the default) or holm"
            ),
        ] = DEFAULT_CORRECTION,
    ) -> list[dict[str, Any]]:
        params.only(request, params.ANALYSIS_PARAMS)
        if name not in ANALYSES:
            raise NotFound(f"no analysis {name!r}; analyses are: {', '.join(ANALYSES)}")
        query = params.analysis_query(
            start=start, end=end, service=service, environment=environment, bucket=bucket,
            by=by, compare=compare, rates=rates, correction=correction,
        )  # fmt: skip
        return guard.run(lambda session: session.analyze(name, query))

    return routes
