"""Where a store lives: a DuckDB file (the embedded default) or a DuckLake.

A store URL is either a path to a DuckDB file (``flaglens.duckdb``, ``duckdb:path``,
``:memory:``) or ``ducklake:postgres://USER[:PASSWORD]@HOST[:PORT]/DBNAME`` for a DuckLake
whose catalog is that PostgreSQL database; its data files go under a separate data path (a local
or shared directory; DuckLake takes an object store URL such as ``s3://bucket/prefix`` there as
well). A ``metadata_schema`` query parameter puts the catalog's tables in that PostgreSQL schema
instead of ``public`` (several lakes in one database); every other query parameter is passed to
libpq (``sslmode=require``, ...).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from store.errors import TerminalStoreError

StoreKind = Literal["duckdb", "ducklake"]

_LAKE_SCHEMES = ("ducklake:postgres://", "ducklake:postgresql://")
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
STORE_URL_FORMS = (
    "a DuckDB file path (flaglens.duckdb)",
    "ducklake:postgres://USER@HOST:PORT/DBNAME with a data path",
)


class StoreUrlError(TerminalStoreError):
    """A store URL that names no store flaglens can open."""

    def __init__(self, url: str, problem: str) -> None:
        self.url = url
        super().__init__(
            f"store {mask_password(url)!r}: {problem}; a store is " + " or ".join(STORE_URL_FORMS)
        )


@dataclass(frozen=True, slots=True)
class StoreLocation:
    """A parsed store URL."""

    kind: StoreKind
    path: str
    """The DuckDB file (or ``:memory:``); for a lake, the catalog's libpq URI."""
    data_path: str | None = None
    """Where a lake's data files are (None: a DuckDB file, or the path the catalog recorded)."""
    metadata_schema: str | None = None
    """The PostgreSQL schema of a lake's catalog tables (None: ``public``)."""

    @property
    def is_lake(self) -> bool:
        return self.kind == "ducklake"

    def describe(self) -> str:
        """The location for messages and the start-up banner, without a password (one word:
        scripts read it from the banner)."""
        if not self.is_lake:
            return self.path
        where = f"ducklake:{mask_password(self.path)}"
        if self.metadata_schema:
            where += ("&" if "?" in where else "?") + f"metadata_schema={self.metadata_schema}"
        return where


def mask_password(url: str) -> str:
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", url)


def parse_store(url: str | Path, *, data_path: str | Path | None = None) -> StoreLocation:
    """Read a store URL (see the module docstring).

    Raises:
        StoreUrlError: the URL is neither a DuckDB path nor a DuckLake on PostgreSQL.
    """
    text = str(url)
    if text.startswith("ducklake:"):
        return _parse_lake(text, None if data_path is None else str(data_path))
    if data_path is not None:
        raise StoreUrlError(text, "a data path is for a DuckLake; a DuckDB file holds its data")
    path = text.removeprefix("duckdb:")
    if not path:
        raise StoreUrlError(text, "no file named")
    if "://" in path:
        raise StoreUrlError(text, "not a file path, and not ducklake:postgres://")
    return StoreLocation("duckdb", path)


def _parse_lake(text: str, data_path: str | None) -> StoreLocation:
    if not text.startswith(_LAKE_SCHEMES):
        raise StoreUrlError(text, "flaglens keeps a DuckLake's catalog in PostgreSQL only")
    parts = urlsplit(text.removeprefix("ducklake:"))
    if not parts.hostname or not parts.path.strip("/"):
        raise StoreUrlError(text, "the PostgreSQL URL needs a host and a database name")
    query = parse_qsl(parts.query, keep_blank_values=True)
    schema = None
    passed = []
    for name, value in query:
        if name == "metadata_schema":
            if not _IDENTIFIER.match(value):
                raise StoreUrlError(
                    text, f"metadata_schema {value!r} is not a lower-case SQL identifier"
                )
            schema = value
        else:
            passed.append((name, value))
    if not data_path:
        raise StoreUrlError(text, "a DuckLake needs --data-path (FLAGLENS_DATA_PATH)")
    uri = urlunsplit(("postgresql", parts.netloc, parts.path, urlencode(passed), ""))
    if "://" not in data_path:
        data_path = str(Path(data_path).absolute())
    return StoreLocation("ducklake", uri, data_path=data_path, metadata_schema=schema)
