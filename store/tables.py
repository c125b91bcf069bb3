"""Arrow schemas of the store's tables, read from the migrations themselves so they cannot drift.

The schema of each table is taken once from an in-memory database built by the same migration
files as the real store. Writers build Arrow tables with :func:`arrow_table`, leaving out the
columns the writer fills at commit time (:data:`COMMIT_TIME_COLUMNS`).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

import duckdb
import pyarrow as pa

from store.migrations import migrate

RECORD_TABLES = (
    "decisions",
    "policy_changes",
    "engagement",
    "spans",
    "metric_points",
    "metric_drops",
    "quarantine",
    "uncontracted",
    "quarantine_releases",
)
# columns stamped by the writer in the transaction that commits the row
COMMIT_TIME_COLUMNS: Mapping[str, str] = {
    "decisions": "ingested_at",
    "policy_changes": "ingested_at",
    "engagement": "ingested_at",
    "spans": "ingested_at",
    "metric_points": "ingested_at",
    "metric_drops": "ingested_at",
    "quarantine": "quarantined_at",
    "uncontracted": "ingested_at",
    "quarantine_releases": "released_at",
    "ingest_log": "committed_at",
}


@functools.cache
def table_schema(table: str) -> pa.Schema:
    """The full Arrow schema of a store table, as DuckDB reports it.

    JSON columns get Arrow's JSON extension type (DuckDB reports them as plain strings): DuckDB
    then stores the values as JSON without parsing each one again (for the benchmark's decision
    rows, 1.7 of the writer's 15.8 µs a row). Every such value is flaglens' own orjson output.
    """
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        migrate(con)
        query = f'SELECT * FROM "{table}" LIMIT 0'  # noqa: S608 - table names are constants
        schema = con.execute(query).to_arrow_table().schema
        json_columns = {
            name
            for (name,) in con.execute(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_name = ? AND data_type = 'JSON'",
                [table],
            ).fetchall()
        }
    finally:
        con.close()
    return pa.schema(f.with_type(pa.json_()) if f.name in json_columns else f for f in schema)


@functools.cache
def input_schema(table: str) -> pa.Schema:
    """The schema callers build: the table's columns minus the commit-time one."""
    schema = table_schema(table)
    skip = COMMIT_TIME_COLUMNS.get(table)
    return pa.schema([f for f in schema if f.name != skip])


def input_columns(table: str) -> Sequence[str]:
    names: list[str] = input_schema(table).names
    return names


def arrow_table(table: str, columns: Mapping[str, Sequence[Any]]) -> pa.Table:
    """Column lists → an Arrow table with the table's input schema (missing columns are null).

    Timestamp columns take integers in microseconds since the epoch (UTC). A column may also come
    as an Arrow array already.
    """
    schema = input_schema(table)
    length = len(next(iter(columns.values()))) if columns else 0
    arrays = []
    for field in schema:
        values = columns.get(field.name)
        if values is None:
            arrays.append(pa.nulls(length, field.type))
        elif isinstance(values, pa.Array):
            arrays.append(values if values.type == field.type else values.cast(field.type))
        elif pa.types.is_timestamp(field.type):
            arrays.append(pa.array(values, pa.int64()).cast(field.type))
        else:
            arrays.append(pa.array(values, field.type))
    return pa.Table.from_arrays(arrays, schema=schema)
