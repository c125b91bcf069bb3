"""Python column lists handed to DuckDB as a temporary view, for joins against the store."""

from __future__ import annotations

from typing import Any

import duckdb
import pyarrow as pa


def register(
    cursor: duckdb.DuckDBPyConnection, name: str, columns: dict[str, tuple[list[Any], Any]]
) -> None:
    """Register Python column lists, with their Arrow types, as a view named ``name``."""
    table = pa.table(
        {key: values for key, (values, _) in columns.items()},
        schema=pa.schema([(key, kind) for key, (_, kind) in columns.items()]),
    )
    cursor.register(name, table)
