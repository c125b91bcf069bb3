"""Opening a store read-write: the store (a file, or a lake) is attached with flaglens' row
group size, every thread's cursor reads it, and a file's spill directory is beside it."""

from __future__ import annotations

import threading

from store.connection import ROW_GROUP_SIZE, Store


def test_cursors_of_every_thread_use_the_attached_store(tmp_path, store_maker):
    url, data_path = store_maker.url(tmp_path)
    with Store.open(url, data_path=data_path) as store:
        if store_maker.kind == "duckdb":  # a lake's Parquet files are sized by DuckLake
            assert store.row_group_size == ROW_GROUP_SIZE
        store.cursor().execute("CREATE TABLE t AS SELECT 42 AS x")
        seen = []
        thread = threading.Thread(
            target=lambda: seen.append(store.cursor().execute("SELECT x FROM t").fetchall())
        )
        thread.start()
        thread.join()
        assert seen == [[(42,)]]
    with Store.open(url, data_path=data_path, read_only=True) as store:
        assert store.cursor().execute("SELECT x FROM t").fetchall() == [(42,)]


def test_queries_spill_beside_the_file_not_into_the_working_directory(tmp_path):
    path = tmp_path / "it's here.duckdb"  # a quote in the path, too
    with Store.open(path) as store:
        (setting,) = store.cursor().execute("SELECT current_setting('temp_directory')").fetchone()
        assert setting == f"{path}.tmp"
