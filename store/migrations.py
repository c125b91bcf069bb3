"""Schema migrations: numbered SQL files applied in order, each once, each in a transaction.

To change the schema, add ``migrations/NNNN_what.sql`` with the next number; never edit a
released file. ``schema_migrations`` records what was applied and when.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

import duckdb

_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


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


def applied_version(con: duckdb.DuckDBPyConnection) -> int:
    """The schema version of a database (0 when it has never been migrated)."""
    exists = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'schema_migrations'"
    ).fetchone()
    if not exists or not exists[0]:
        return 0
    row = con.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchone()
    return int(row[0]) if row else 0


def migrate(con: duckdb.DuckDBPyConnection, *, up_to: int | None = None) -> list[int]:
    """Apply every migration newer than the database's version (and, when ``up_to`` is given,
    not newer than it); returns the versions applied."""
    con.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations "
        "(version INTEGER NOT NULL, name VARCHAR NOT NULL, applied_at TIMESTAMPTZ NOT NULL)"
    )
    current = applied_version(con)
    done = []
    for migration in available_migrations():
        if migration.version <= current:
            continue
        if up_to is not None and migration.version > up_to:
            break
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute(migration.sql)
            con.execute(
                "INSERT INTO schema_migrations VALUES ($version, $name, now())",
                {"version": migration.version, "name": migration.name},
            )
            con.execute("COMMIT")
        except Exception:
            con.execute("ROLLBACK")
            raise
        done.append(migration.version)
    return done
