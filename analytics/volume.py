"""Decision volume and acceptance: how much policy-decision traffic arrived, and how much of it
kept its contract."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import duckdb

from analytics.windows import TimeWindow, bucket_index


@dataclass(frozen=True, slots=True)
class VolumeBucket:
    time: datetime | None
    accepted: int  # decisions stored
    rejected: int  # decision events quarantined

    @property
    def acceptance_rate(self) -> float | None:
        total = self.accepted + self.rejected
        return self.accepted / total if total else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "time": self.time.isoformat() if self.time else None,
            "accepted": self.accepted,
            "rejected": self.rejected,
            "acceptance_rate": self.acceptance_rate,
        }


def decision_volume(
    cursor: duckdb.DuckDBPyConnection,
    window: TimeWindow,
    bucket: timedelta | None = None,
    *,
    service: str | None = None,
    environment: str | None = None,
) -> list[VolumeBucket]:
    """Accepted and quarantined decision events per bucket (one total row without a bucket)."""
    filters = ""
    params: dict[str, Any] = {"start": window.start, "end": window.end}
    if service:
        filters += " AND service_name = $service"
        params["service"] = service
    if environment:
        filters += " AND environment = $environment"
        params["environment"] = environment
    b = "NULL::BIGINT" if bucket is None else bucket_index("t", bucket)
    rows = cursor.execute(
        f"""
        SELECT {b} AS b, count(*) FILTER (WHERE ok), count(*) FILTER (WHERE NOT ok) FROM (
            SELECT time AS t, true AS ok FROM decisions
            WHERE time >= $start AND time < $end {filters}
            UNION ALL
            SELECT coalesce(time, quarantined_at), false FROM quarantine
            WHERE event_name = 'feature_flag.evaluation'
              AND coalesce(time, quarantined_at) >= $start
              AND coalesce(time, quarantined_at) < $end {filters}
        ) GROUP BY b ORDER BY b
        """,  # noqa: S608 - filters from fixed text
        params,
    ).fetchall()
    if bucket is None and not rows:
        return [VolumeBucket(None, 0, 0)]
    return [
        VolumeBucket(None if k is None or bucket is None else window.start + k * bucket,
                     int(a), int(r))
        for k, a, r in rows
    ]  # fmt: skip


def known_values(cursor: duckdb.DuckDBPyConnection, column: str) -> list[str]:
    """Distinct services or environments seen in decisions and spans (for filter menus)."""
    if column not in ("service_name", "environment"):
        raise ValueError(f"not a filter column: {column}")
    rows = cursor.execute(
        f"SELECT DISTINCT v FROM (SELECT DISTINCT {column} AS v FROM decisions "  # noqa: S608
        f"UNION SELECT DISTINCT {column} FROM spans) WHERE v IS NOT NULL ORDER BY v"
    ).fetchall()
    return [r[0] for r in rows]
