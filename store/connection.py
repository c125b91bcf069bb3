"""The store: one DuckDB file (the embedded default) or a DuckLake; a cursor per reader.

DuckDB lets a single process open a database file read-write, so the ingest server, its
dashboards and its alert evaluator share one :class:`Store` and read through their own cursors
while the writer appends. A DuckLake (:mod:`store.lake`) is shared by several processes at once;
each attaches it under the same catalog name, so every query reads the same on both. This module
is also the one place where DuckDB's exceptions become :class:`~store.errors.StoreError`.
"""

from __future__ import annotations

import itertools
import threading
import time
from pathlib import Path
from types import TracebackType

import duckdb

from store import lake
from store.catalog import CATALOG_ALIAS, REQUEST_ID_BITS, CatalogTables
from store.errors import StoreError, StoreFull, TerminalStoreError, TransientStoreError
from store.lake import LakeOptions
from store.lease import DEFAULT_LEASE_TTL, CatalogLease, Lease, LocalLease
from store.location import StoreLocation, parse_store
from store.migrations import applied_version, latest_version, migrate


def translate(exc: duckdb.Error, *, path: str = "") -> StoreError:
    """Map a DuckDB exception to a store error that says what to do."""
    text = str(exc)
    if "Could not set lock" in text or "Conflicting lock" in text:
        return TransientStoreError(
            f"database {path} is in use by another process (a running `flaglens serve`?); "
            f"stop it, or query through its dashboards. DuckDB said: {text}"
        )
    if _is_disk_full(text):
        return StoreFull(
            f"disk full: cannot write the database {path}; free space on its file system "
            f"(exporters are answered 503 / UNAVAILABLE and retry meanwhile). DuckDB said: {text}"
        )
    if isinstance(exc, duckdb.IOException):
        return TransientStoreError(f"I/O error on {path}: {text}")
    if is_conflict(exc):
        return TransientStoreError(f"transaction conflict on {path}: {text}")
    if _is_concurrent_creation(text):
        return TransientStoreError(f"concurrent creation in {path}: {text}")
    if "Unable to connect to Postgres" in text or "could not connect to server" in text:
        return TransientStoreError(f"cannot reach the PostgreSQL catalog of {path}: {text}")
    return TerminalStoreError(f"database error on {path}: {text}")


def _is_concurrent_creation(text: str) -> bool:
    """Two processes creating the same lake at once, the loser's error (worth opening again).

    When their transactions overlap, PostgreSQL refuses the second in its own catalog (a
    duplicate ``pg_`` key); when the first has committed after the second looked for the lake
    but before its CREATE ran, DuckLake's initialisation finds a table already there.
    """
    if "duplicate key value violates unique constraint" in text and '"pg_' in text:
        return True
    return "Failed to initialize DuckLake" in text and "already exists" in text


def _is_disk_full(text: str) -> bool:
    return "No space left on device" in text or "Disk quota exceeded" in text


def is_conflict(exc: BaseException) -> bool:
    """A commit refused because another transaction changed the same thing: worth retrying.

    A commit that could not write its WAL is a TransactionException too ("Failed to commit:
    Could not write file ..."), but no conflict: retrying it at once only delays the answer.
    """
    text = str(exc)
    if "Could not write file" in text or _is_disk_full(text):
        return False
    return isinstance(exc, duckdb.TransactionException) or (
        isinstance(exc, duckdb.Error) and "Transaction conflict" in text
    )


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
# The name a read-write store is attached under (DuckDB would name it after the file); a lake
# is attached under the same name, so that queries read the same on both.
_CATALOG = "flaglens"
_OPEN_ATTEMPTS = 3


