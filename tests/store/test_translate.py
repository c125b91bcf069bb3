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


def test_a_lake_created_by_another_process_meanwhile_is_worth_opening_again():
    """Processes started together on a new lake: the one whose CREATE comes after another's
    commit finds DuckLake's tables there (``Store.open`` opens again and finds the lake)."""
    created_meanwhile = duckdb.Error(
        'Failed to initialize DuckLake: Failed to execute query "CREATE TABLE "lake_1"."'
        'ducklake_metadata"("key" VARCHAR NOT NULL, "value" VARCHAR NOT NULL, "scope" VARCHAR, '
        '"scope_id" BIGINT);": ERROR:  relation "ducklake_metadata" already exists'
    )
    overlapping = duckdb.Error(
        "Failed to initialize DuckLake: ERROR:  duplicate key value violates unique constraint "
        '"pg_namespace_nspname_index"'
    )
    for error in (created_meanwhile, overlapping):
        translated = translate(error, path="ducklake:postgres://pg/flaglens")
        assert isinstance(translated, TransientStoreError)
        assert str(translated).startswith("concurrent creation in ducklake:postgres://pg/flaglens")
    # the same words outside a lake's creation are no race
    other = translate(duckdb.Error('Catalog Error: Table "decisions" already exists'), path="f")
    assert not isinstance(other, TransientStoreError)
