"""The DuckDB store: one database per process, one writer, a cursor per reader.

DuckDB lets a single process open a database file read-write, so the ingest server, its
dashboards and its alert evaluator share one :class:`Store` and read through their own cursors
while the writer appends. This module is also the one place where DuckDB's exceptions become
:class:`~analytics.errors.StoreError`.
"""

from __future__ import annotations

import threading
from pathlib import Path
from types import TracebackType

import duckdb

from store.errors import StoreError, StoreFull, TerminalStoreError, TransientStoreError
from store.migrations import applied_version, latest_version, migrate


def translate(exc: duckdb.Error, *, path: str = "") -> StoreError:
    """Map a DuckDB exception to a store error that says what to do."""
    text = str(exc)
    if "Could not set lock" in text or "Conflicting lock" in text:
        return TransientStoreError(
            f"database {path} is in use by another process (a running `flaglens serve`?); "
            f"stop it, or query through its dashboards. DuckDB said: {text}"
        )
    if "No space left on device" in text or "Disk quota exceeded" in text:
        return StoreFull(
            f"disk full: cannot write the database {path}; free space on its file system "
            f"(exporters are answered 503 / UNAVAILABLE and retry meanwhile). DuckDB said: {text}"
        )
    if isinstance(exc, duckdb.IOException):
        return TransientStoreError(f"I/O error on {path}: {text}")
    if isinstance(exc, duckdb.TransactionException):
        return TransientStoreError(f"transaction conflict on {path}: {text}")
    return TerminalStoreError(f"database error on {path}: {text}")


# DuckDB checkpoints (folds the WAL into the file) once the WAL passes this size. Each
# checkpoint rewrites the table's last, partly filled row group (up to 122,880 rows, ~90 MB of
# decisions), so the 16 MB default makes steady ingest rewrite the same rows again and again
# (`benchmarks/writer.py` compares both). The price is a longer WAL replay after a crash.
DEFAULT_CHECKPOINT_THRESHOLD = "256MB"
# DuckDB's own default is 80 % of RAM, and its buffer pool keeps what it read and wrote until
# then, so a long-running server's RSS climbs for as long as data arrives (measured: 627 MiB
# after 10 s to 2.4 GiB after 5 min of ingest). A fixed limit makes it level off; queries that
# need more spill to disk.
DEFAULT_MEMORY_LIMIT = "1GB"
# Rows per row group in a store opened read-write (DuckDB's default: 122,880). When one
# transaction appends at least a row group's worth of rows, DuckDB compresses those row groups
# and writes them to the file at once; the WAL records only where they are, and no checkpoint
# has to write them again. The writer gathers groups of this size under load (see
# store.writer), which at 122,880 rows would hold every request for seconds.
# `benchmarks/writer.py`: 12.5 CPU µs a decision appended, committed and checkpointed, against
# 22.4 with DuckDB's row groups (same checkpoint threshold); files of 89 MB either way for
# 409,600 decisions. With `--threads 1`: 11.9-13.4 against 16.4-18.4 µs.
ROW_GROUP_SIZE = 16_384
DUCKDB_ROW_GROUP_SIZE = 122_880  # what DuckDB uses where it is not told (":memory:", read-only)
# The name a read-write store is attached under (DuckDB would name it after the file).
_CATALOG = "flaglens"


class Store:
    """An open flaglens database."""

    def __init__(
        self,
        connection: duckdb.DuckDBPyConnection,
        path: str,
        read_only: bool,
        catalog: str | None = None,
        row_group_size: int = DUCKDB_ROW_GROUP_SIZE,
    ) -> None:
        self._connection = connection
        self.path = path
        self.read_only = read_only
        self.row_group_size = row_group_size
        """Rows per row group of what this store writes."""
        self._catalog = catalog  # the attached database cursors must USE, if not the default
        self._lock = threading.Lock()

    @classmethod
    def open(
        cls,
        path: str | Path,
        *,
        read_only: bool = False,
        checkpoint_threshold: str = DEFAULT_CHECKPOINT_THRESHOLD,
        memory_limit: str = DEFAULT_MEMORY_LIMIT,
        threads: int | None = None,
        row_group_size: int = ROW_GROUP_SIZE,
    ) -> Store:
        """Open (and, unless read-only, create and migrate) the database at ``path``.

        ``threads`` limits DuckDB's threads (None: DuckDB's default, one per core). A file opened
        read-write is attached with ``row_group_size`` rows per row group (DuckDB takes that only
        from ATTACH; it applies to what this process writes).

        Raises:
            TransientStoreError: another process holds the file.
            TerminalStoreError: the file's schema version is not one this flaglens reads.
        """
        where = str(path)
        if read_only and where != ":memory:" and not Path(where).exists():
            raise TerminalStoreError(
                f"no database at {where}; run `flaglens serve --db {where}` first"
            )
        catalog = None if read_only or where == ":memory:" else _CATALOG
        try:
            if catalog is None:
                connection = duckdb.connect(where, read_only=read_only)
            else:
                connection = duckdb.connect()
        except duckdb.Error as exc:
            raise translate(exc, path=where) from exc
        try:
            if catalog is not None:
                quoted = where.replace("'", "''")
                connection.execute(
                    f"ATTACH '{quoted}' AS {catalog} (ROW_GROUP_SIZE {int(row_group_size)})"
                )
                connection.execute(f"USE {catalog}")
                # spill beside the file, as DuckDB does for a file opened directly (not ./.tmp)
                connection.execute(f"SET temp_directory = '{quoted}.tmp'")
            connection.execute("SET TimeZone = 'UTC'")
            connection.execute(f"SET memory_limit = '{memory_limit}'")
            if threads is not None:
                connection.execute(f"SET threads = {int(threads)}")
            if read_only:
                version = applied_version(connection)
                if version != latest_version():
                    raise TerminalStoreError(
                        f"database {where} has schema version {version}, this flaglens reads "
                        f"{latest_version()}; open it once read-write (flaglens serve) to migrate"
                    )
            else:
                connection.execute(f"SET checkpoint_threshold = '{checkpoint_threshold}'")
                migrate(connection)
        except duckdb.Error as exc:
            connection.close()
            raise translate(exc, path=where) from exc
        except StoreError:
            connection.close()
            raise
        if catalog is None:
            return cls(connection, where, read_only)
        return cls(connection, where, read_only, catalog, row_group_size)

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A new cursor for one thread (DuckDB connections are not shared across threads)."""
        with self._lock:
            cursor = self._connection.cursor()
        cursor.execute("SET TimeZone = 'UTC'")
        if self._catalog is not None:  # a new cursor starts in DuckDB's in-memory database
            cursor.execute(f"USE {self._catalog}")
        return cursor

    def schema_version(self) -> int:
        with self._lock:
            return applied_version(self._connection)

    def close(self) -> None:
        with self._lock:
            self._connection.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
