"""The store on a DuckLake: URLs, migrations in the lake, several writers at once (request ids,
duplicates across writers, conflicts retried), the lease and the upkeep, on a real PostgreSQL."""

from __future__ import annotations

import threading
import time

import pytest

from store.connection import Store
from store.errors import TerminalStoreError
from store.lease import CatalogLease
from store.migrations import latest_version
from store.reconcile import reconcile
from store.status import store_status
from store.transfer import copy_file_into
from store.upkeep import LakeUpkeep
from store.writer import StoreWriter
from tests.store.test_writer import SECOND, T0, stored, write
from tests.stores import StoreMaker

pytestmark = pytest.mark.e2e  # a real PostgreSQL


@pytest.fixture
def lake(postgres) -> StoreMaker:
    return StoreMaker("ducklake", postgres)


def test_the_schema_version_lives_in_the_lake_and_readers_check_it(lake, tmp_path):
    with lake.open(tmp_path) as store:
        assert store.schema_version() == latest_version()
        store.cursor().execute("INSERT INTO schema_migrations VALUES (9999, 'future', now())")
        with pytest.raises(TerminalStoreError, match="version 9999, this flaglens reads"):
            lake.open(tmp_path, read_only=True)
        store.cursor().execute("DELETE FROM schema_migrations WHERE version = 9999")
    with lake.open(tmp_path, read_only=True) as reader:
        assert reader.schema_version() == latest_version()
        assert reader.cursor().execute("SELECT count(*) FROM decisions").fetchone() == (0,)


def test_processes_opening_a_new_lake_at_once_migrate_it_once(lake, tmp_path):
    opened: list[Store] = []
    errors: list[BaseException] = []

    def open_one() -> None:
        try:
            opened.append(lake.open(tmp_path))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    versions = opened[0].cursor().execute("SELECT version FROM schema_migrations").fetchall()
    assert sorted(v for (v,) in versions) == list(range(1, latest_version() + 1))
    for store in opened:
        store.close()


def test_each_writer_hands_out_its_own_request_ids_and_names_itself(lake, tmp_path):
    with lake.open(tmp_path) as one, lake.open(tmp_path) as two:
        with StoreWriter(one, max_group_delay=0) as a, StoreWriter(two, max_group_delay=0) as b:
            first, second = a.next_request_id(), b.next_request_id()
            assert first >> 32 != second >> 32
            write(a, [("a", T0)])
            write(b, [("b", T0)])
        rows = one.cursor().execute("SELECT request_id, writer FROM ingest_log").fetchall()
        assert len({request for request, _ in rows}) == 2
        assert {writer for _, writer in rows} == {a.name, b.name}


def test_a_retry_landing_on_another_writer_is_dropped_there(lake, tmp_path):
    with lake.open(tmp_path) as one, lake.open(tmp_path) as two:
        with StoreWriter(one, max_group_delay=0) as a, StoreWriter(two, max_group_delay=0) as b:
            assert write(a, [("a", T0), ("b", T0 + 1)]) == 0
            assert write(b, [("a", T0), ("c", T0 + 2)]) == 1  # b never committed "a" itself
        assert stored(one) == [("a", T0), ("b", T0 + 1), ("c", T0 + 2)]


def test_duplicates_two_writers_committed_at_once_are_removed_once(lake, tmp_path):
    """What two writers' racing commits leave (the same decision twice) is removed after the
    fact: the copy committed first stays, the other request's ledger is completed."""
    with lake.open(tmp_path) as store:
        cursor = store.cursor()
        with StoreWriter(store, max_group_delay=0) as writer:
            write(writer, [("a", T0), ("b", T0 + SECOND)])
        assert reconcile(store, cursor).removed == {
            "decisions": 0, "policy_changes": 0, "spans": 0, "metric_points": 0
        }  # fmt: skip
        # the race, as it lands: rows of another request with the same keys (and a new one)
        cursor.execute(
            "INSERT INTO decisions BY NAME SELECT * REPLACE (77 AS request_id) FROM decisions"
        )
        cursor.execute(
            "INSERT INTO decisions BY NAME SELECT * REPLACE (78 AS request_id, 'n' AS "
            "decision_id) FROM decisions WHERE decision_id = 'a' AND request_id = 77"
        )
        assert reconcile(store, cursor).removed["decisions"] == 2
        assert stored(store) == [("a", T0), ("b", T0 + SECOND), ("n", T0)]
        kept = cursor.execute("SELECT DISTINCT request_id FROM decisions WHERE decision_id <> 'n'")
        assert kept.fetchall() != [(77,)]
        late = cursor.execute("SELECT table_name, request_id, rows FROM late_duplicates")
        assert late.fetchall() == [("decisions", 77, 2)]
        assert reconcile(store, cursor).removed["decisions"] == 0  # read once only


