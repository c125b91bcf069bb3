"""The flaglens store: one DuckDB file or a DuckLake shared by several processes, its
migrations and tables, and the one writer (per process).

Ingest and analytics both stand on this package; it imports neither.
"""

from __future__ import annotations

from store.batch import LedgerEntry, WriteBatch, WriteResult
from store.connection import Store
from store.errors import (
    StoreError,
    StoreFull,
    TerminalStoreError,
    TransientStoreError,
    WriterClosed,
    WriterOverloaded,
)
from store.write_fns import WriteFn
from store.writer import StoreWriter, WriterStats

__all__ = [
    "LedgerEntry",
    "Store",
    "StoreError",
    "StoreFull",
    "StoreWriter",
    "TerminalStoreError",
    "TransientStoreError",
    "WriteBatch",
    "WriteFn",
    "WriteResult",
    "WriterClosed",
    "WriterOverloaded",
    "WriterStats",
]