class Store:
    """An open flaglens store: a DuckDB file, or a DuckLake shared with other processes."""

    def __init__(
        self,
        connection: duckdb.DuckDBPyConnection,
        path: str,
        read_only: bool,
        catalog: str | None = None,
        row_group_size: int = DUCKDB_ROW_GROUP_SIZE,
        *,
        location: StoreLocation | None = None,
        catalog_tables: CatalogTables | None = None,
        lake_options: LakeOptions | None = None,
    ) -> None:
        self._connection = connection
        self.path = path
        """The store for messages (a DuckLake's without its password)."""
        self.read_only = read_only
        self.row_group_size = row_group_size
        """Rows per row group of what this store writes."""
        self.location = location or StoreLocation("duckdb", path)
        self.lake_options = lake_options or LakeOptions()
        self._catalog = catalog  # the attached database cursors must USE, if not the default
        self._catalog_tables = catalog_tables
        self._lock = threading.Lock()

    @property
    def shared(self) -> bool:
        """Whether other processes may write this store at the same time (a DuckLake)."""
        return self.location.is_lake

    @classmethod
    def open(
        cls,
        path: str | Path | StoreLocation,
        *,
        read_only: bool = False,
        checkpoint_threshold: str = DEFAULT_CHECKPOINT_THRESHOLD,
        memory_limit: str = DEFAULT_MEMORY_LIMIT,
        threads: int | None = None,
        row_group_size: int = ROW_GROUP_SIZE,
        data_path: str | Path | None = None,
        lake_options: LakeOptions | None = None,
    ) -> Store:
        """Open (and, unless read-only, create and migrate) the store at ``path``.

        ``path`` is a store URL (:mod:`store.location`): a DuckDB file, or a DuckLake on
        PostgreSQL with its ``data_path``. ``threads`` limits DuckDB's threads (None: DuckDB's
        default, one per core). A file opened read-write is attached with ``row_group_size``
        rows per row group (DuckDB takes that only from ATTACH; it applies to what this process
        writes).

        Raises:
            StoreUrlError: ``path`` names no store.
            TransientStoreError: another process holds the file; the lake's catalog is
                unreachable.
            TerminalStoreError: the store's schema version is not one this flaglens reads.
        """
        location = (
            path if isinstance(path, StoreLocation) else parse_store(path, data_path=data_path)
        )
        if location.is_lake:
            return cls._open_lake(
                location,
                read_only=read_only,
                memory_limit=memory_limit,
                threads=threads,
                options=lake_options or LakeOptions(),
            )
        where = location.path
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
            _configure(connection, memory_limit, threads)
            if read_only:
                _check_version(connection, where)
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
            return cls(connection, where, read_only, location=location)
        return cls(connection, where, read_only, catalog, row_group_size, location=location)

    @classmethod
    def _open_lake(
        cls,
        location: StoreLocation,
        *,
        read_only: bool,
        memory_limit: str,
        threads: int | None,
        options: LakeOptions,
    ) -> Store:
        # processes that create a lake at once race in PostgreSQL's own catalog (the schema
        # DuckLake creates): the loser opens again and finds it there
        for attempt in itertools.count():
            try:
                return cls._attach_lake(
                    location,
                    read_only=read_only,
                    memory_limit=memory_limit,
                    threads=threads,
                    options=options,
                )
            except TransientStoreError:
                if attempt >= _OPEN_ATTEMPTS - 1:
                    raise
                time.sleep(0.2 * (attempt + 1))
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    @classmethod
    def _attach_lake(
        cls,
        location: StoreLocation,
        *,
        read_only: bool,
        memory_limit: str,
        threads: int | None,
        options: LakeOptions,
    ) -> Store:
        where = location.describe()
        try:
            connection = lake.connect()
        except duckdb.Error as exc:
            raise translate(exc, path=where) from exc
        try:
            lake.attach(connection, location, _CATALOG, options, read_only=read_only)
            connection.execute(f"USE {_CATALOG}")
            _configure(connection, memory_limit, threads)
            connection.execute(
                f"ATTACH {lake.literal(location.path)} AS {CATALOG_ALIAS} (TYPE postgres"
                + (", READ_ONLY)" if read_only else ")")
            )
            tables = CatalogTables(connection.cursor(), location.metadata_schema)
            if read_only:
                _check_version(connection, where)
            else:
                tables.create()
                migrate(connection, dialect="ducklake")
        except duckdb.Error as exc:
            connection.close()
            raise translate(exc, path=where) from exc
        except StoreError:
            connection.close()
            raise
        return cls(
            connection,
            where,
            read_only,
            _CATALOG,
            location=location,
            catalog_tables=tables,
            lake_options=options,
        )

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

    def first_request_id(self, cursor: duckdb.DuckDBPyConnection) -> int:
        """The first request id a new writer on this store hands out.

        A DuckDB file has one writer, which goes on after the largest stored id. Each writer on
        a lake takes a number of its own from the catalog, and its ids start at that number
        times 2**32: the writers never hand out the same id, and none asks the others.
        """
        if self._catalog_tables is None:
            row = cursor.execute("SELECT coalesce(max(request_id), 0) FROM ingest_log").fetchone()
            return (int(row[0]) if row else 0) + 1
        return self._catalog_tables.next_writer_number() << REQUEST_ID_BITS

    def lease(self, name: str, *, ttl: float = DEFAULT_LEASE_TTL) -> Lease:
        """The lease ``name`` on this store (see :mod:`store.lease`); not yet started."""
        if self.read_only:
            raise TerminalStoreError(f"{self.path} is open read-only: it takes no lease")
        if self._catalog_tables is None:
            return LocalLease(name)
        return CatalogLease(self._catalog_tables, name, ttl=ttl)

    @property
    def catalog_tables(self) -> CatalogTables | None:
        """flaglens' tables in a lake's catalog (None: a DuckDB file)."""
        return self._catalog_tables

    @property
    def catalog(self) -> str:
        """The name the store is attached under (what DuckLake's functions are given)."""
        return self._catalog or _CATALOG

    def close(self) -> None:
        with self._lock:
            self._connection.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _configure(
    connection: duckdb.DuckDBPyConnection, memory_limit: str, threads: int | None
) -> None:
    connection.execute("SET TimeZone = 'UTC'")
    connection.execute(f"SET memory_limit = '{memory_limit}'")
    if threads is not None:
        connection.execute(f"SET threads = {int(threads)}")


def _check_version(connection: duckdb.DuckDBPyConnection, where: str) -> None:
    version = applied_version(connection)
    if version != latest_version():
        raise TerminalStoreError(
            f"store {where} has schema version {version}, this flaglens reads "
            f"{latest_version()}; open it once read-write (flaglens serve) to migrate"
        )