def test_a_commit_that_conflicts_with_another_process_is_retried(lake, tmp_path):
    """DuckLake refuses an append to a table another process deleted from meanwhile; the writer
    commits again instead of failing the request."""
    with lake.open(tmp_path) as store, lake.open(tmp_path) as other:
        with StoreWriter(store, max_group_delay=0) as writer:
            write(writer, [("old", T0)])
            append_ledger = writer._append_ledger
            deleted = []

            def delete_meanwhile(*args, **kwargs):
                if not deleted:  # inside the writer's transaction, before its COMMIT
                    other.cursor().execute("DELETE FROM decisions WHERE decision_id = 'old'")
                    deleted.append(True)
                append_ledger(*args, **kwargs)

            writer._append_ledger = delete_meanwhile  # type: ignore[method-assign]
            assert write(writer, [("new", T0 + 1)]) == 0
            assert writer.stats().conflicts_retried == 1
        assert stored(store) == [("new", T0 + 1)]


def test_the_writer_leaves_duckdb_threads_alone_on_a_lake(lake, tmp_path):
    """On a file the writer commits on one DuckDB thread; on a lake its `SET threads` waited
    forever for another thread's scan of the lake's Parquet files (make demo-lake hung)."""
    with lake.open(tmp_path, threads=2) as store, StoreWriter(store, max_group_delay=0) as writer:
        seen = []
        append_ledger = writer._append_ledger

        def look(*args, **kwargs):  # inside the writer's commit
            row = store.cursor().execute("SELECT current_setting('threads')").fetchone()
            seen.append(row[0])
            append_ledger(*args, **kwargs)

        writer._append_ledger = look  # type: ignore[method-assign]
        write(writer, [("a", T0)])
    assert seen == [2]


def test_one_process_holds_the_lease_and_another_takes_it_when_it_dies(lake, tmp_path):
    with lake.open(tmp_path) as one, lake.open(tmp_path) as two:
        first = one.lease("rounds", ttl=1.5)
        second = two.lease("rounds", ttl=1.5)
        assert isinstance(first, CatalogLease) and isinstance(second, CatalogLease)
        assert first.renew() and not second.renew()
        # the holder dies: it renews no more; its lease runs out by the database's clock
        assert not second.renew()
        time.sleep(1.6)
        assert not first.held
        assert second.renew()
        assert not first.renew()
        second.start()
        second.close()  # a clean stop gives it up at once
        assert first.renew()


def test_upkeep_merges_small_files_and_expires_what_reconciliation_has_read(lake, tmp_path):
    with lake.open(tmp_path, lake_options=None) as store:
        with StoreWriter(store, max_group_delay=0) as writer:
            for i in range(4):  # past the inlining limit: one Parquet file each
                write(writer, [(f"k{i}-{n}", T0 + i * SECOND + n) for n in range(1200)])
        cursor = store.cursor()

        def files() -> int:
            query = "SELECT count(*) FROM ducklake_list_files('flaglens', 'decisions')"
            return int(cursor.execute(query).fetchone()[0])

        assert files() == 4
        lease = store.lease("rounds")
        upkeep = LakeUpkeep(store, lease)
        try:
            report = upkeep.upkeep_now()
        finally:
            upkeep.stop()
        assert files() == 1
        assert report.merged_files == 4
        assert cursor.execute("SELECT count(*) FROM decisions").fetchone() == (4800,)
        assert upkeep.last_reconciled is not None


def test_status_counts_rows_per_table_and_writer(store_maker, tmp_path):
    with store_maker.open(tmp_path) as store:
        with StoreWriter(store, max_group_delay=0) as writer:
            write(writer, [("a", T0), ("b", T0 + 1)])
        status = store_status(store)
    assert status["rows"]["decisions"] == 2
    assert [(w["writer"], w["requests"], w["accepted"]) for w in status["writers"]] == [
        (writer.name, 1, 2)
    ]
    assert ("lake" in status) == (store_maker.kind == "ducklake")
    if store_maker.kind == "ducklake":
        assert status["lake"]["catalog_bytes"] > 0
        assert status["lake"]["data_files"] == 0  # two rows: inlined in the catalog


def test_a_duckdb_file_is_copied_into_a_new_lake_whole(lake, tmp_path):
    with Store.open(tmp_path / "old.duckdb") as old, StoreWriter(old, max_group_delay=0) as w:
        write(w, [("a", T0), ("b", T0 + 1)])
    with lake.open(tmp_path) as store:
        copied = copy_file_into(tmp_path / "old.duckdb", store)
        assert (copied["decisions"], copied["ingest_log"]) == (2, 1)
        assert stored(store) == [("a", T0), ("b", T0 + 1)]
        with pytest.raises(TerminalStoreError, match="is not empty"):
            copy_file_into(tmp_path / "old.duckdb", store)
