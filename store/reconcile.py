"""Duplicates across writers on a lake, removed after their commit by the lease holder.

Each writer drops a record whose key is already stored (:mod:`store.writer`), looking it up in
the lake, so a retried export that lands on another replica after the first commit finished is
dropped at the door like any other. What the writer cannot see is a commit still in flight in
another process: two replicas given the same record at the same moment both store it. This
module removes those afterwards, exactly: it reads the rows each snapshot since the last round
inserted (DuckLake's ``ducklake_table_insertions``), looks their keys up in the same event-time
range (a duplicate has the record's own event time), keeps the copy committed first (the lowest
row id: DuckLake numbers rows in commit order) and deletes the others, recording per request in
``late_duplicates`` how many rows were removed. How far it has read is kept in the catalog, so a
new lease holder goes on from there.

Why after the commit rather than before: the catalog (PostgreSQL) and the data commit are not
one transaction, so claiming keys in the catalog first would leave claims without rows when a
writer dies between the two, and a retry would then be refused as a duplicate of a record that
was never stored: a lost record. Reconciliation never loses a record (it deletes only a row
whose key has an older stored copy) at the price of a duplicate visible for up to one round
(``reconcile_interval``) in the rare race. A DELETE conflicts with appends to the same table
committed meanwhile; the round retries, and so do the writers whose commit lost.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import duckdb

from store.catalog import CatalogTables
from store.connection import Store, is_conflict, translate
from store.duplicates import DEDUPE_KEYS

log = logging.getLogger(__name__)

DEFAULT_RECONCILE_INTERVAL = 5.0
_ATTEMPTS = 5


@dataclass
class Reconciled:
    """What one round found: duplicates removed per table, and the snapshot it read up to."""

    removed: dict[str, int] = field(default_factory=dict)
    snapshot: int = 0


def _progress_name(table: str) -> str:
    return f"reconcile.{table}"


def current_snapshot(cursor: duckdb.DuckDBPyConnection, catalog: str) -> int:
    query = f"SELECT id FROM ducklake_current_snapshot('{catalog}')"  # noqa: S608 - a constant
    row = cursor.execute(query).fetchone()
    return int(row[0]) if row else 0


def oldest_unreconciled(tables: CatalogTables) -> int | None:
    """The oldest snapshot some table's reconciliation has yet to read past (upkeep keeps it)."""
    marks = [tables.progress(_progress_name(table)) for table in DEDUPE_KEYS]
    known = [mark for mark in marks if mark is not None]
    return min(known) if len(known) == len(marks) else None


def reconcile(store: Store, cursor: duckdb.DuckDBPyConnection) -> Reconciled:
    """Remove duplicates committed since the last round, table by table.

    Raises:
        StoreError: the lake or its catalog failed (the next round starts where this one did).
    """
    tables = store.catalog_tables
    result = Reconciled()
    if tables is None:  # a DuckDB file has one writer, which drops every duplicate itself
        return result
    try:
        end = current_snapshot(cursor, store.catalog)
        result.snapshot = end
        for table in DEDUPE_KEYS:
            start = tables.progress(_progress_name(table))
            if start is None or start < end:
                result.removed[table] = _reconcile_table(
                    store, cursor, table, 0 if start is None else start + 1, end
                )
                tables.set_progress(_progress_name(table), end)
    except duckdb.Error as exc:
        raise translate(exc, path=store.path) from exc
    if any(result.removed.values()):
        log.info("removed duplicates committed by two writers at once: %s", result.removed)
    return result


def _reconcile_table(
    store: Store, cursor: duckdb.DuckDBPyConnection, table: str, start: int, end: int
) -> int:
    key_columns, time_column = DEDUPE_KEYS[table]
    key_sql = " || '/' || ".join(key_columns)
    # the rows the snapshots in [start, end] inserted: their keys and their event-time range
    fresh = cursor.execute(
        f"SELECT {key_sql} AS k, {time_column} AS t FROM "  # noqa: S608 - constant names
        f"ducklake_table_insertions('{store.catalog}', 'main', '{table}', $start, $end)",
        {"start": start, "end": end},
    ).to_arrow_table()
    if not fresh.num_rows:
        return 0
    for attempt in range(_ATTEMPTS):
        try:
            return _delete_later_copies(cursor, table, key_sql, time_column, fresh)
        except duckdb.Error as exc:
            if not is_conflict(exc) or attempt == _ATTEMPTS - 1:
                raise
            time.sleep(0.05 * 2**attempt)  # a writer's append came first; look again
    return 0


def _delete_later_copies(
    cursor: duckdb.DuckDBPyConnection,
    table: str,
    key_sql: str,
    time_column: str,
    fresh: object,
) -> int:
    _fresh = fresh  # read by the queries below (a DuckDB replacement scan)
    later = cursor.execute(
        f"SELECT rowid AS id, request_id FROM {table} "  # noqa: S608 - constant names
        f"WHERE {time_column} BETWEEN (SELECT min(t) FROM _fresh) AND (SELECT max(t) FROM _fresh) "
        f"AND {key_sql} IN (SELECT k FROM _fresh) "
        f"QUALIFY row_number() OVER (PARTITION BY {key_sql} ORDER BY rowid) > 1"
    ).to_arrow_table()
    if not later.num_rows:
        return 0
    _later = later
    cursor.execute("BEGIN TRANSACTION")
    try:
        cursor.execute(
            f"DELETE FROM {table} WHERE rowid IN (SELECT id FROM _later)"  # noqa: S608 - constant
        )
        cursor.execute(
            "INSERT INTO late_duplicates SELECT now(), $table, request_id, count(*) "
            "FROM _later GROUP BY request_id",
            {"table": table},
        )
        cursor.execute("COMMIT")
    except BaseException:
        try:
            cursor.execute("ROLLBACK")
        except duckdb.Error:
            pass  # a failed COMMIT ended the transaction already
        raise
    return int(later.num_rows)
