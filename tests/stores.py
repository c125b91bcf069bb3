"""Stores for tests that run on both kinds: a DuckDB file, or a DuckLake on a real PostgreSQL
(the session's throwaway cluster, :mod:`tests.postgres`), each lake in a schema of its own."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from store.connection import Store
from tests.postgres import Cluster


@dataclass(frozen=True)
class StoreMaker:
    """Opens stores of one kind; the same directory and name give the same store again."""

    kind: str  # "duckdb" | "ducklake"
    cluster: Cluster | None = None

    def url(self, directory: Path, name: str = "store") -> tuple[str, str | None]:
        """The store URL and data path (None for a DuckDB file)."""
        if self.cluster is None:
            return str(directory / f"{name}.duckdb"), None
        schema = "lake_" + hashlib.sha1(str(directory / name).encode()).hexdigest()[:16]
        return self.cluster.lake_url(schema), str(directory / f"{name}-data")

    def open(self, directory: Path, name: str = "store", **options: Any) -> Store:
        url, data_path = self.url(directory, name)
        return Store.open(url, data_path=data_path, **options)


NATIVE = StoreMaker("duckdb")
