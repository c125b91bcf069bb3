"""Contract health: how many records broke which contract, where, and how, over time.

Violations come from ``quarantine`` (one row per rejected record, each with every reason in
``errors``); the rate divides by everything the service sent for that contract in the same
bucket (accepted decisions, changes, engagement, plus the violations themselves).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import duckdb

from analytics.windows import TimeWindow, bucket_index, bucket_start

# the accepted rows per contract family, for the denominator
_ACCEPTED = " UNION ALL ".join(
    "SELECT service_name, contract_id, {bucket} AS k, count(*) AS n FROM "  # noqa: S608
    f"{table} WHERE time >= $start AND time < $end {{filters}} GROUP BY ALL"
    for table in ("decisions", "policy_changes", "engagement")
)


@dataclass(frozen=True, slots=True)
class ViolationRow:
    service: str | None
    contract: str | None
    version: str | None
    error: str
    bucket: datetime | None
    violations: int  # rejected records with this error

    def as_dict(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "contract": self.contract,
            "version": self.version,
            "error": self.error,
            "bucket": self.bucket.isoformat() if self.bucket else None,
            "violations": self.violations,
        }


def violations(
    cursor: duckdb.DuckDBPyConnection,
    window: TimeWindow,
    *,
    bucket: timedelta | None = None,
    service: str | None = None,
    environment: str | None = None,
) -> list[ViolationRow]:
    """Violations per service, contract, version and error (pointer: message), per bucket.

    Times are the records' own event times, or the moment flaglens rejected them when a record
    had no usable time, so that violations line up with the accepted traffic around them.
    """
    where = ["coalesce(time, quarantined_at) >= $start", "coalesce(time, quarantined_at) < $end"]
    params: dict[str, Any] = {"start": window.start, "end": window.end}
    if service:
        where.append("service_name = $service")
        params["service"] = service
    if environment:
        where.append("environment = $environment")
        params["environment"] = environment
    index, start = "NULL::BIGINT", "NULL::TIMESTAMPTZ"
    if bucket is not None:
        bucket = max(bucket, timedelta(minutes=1))
        index = bucket_index("coalesce(time, quarantined_at)", bucket)
        start = bucket_start("k", bucket)
    rows = cursor.execute(
        f"""
        SELECT service_name, contract, version, error, {start} AS bucket, n FROM (
            SELECT service_name, coalesce(e->>'contract', contract_id) AS contract,
                   coalesce(e->>'version', contract_version) AS version,
                   coalesce(e->>'pointer', '') || ': ' || coalesce(e->>'message', '?') AS error,
                   {index} AS k, count(*) AS n
            FROM (
                SELECT *, unnest(CAST(errors AS JSON[])) AS e
                FROM quarantine WHERE {" AND ".join(where)}
            )
            GROUP BY ALL
        ) ORDER BY bucket NULLS FIRST, n DESC
        """,  # noqa: S608 - clauses from fixed text
        params,
    ).fetchall()
    return [ViolationRow(s, c, v, e, b, int(n)) for s, c, v, e, b, n in rows]


@dataclass(frozen=True, slots=True)
class ContractRate:
    service: str | None
    contract: str | None
    accepted: int
    rejected: int
    bucket: datetime | None = None  # start of the time bucket (None: the whole window)

    @property
    def rate(self) -> float:
        total = self.accepted + self.rejected
        return self.rejected / total if total else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "contract": self.contract,
            "bucket": self.bucket.isoformat() if self.bucket else None,
            "accepted": self.accepted,
            "rejected": self.rejected,
            "violation_rate": self.rate,
        }


def violation_rates(
    cursor: duckdb.DuckDBPyConnection,
    window: TimeWindow,
    *,
    bucket: timedelta | None = None,
    service: str | None = None,
    environment: str | None = None,
) -> list[ContractRate]:
    """Rejected / (accepted + rejected) records per service and contract family in ``window``.

    The contract family is the contract id without its module suffix for decisions
    (``feature_flag.evaluation``), so that a record rejected before its module was known
    still counts against the family. With ``bucket``, one row per family and time bucket that
    saw any record (accepted rows aggregate per bucket before the join, so the cost stays one
    pass over each table).
    """
    filters = ""
    params: dict[str, Any] = {"start": window.start, "end": window.end}
    if service:
        filters += " AND service_name = $service"
        params["service"] = service
    if environment:
        filters += " AND environment = $environment"
        params["environment"] = environment
    accepted_k = rejected_k = "0"  # one slot: the whole window (NULL would not join)
    bucket_sql = "NULL::TIMESTAMPTZ"
    if bucket is not None:
        bucket = max(bucket, timedelta(minutes=1))
        accepted_k = bucket_index("time", bucket)
        rejected_k = bucket_index("coalesce(time, quarantined_at)", bucket)
        bucket_sql = bucket_start("k", bucket)
    family = "split_part(contract_id, '.', 1) || '.' || split_part(contract_id, '.', 2)"
    rows = cursor.execute(
        f"""
        WITH accepted AS (
            SELECT service_name, {family} AS family, k, sum(n) AS n
            FROM ({_ACCEPTED.format(filters=filters, bucket=accepted_k)}) GROUP BY ALL
        ), rejected AS (
            SELECT service_name, coalesce({family}, event_name) AS family, {rejected_k} AS k,
                   count(*) AS n
            FROM quarantine WHERE coalesce(time, quarantined_at) >= $start
                AND coalesce(time, quarantined_at) < $end {filters}
            GROUP BY ALL
        )
        SELECT service_name, family, {bucket_sql} AS bucket, coalesce(a.n, 0), coalesce(r.n, 0)
        FROM accepted a FULL JOIN rejected r USING (service_name, family, k)
        ORDER BY bucket NULLS FIRST, coalesce(r.n, 0) DESC, service_name, family
        """,  # noqa: S608 - clauses from fixed text
        params,
    ).fetchall()
    return [ContractRate(s, f, int(a), int(r), b) for s, f, b, a, r in rows]
