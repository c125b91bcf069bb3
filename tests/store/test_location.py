"""Store URLs: a DuckDB file, or a DuckLake on PostgreSQL with its data path."""

from __future__ import annotations

import pytest

from store.location import StoreUrlError, parse_store


def test_store_urls_name_a_duckdb_file_or_a_lake_on_postgresql():
    assert parse_store("flaglens.duckdb").path == "flaglens.duckdb"
    assert parse_store("duckdb:/data/x.duckdb").path == "/data/x.duckdb"
    lake = parse_store(
        "ducklake:postgres://u:secret@db:5433/flaglens?metadata_schema=team_a&sslmode=require",
        data_path="s3://bucket/lake",
    )
    assert (lake.kind, lake.path, lake.metadata_schema, lake.data_path) == (
        "ducklake",
        "postgresql://u:secret@db:5433/flaglens?sslmode=require",
        "team_a",
        "s3://bucket/lake",
    )
    assert "secret" not in lake.describe()


@pytest.mark.parametrize(
    ("url", "data_path", "problem"),
    [
        ("ducklake:postgres://db/flaglens", None, "needs --data-path"),
        ("ducklake:sqlite:x.db", "d", "PostgreSQL only"),
        ("ducklake:postgres://db/", "d", "host and a database name"),
        ("ducklake:postgres://db/x?metadata_schema=Bad-Name", "d", "not a lower-case SQL"),
        ("x.duckdb", "d", "a data path is for a DuckLake"),
        ("postgres://db/x", None, "not a file path"),
    ],
)
def test_a_store_url_that_names_no_store_says_which_forms_do(url, data_path, problem):
    with pytest.raises(StoreUrlError, match=problem) as caught:
        parse_store(url, data_path=data_path)
    assert "ducklake:postgres://USER@HOST:PORT/DBNAME" in str(caught.value)
