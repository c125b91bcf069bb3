"""Moving a store: every row of a DuckDB file copied into another store (a new lake), in one
transaction, so a deployment that outgrew the embedded file keeps its history."""

from __future__ import annotations

from pathlib import Path

import duckdb

from store.connection import Store, translate
from store.errors import TerminalStoreError
from store.migrations import applied_version, latest_version

_SOURCE = "flaglens_source"


def copy_file_into(source: Path, target: Store) -> dict[str, int]:
    """Copy every table of the DuckDB file ``source`` into ``target``; returns rows per table.

    Both must be at this flaglens' schema version (open the file once with `flaglens serve`
    to migrate it), and ``target`` must be empty.

    Raises:
        TerminalStoreError: a schema version differs, or ``target`` holds rows already.
        StoreError: either store failed.
    """
    if not source.exists():
        raise TerminalStoreError(f"no database at {source}")
    cursor = target.cursor()
    quoted = str(source).replace("'", "''")
    try:
        cursor.execute(f"ATTACH '{quoted}' AS {_SOURCE} (READ_ONLY)")
        try:
            return _copy(cursor, source, target)
        finally:
            cursor.execute("USE flaglens")
            cursor.execute(f"DETACH {_SOURCE}")
    except duckdb.Error as exc:
        raise translate(exc, path=str(source)) from exc
    finally:
        cursor.close()


def _copy(cursor: duckdb.DuckDBPyConnection, source: Path, target: Store) -> dict[str, int]:
    cursor.execute(f"USE {_SOURCE}")
    version = applied_version(cursor)
    cursor.execute(f"USE {target.catalog}")
    if version != latest_version():
        raise TerminalStoreError(
            f"{source} has schema version {version}, this flaglens writes {latest_version()}; "
            f"run `flaglens serve --db {source}` once to migrate it"
        )
    tables = [
        name
        for (name,) in cursor.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_catalog = $catalog "
            "AND table_schema = 'main' AND table_name <> 'schema_migrations' ORDER BY 1",
            {"catalog": _SOURCE},
        ).fetchall()
    ]
    for name in tables:
        row = cursor.execute(f'SELECT count(*) FROM "{name}"').fetchone()  # noqa: S608
        if row and row[0]:
            raise TerminalStoreError(f"{target.path} is not empty ({name} has {row[0]} rows)")
    copied = {}
    cursor.execute("BEGIN TRANSACTION")
    try:
        for name in tables:
            done = cursor.execute(
                f'INSERT INTO "{name}" BY NAME SELECT * FROM {_SOURCE}.main."{name}"'  # noqa: S608
            ).fetchone()
            copied[name] = int(done[0]) if done else 0
        cursor.execute("COMMIT")
    except BaseException:
        try:
            cursor.execute("ROLLBACK")
        except duckdb.Error:
            pass  # a failed COMMIT ended the transaction already
        raise
    return copied
