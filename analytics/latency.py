"""Latency percentiles of server spans, grouped the way a question needs them.

Percentiles are computed by DuckDB (``quantile_cont``) over the spans of each group; grouping by
flag variant or policy version joins each span to the decisions made inside it (decisions carry
the trace and span id of the request that evaluated them).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import duckdb

from analytics.errors import AnalyticsError
from analytics.windows import TimeWindow, bucket_index

# group name → (SQL expression, needs the decisions join)
GROUPS: dict[str, tuple[str, bool]] = {
    "service": ("s.service_name", False),
    "environment": ("s.environment", False),
    "route": ("s.http_route", False),
    "flag": ("d.flag_key", True),
    "variant": ("d.variant", True),
    "version": ("d.flag_version", True),
    "module": ("d.policy_module", True),
    "rule": ("d.rule_id", True),
}


@dataclass(frozen=True, slots=True)
class LatencyRow:
    group: dict[str, str | None]
    bucket: datetime | None
    count: int
    p50: float
    p95: float
    p99: float

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.group,
            "bucket": self.bucket.isoformat() if self.bucket else None,
            "count": self.count,
            "p50_ms": self.p50,
            "p95_ms": self.p95,
            "p99_ms": self.p99,
        }


def latency_percentiles(
    cursor: duckdb.DuckDBPyConnection,
    window: TimeWindow,
    *,
    by: tuple[str, ...] = ("service",),
    bucket: timedelta | None = None,
    service: str | None = None,
    environment: str | None = None,
    flag: str | None = None,
) -> list[LatencyRow]:
    """p50/p95/p99 (ms) of server spans in ``window`` per group (and per time bucket)."""
    unknown = [name for name in by if name not in GROUPS]
    if unknown:
        raise AnalyticsError(f"cannot group latency by {unknown}; choose from {sorted(GROUPS)}")
    if not by:
        raise AnalyticsError(f"latency needs a grouping; choose from {sorted(GROUPS)}")
    repeated = sorted({name for name in by if by.count(name) > 1})
    if repeated:
        raise AnalyticsError(f"latency grouping names {repeated} more than once")
    join = any(GROUPS[name][1] for name in by) or flag is not None
    select = [f"{GROUPS[name][0]} AS {name}" for name in by]
    group_by = list(by)
    params: dict[str, Any] = {"start": window.start, "end": window.end}
    if bucket is not None:
        select.append(f"{bucket_index('s.start_time', bucket)} AS bucket")
        group_by.append("bucket")
    where = ["s.kind = 'server'", "s.start_time >= $start", "s.start_time < $end"]
    if service:
        where.append("s.service_name = $service")
        params["service"] = service
    if environment:
        where.append("s.environment = $environment")
        params["environment"] = environment
    source = "spans s"
    if join:
        # one row per (span, decision): a span counts once per flag it evaluated
        source += " JOIN decisions d ON d.trace_id = s.trace_id AND d.span_id = s.span_id"
        where += ["d.time >= $start - INTERVAL 1 HOUR", "d.time < $end + INTERVAL 1 HOUR"]
        if flag:
            where.append("d.flag_key = $flag")
            params["flag"] = flag
    sql = (
        f"SELECT {', '.join(select)}, count(*) AS n, "  # noqa: S608 - names from GROUPS
        "quantile_cont(s.duration_ms, [0.5, 0.95, 0.99]) AS q "
        f"FROM {source} WHERE {' AND '.join(where)} "
        f"GROUP BY {', '.join(group_by)} ORDER BY {', '.join(group_by)}"
    )
    rows = []
    for values in cursor.execute(sql, params).fetchall():
        group = dict(zip(by, values[: len(by)], strict=True))
        when = window.start + values[len(by)] * bucket if bucket is not None else None
        count, quantiles = values[-2], values[-1]
        rows.append(LatencyRow(group, when, int(count), *map(float, quantiles)))
    return rows


@dataclass(frozen=True, slots=True)
class RequestBucket:
    """Server requests of one service in one time bucket."""

    time: datetime
    requests: int
    errors: int
    p50: float
    p95: float
    p99: float

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "time": self.time.isoformat(),
            "requests": self.requests,
            "errors": self.errors,
            "error_rate": self.error_rate,
            "p50_ms": self.p50,
            "p95_ms": self.p95,
            "p99_ms": self.p99,
        }


def request_series(
    cursor: duckdb.DuckDBPyConnection,
    window: TimeWindow,
    bucket: timedelta,
    *,
    service: str,
    environment: str | None = None,
) -> list[RequestBucket]:
    """Requests, errors and latency percentiles of one service, bucket by bucket."""
    where = "service_name = $service AND kind = 'server' AND start_time >= $start "
    where += "AND start_time < $end"
    params: dict[str, Any] = {"service": service, "start": window.start, "end": window.end}
    if environment:
        where += " AND environment = $environment"
        params["environment"] = environment
    rows = cursor.execute(
        f"SELECT {bucket_index('start_time', bucket)} AS k, count(*), "  # noqa: S608
        "count(*) FILTER (WHERE status_code = 'error' OR coalesce(http_status_code, 0) >= 500), "
        f"quantile_cont(duration_ms, [0.5, 0.95, 0.99]) FROM spans WHERE {where} "
        "GROUP BY k ORDER BY k",
        params,
    ).fetchall()
    return [
        RequestBucket(window.start + k * bucket, int(n), int(e), *map(float, q))
        for k, n, e, q in rows
    ]
