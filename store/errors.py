"""Errors raised by the store: the database, its schema and the writer.

StoreError                   anything the database said, or the writer refused
├── TransientStoreError      worth retrying (lock held, I/O hiccup, disk full)
│   ├── StoreFull            the database's file system is full (or over quota)
│   └── WriterOverloaded     the writer's queue is full; retry after ``retry_after`` seconds
└── TerminalStoreError       will fail again (schema, constraint, corrupt file)
    └── WriterClosed         a batch submitted after the writer was closed

:func:`store.connection.translate` is the one place where DuckDB's exceptions become these.
"""

from __future__ import annotations


class StoreError(Exception):
    """The database failed."""


class TransientStoreError(StoreError):
    """A database failure that may succeed when retried."""


class TerminalStoreError(StoreError):
    """A database failure that will not succeed when retried."""


class StoreFull(TransientStoreError):
    """The database's file system has no space left: writes fail until some is freed."""


class WriterOverloaded(TransientStoreError):
    """The queue is full; the caller should ask the exporter to retry after ``retry_after`` s."""

    def __init__(self, retry_after: float, pending_rows: int) -> None:
        self.retry_after = retry_after
        self.pending_rows = pending_rows
        super().__init__(
            f"{pending_rows} rows are waiting to be written; retry in {retry_after:.1f} s"
        )


class WriterClosed(TerminalStoreError):
    """A batch was submitted after the writer was closed."""
