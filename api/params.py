"""Query parameters → the analytics' own values; anything unusable is a 400 that says why.

Every endpoint names the parameters it takes; one it does not take is refused rather than
ignored, so a misspelt filter (``servce=checkout``) never silently widens a query.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import TYPE_CHECKING

from analytics.analyses import DEFAULT_CORRECTION, Query
from analytics.errors import AnalyticsError
from analytics.windows import TimeWindow, parse_duration
from api.errors import BadRequest

if TYPE_CHECKING:
    from fastapi import Request

PREFIX = "/api/v1"
WINDOW_PARAMS = ("from", "to")
ANALYSIS_PARAMS = (*WINDOW_PARAMS, "service", "environment", "bucket", "by", "compare", "rates",
                   "correction")  # fmt: skip
DEFAULT_FROM = "now-7d"
# the largest OFFSET DuckDB takes (a signed 64-bit integer)
MAX_OFFSET = (1 << 63) - 1


def only(request: Request, allowed: Iterable[str]) -> None:
    """Refuse parameters the endpoint does not take."""
    known = set(allowed)
    unknown = sorted(set(request.query_params) - known)
    if unknown:
        raise BadRequest(
            f"unknown parameter(s) {', '.join(unknown)} on {request.url.path}; it takes: "
            f"{', '.join(sorted(known)) or 'none'}"
        )


def window(start: str | None, end: str | None) -> TimeWindow:
    """The window of ``from``/``to`` (ISO-8601, ``now``, ``now-<duration>``)."""
    try:
        return TimeWindow.parse(start or DEFAULT_FROM, end or "now")
    except AnalyticsError as exc:
        raise BadRequest(str(exc)) from exc


def analysis_query(
    *,
    start: str | None,
    end: str | None,
    service: str | None,
    environment: str | None,
    bucket: str | None,
    by: str | None,
    compare: bool,
    rates: bool,
    correction: str,
) -> Query:
    """The :class:`Query` of an analysis request, as `flaglens analyze` builds it from flags."""
    try:
        return Query(
            window=window(start, end),
            service=service or None,
            environment=environment or None,
            bucket=parse_duration(bucket) if bucket else None,
            by=tuple(part.strip() for part in (by or "service").split(",") if part.strip()),
            compare=compare,
            rates=rates,
            correction=correction,
        )
    except AnalyticsError as exc:
        raise BadRequest(str(exc)) from exc


def analysis_params(query: Query) -> dict[str, str]:
    """The request parameters that ask for ``query`` (absolute instants; what the client sends)."""
    params = {"from": query.window.start.isoformat(), "to": query.window.end.isoformat()}
    if query.service is not None:
        params["service"] = query.service
    if query.environment is not None:
        params["environment"] = query.environment
    if query.bucket is not None:
        params["bucket"] = f"{query.bucket // timedelta(milliseconds=1)}ms"
    if query.by != ("service",):
        params["by"] = ",".join(query.by)
    if query.compare:
        params["compare"] = "true"
    if query.rates:
        params["rates"] = "true"
    if query.correction != DEFAULT_CORRECTION:
        params["correction"] = query.correction
    return params


def page(limit: int | None, offset: int | None, page_max: int) -> tuple[int, int]:
    """``(limit, offset)`` of a paged list; limit defaults to 100 and is at most ``page_max``."""
    wanted = 100 if limit is None else limit
    if wanted < 1 or wanted > page_max:
        raise BadRequest(f"limit {wanted} is not between 1 and {page_max}")
    start = offset or 0
    if not 0 <= start <= MAX_OFFSET:
        raise BadRequest(f"offset {start} is not between 0 and {MAX_OFFSET:,}")
    return wanted, start
