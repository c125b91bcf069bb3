"""Stores for tests that run on both kinds: a DuckDB file, or a DuckLake on a real PostgreSQL
(the session's throwaway cluster, :mod:`tests.postgres`), each lake in a schema
of its own, or (with a template) a database of its own."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from store.connection import Store
from tests.postgres import Cluster


@dataclass(frozen=True)
class StoreMaker:
    """Opens stores of one kind; the same directory and name give the same store again. The
    fixtures that hand one out close what it opened (:meth:`close_all`) after the test: a lake
    left open holds a PostgreSQL connection until the session ends."""

    kind: str  # "duckdb" | "ducklake"
    cluster: Cluster | None = None
    # a database of ``cluster`` holding a migrated, empty lake: each new lake starts as a copy
    # of it, which is cheaper than creating and migrating one; None: each lake is new
    template: str | None = None
    opened: list[Store] = field(default_factory=list, compare=False, repr=False)

    def url(self, directory: Path, name: str = "store") -> tuple[str, str | None]:
        """The store URL and data path (None for a DuckDB file)."""
        if self.cluster is None:
            return str(directory / f"{name}.duckdb"), None
        digest = hashlib.sha1(str(directory / name).encode()).hexdigest()[:16]
        data_path = directory / f"{name}-data"
        if self.template is None:
            return self.cluster.lake_url(f"lake_{digest}"), str(data_path)
        database = f"lake_{digest}"
        if not self.cluster.psql(f"SELECT 1 FROM pg_database WHERE datname = '{database}'"):
            self.cluster.clone(self.template, database)
            # the copy's files go under its own data path (DuckLake refuses another path than
            # the one its catalog names)
            literal = str(data_path).replace("'", "''")
            self.cluster.psql(
                f"UPDATE ducklake_metadata SET value = '{literal}/' WHERE key = 'data_path'",
                database=database,
            )
        return self.cluster.lake_url(database=database), str(data_path)

    def open(self, directory: Path, name: str = "store", **options: Any) -> Store:
        url, data_path = self.url(directory, name)
        store = Store.open(url, data_path=data_path, **options)
        self.opened.append(store)
        return store

    def new(self, directory: Path) -> Store:
        """A fresh, migrated store for known-answer tests: in memory for DuckDB, or a lake of
        its own with its data files in ``directory``."""
        if self.cluster is None:
            store = Store.open(":memory:")
            self.opened.append(store)
            return store
        return self.open(directory, "known")

    def close_all(self) -> None:
        while self.opened:
            self.opened.pop().close()
