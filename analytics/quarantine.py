"""Quarantined records, newest first, a page at a time (the read API and the client list them;
:mod:`analytics.contract_health` counts them)."""

from __future__ import annotations

import json
from typing import Any

import duckdb

from analytics.windows import TimeWindow

_COLUMNS = ("quarantined_at", "request_id", "signal", "event_name", "service_name",
            "environment", "time", "contract_id", "contract_version", "status", "errors",
            "record")  # fmt: skip


def quarantined_records(
    cursor: duckdb.DuckDBPyConnection,
    window: TimeWindow,
    *,
    service: str | None = None,
    contract: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """One page of the records quarantined in ``window`` (by record time, else quarantine
    time), newest first; ``errors`` and ``record`` parsed, values as stored."""
    rows = cursor.execute(
        f"SELECT {', '.join(_COLUMNS)} FROM quarantine "  # noqa: S608 - constant columns
        "WHERE coalesce(time, quarantined_at) >= $start AND coalesce(time, quarantined_at) < $end "
        "AND ($service IS NULL OR service_name = $service) "
        "AND ($contract IS NULL OR contract_id = $contract) "
        "ORDER BY quarantined_at DESC, request_id DESC, record LIMIT $limit OFFSET $offset",
        {
            "start": window.start,
            "end": window.end,
            "service": service,
            "contract": contract,
            "limit": limit,
            "offset": offset,
        },
    ).fetchall()
    records = []
    for row in rows:
        record = dict(zip(_COLUMNS, row, strict=True))
        record["errors"] = json.loads(record["errors"])
        record["record"] = json.loads(record["record"])
        records.append(record)
    return records
