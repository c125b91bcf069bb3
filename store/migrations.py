"""Schema migrations: numbered SQL files applied in order, each once, in one transaction.

To change the schema, add ``migrations/NNNN_what.sql`` with the next number; never edit a
released file. ``schema_migrations`` records what was applied and when; on a lake it is a table
of the lake like the others, so the schema version lives with the data.

The same files build a DuckDB file and a DuckLake. DuckLake has no PRIMARY KEY or UNIQUE
constraints (nor indexes): on a lake they are left out of the statements
(:func:`for_dialect`), and no code relies on them (upserts are a DELETE and an INSERT in one
transaction). Every other type and clause the migrations use (JSON, STRUCT, lists, UTINYINT,
DEFAULT, NOT NULL, ALTER TABLE ADD COLUMN) DuckLake has.

Several processes may open a new lake at once: a migration that loses the race (DuckLake refuses
to create a table another transaction created) is not retried blindly; the version is read again
and only what is still missing is applied.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from importlib import resources
from typing import Literal

import duckdb

_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_KEY_CONSTRAINT = re.compile(
    r"\s+(PRIMARY\s+KEY|UNIQUE)\b"
)  # the migrations' keywords are upper case
_RACE_ATTEMPTS = 5
Dialect = Literal["duckdb", "ducklake"]


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


def available_migrations() -> list[Migration]:
    """Every migration shipped with flaglens, by version."""
    folder = resources.files("store").joinpath("migrations")
    found = []
    for entry in folder.iterdir():
        match = _FILE.match(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), match.group(2), entry.read_text("utf-8")))
    return sorted(found, key=lambda m: m.version)


def latest_version() -> int:
    return available_migrations()[-1].version


def for_dialect(sql: str, dialect: Dialect) -> str:
    """A migration's statements as ``dialect`` takes them (see the module docstring)."""
    if dialect == "ducklake":
        return _KEY_CONSTRAINT.sub("", sql)
    return sql


def applied_version(con: duckdb.DuckDBPyConnection) -> int:
    """The schema version of a database (0 when it has never been migrated)."""
    exists = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'schema_migrations' "
        "AND table_catalog = current_database() AND table_schema = current_schema()"
    ).fetchone()
    if not exists or not exists[0]:
        return 0
    row = con.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchone()
    return int(row[0]) if row else 0


def migrate(
    con: duckdb.DuckDBPyConnection, *, up_to: int | None = None, dialect: Dialect = "duckdb"
) -> list[int]:
    """Apply every migration newer than the database's version (and, when ``up_to`` is given,
    not newer than it); returns the versions applied."""
    for attempt in range(_RACE_ATTEMPTS):
        try:
            return _migrate(con, up_to, dialect)
        except (duckdb.TransactionException, duckdb.CatalogException):
            # another process migrated the same lake meanwhile; read where it got to
            if dialect != "ducklake" or attempt == _RACE_ATTEMPTS - 1:
                raise
            time.sleep(0.2 * (attempt + 1))
    return []


def _migrate(con: duckdb.DuckDBPyConnection, up_to: int | None, dialect: Dialect) -> list[int]:
    con.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations "
        "(version INTEGER NOT NULL, name VARCHAR NOT NULL, applied_at TIMESTAMPTZ NOT NULL)"
    )
    con.execute("BEGIN TRANSACTION")
    try:
        # the version is read inside the transaction: on a lake, the snapshot that another
        # process's migration either precedes (then it is seen here) or conflicts with
        current = applied_version(con)
        # all pending migrations go in this one transaction: a DuckLake commit costs catalog
        # round trips whatever it holds (a new lake: 0.2 s instead of 2.3 s one by one)
        pending = [
            migration
            for migration in available_migrations()
            if migration.version > current and (up_to is None or migration.version <= up_to)
        ]
        for migration in pending:
            con.execute(for_dialect(migration.sql, dialect))
            con.execute(
                "INSERT INTO schema_migrations VALUES ($version, $name, now())",
                {"version": migration.version, "name": migration.name},
            )
        con.execute("COMMIT")
    except Exception:
        _rollback(con)
        raise
    return [migration.version for migration in pending]


def _rollback(con: duckdb.DuckDBPyConnection) -> None:
    try:
        con.execute("ROLLBACK")
    except duckdb.Error:
        pass  # a COMMIT that failed has ended the transaction already; the first error counts
