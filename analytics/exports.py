"""Row exports: the stored rows of one table over a time range and filters, as Arrow batches.

What the read API streams and ``flaglens export`` writes. Each exportable table names the
column that places a row in time and the filters it takes. Rows come in the order they were
stored (DuckDB keeps insertion order for a scan, its ``preserve_insertion_order`` default), so
the same export gives the same rows in the same order, and the same bytes, every time it is
asked for; and they come in Arrow record batches as DuckDB scans, never all at once (sorting
them by time first would hold the whole export before the first batch).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import duckdb
import pyarrow as pa

from analytics.errors import AnalyticsError
from analytics.windows import TimeWindow

DEFAULT_BATCH_ROWS = 8192
Shape = Literal["typed", "flat", "json"]
"""How rows are projected: ``typed`` as stored (Arrow, Parquet), ``flat`` with list and struct
columns as JSON text (CSV), ``json`` as one JSON object a row (NDJSON; JSON columns embedded)."""


class UnknownExport(AnalyticsError, ValueError):
    """A table or filter that exports do not offer; the message lists what they do."""


@dataclass(frozen=True, slots=True)
class ExportTable:
    """One exportable table."""

    time: str
    """SQL for the instant a row belongs to (the range filters on it)."""
    filters: Mapping[str, str] = field(default_factory=dict)
    """Filter name → the column it must equal."""


_COMMON = {"service": "service_name", "environment": "environment"}
# name → table; the filter names are those of `flaglens export` and the API
EXPORT_TABLES: dict[str, ExportTable] = {
    "decisions": ExportTable("time", {**_COMMON, "flag": "flag_key"}),
    "policy_changes": ExportTable("time", {**_COMMON, "flag": "flag_key"}),
    "engagement": ExportTable("time", {**_COMMON, "cohort": "cohort_id"}),
    "spans": ExportTable("start_time", _COMMON),
    "quarantine": ExportTable(
        "coalesce(time, quarantined_at)", {**_COMMON, "contract": "contract_id"}
    ),
}


@dataclass(frozen=True, slots=True)
class ExportQuery:
    """Which rows of which table."""

    table: str
    window: TimeWindow
    filters: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        spec = EXPORT_TABLES.get(self.table)
        if spec is None:
            raise UnknownExport(
                f"no export {self.table!r}; exports are: {', '.join(EXPORT_TABLES)}"
            )
        unknown = sorted(set(self.filters) - set(spec.filters))
        if unknown:
            raise UnknownExport(
                f"{self.table} cannot be filtered by {', '.join(unknown)}; its filters are: "
                f"from, to, {', '.join(spec.filters)}"
            )

    @property
    def spec(self) -> ExportTable:
        return EXPORT_TABLES[self.table]

    def _where(self) -> tuple[str, dict[str, object]]:
        spec = self.spec
        clauses = [f"{spec.time} >= $start", f"{spec.time} < $end"]
        params: dict[str, object] = {"start": self.window.start, "end": self.window.end}
        for i, (name, value) in enumerate(sorted(self.filters.items())):
            clauses.append(f"{spec.filters[name]} = $f{i}")
            params[f"f{i}"] = value
        return " AND ".join(clauses), params


def count_rows(cursor: duckdb.DuckDBPyConnection, query: ExportQuery) -> int:
    """How many rows the export holds."""
    where, params = query._where()
    row = cursor.execute(
        f"SELECT count(*) FROM {query.table} WHERE {where}",  # noqa: S608 - names are constants
        params,
    ).fetchone()
    return int(row[0]) if row else 0


def _projection(cursor: duckdb.DuckDBPyConnection, table: str, shape: Shape) -> str:
    if shape == "typed":
        return "*"
    if shape == "json":
        return "to_json(t)::VARCHAR AS row"
    nested = {
        name
        for (name,) in cursor.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = $t "
            "AND (data_type LIKE '%[]' OR data_type LIKE 'STRUCT%' OR data_type LIKE 'MAP%')",
            {"t": table},
        ).fetchall()
    }
    names = [
        name
        for (name,) in cursor.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = $t "
            "ORDER BY ordinal_position",
            {"t": table},
        ).fetchall()
    ]
    return ", ".join(
        f'to_json("{n}")::VARCHAR AS "{n}"' if n in nested else f'"{n}"' for n in names
    )


def export_reader(
    cursor: duckdb.DuckDBPyConnection,
    query: ExportQuery,
    *,
    limit: int,
    shape: Shape = "typed",
    batch_rows: int = DEFAULT_BATCH_ROWS,
) -> pa.RecordBatchReader:
    """The first ``limit`` rows of the export in stored order, ``batch_rows`` at a time.

    The query runs as the batches are read; the cursor must stay open until then.
    """
    where, params = query._where()
    sql = (
        f"SELECT {_projection(cursor, query.table, shape)} FROM {query.table} AS t "  # noqa: S608
        f"WHERE {where} LIMIT {int(limit)}"
    )
    reader: pa.RecordBatchReader = cursor.execute(sql, params).to_arrow_reader(batch_rows)
    return reader
