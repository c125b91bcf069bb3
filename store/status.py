"""What a store holds and how it is doing, for `flaglens store status` and the benchmarks:
rows per table, the ledger per writer, and on a lake the lease, the snapshot, the data files and
the catalog's size."""

from __future__ import annotations

from typing import Any

import duckdb

from store.connection import Store, translate


def store_status(store: Store) -> dict[str, Any]:
    """A JSON-ready summary of ``store``.

    Raises:
        StoreError: the store failed.
    """
    cursor = store.cursor()
    try:
        return _status(store, cursor)
    except duckdb.Error as exc:
        raise translate(exc, path=store.path) from exc
    finally:
        cursor.close()


def _status(store: Store, cursor: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    names = [
        name
        for (name,) in cursor.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_catalog = "
            "current_database() AND table_schema = current_schema() ORDER BY table_name"
        ).fetchall()
    ]
    rows = {}
    for name in names:
        row = cursor.execute(f'SELECT count(*) FROM "{name}"').fetchone()  # noqa: S608
        rows[name] = int(row[0]) if row else 0
    writers = [
        {
            "writer": writer,
            "requests": int(requests),
            "received": int(received or 0),
            "accepted": int(accepted or 0),
            "rejected": int(rejected or 0),
            "duplicates": int(duplicates or 0),
            "first_received_at": first.isoformat() if first else None,
            "last_received_at": last.isoformat() if last else None,
        }
        for writer, requests, received, accepted, rejected, duplicates, first, last in (
            cursor.execute(
                "SELECT writer, count(*), sum(received), sum(accepted), sum(rejected), "
                "sum(duplicates), min(received_at), max(received_at) FROM ingest_log "
                "GROUP BY writer ORDER BY writer NULLS FIRST"
            ).fetchall()
        )
    ]
    status: dict[str, Any] = {
        "store": store.path,
        "kind": store.location.kind,
        "schema_version": store.schema_version(),
        "rows": rows,
        "writers": writers,
    }
    tables = store.catalog_tables
    if tables is not None:
        lease = tables.lease("rounds")
        catalog = store.catalog
        snapshot = cursor.execute(
            f"SELECT id FROM ducklake_current_snapshot('{catalog}')"  # noqa: S608 - a constant
        ).fetchone()
        files = bytes_ = deletes = 0
        for name in names:
            row = cursor.execute(
                "SELECT count(*), coalesce(sum(data_file_size_bytes), 0), count(delete_file) "
                "FROM ducklake_list_files($catalog, $table)",
                {"catalog": catalog, "table": name},
            ).fetchone()
            if row:
                files += int(row[0])
                bytes_ += int(row[1])
                deletes += int(row[2])
        status["lease"] = {
            "holder": lease.holder,
            "live": lease.live,
            "expires_at": lease.expires_at.isoformat() if lease.expires_at else None,
        }
        status["lake"] = {
            "data_path": store.location.data_path,
            "snapshot": int(snapshot[0]) if snapshot else None,
            "data_files": files,
            "data_bytes": bytes_,
            "delete_files": deletes,
            "catalog_bytes": tables.size_bytes(),
        }
    return status
