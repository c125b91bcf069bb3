"""DuckDB's errors as the store's: what is worth retrying at once, and what to tell the user."""

from __future__ import annotations

import duckdb

from store.connection import is_conflict, translate
from store.errors import StoreFull, TransientStoreError

# what DuckDB 1.x raises when the commit cannot write the write-ahead log (a full disk)
WAL_WRITE_FAILED = (
    'TransactionContext Error: Failed to commit: Could not write file "/d/f.duckdb.wal": '
    "No space left on device"
)


def test_a_commit_that_cannot_write_its_log_is_disk_full_not_a_conflict():
    """A TransactionException, but no conflict: retried as one (with backoff), every answer on
    a full disk would wait for the retries, and the log would blame another writer."""
    error = duckdb.TransactionException(WAL_WRITE_FAILED)
    assert not is_conflict(error)
    translated = translate(error, path="/d/f.duckdb")
    assert isinstance(translated, StoreFull)
    assert str(translated).startswith("disk full: cannot write the database /d/f.duckdb")


def test_write_write_conflicts_are_still_retried():
    conflict = duckdb.TransactionException(
        'TransactionContext Error: Catalog write-write conflict on alter with "decisions"'
    )
    assert is_conflict(conflict)
    assert isinstance(translate(conflict, path="/d/f.duckdb"), TransientStoreError)
    assert is_conflict(duckdb.Error("Transaction conflict: cannot update a table"))
    assert not is_conflict(ValueError("Transaction conflict"))
