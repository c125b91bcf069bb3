"""flaglens' own tables in a lake's PostgreSQL catalog, beside DuckLake's.

Several processes share a lake, and a few things need PostgreSQL's atomic statements and its one
clock rather than DuckLake's snapshots:

- ``flaglens_writers``: a sequence; each writer takes a number at start, and request ids are
  that number times 2**32 plus a count (no two writers hand out the same id).
- ``flaglens_leases``: one row per lease (who holds it, until when by the database's clock); see
  :mod:`store.lease`.
- ``flaglens_progress``: how far the lease holder's duplicate reconciliation has read each table
  (a snapshot id), so a new holder goes on where the last one stopped.

The catalog database is attached a second time with DuckDB's postgres extension, as
``flaglens_catalog``, and the statements are run there with ``postgres_execute`` /
``postgres_query``. Their only values are ours (a schema name checked as an identifier, lease
names and holder ids of a fixed alphabet, numbers); they are quoted nevertheless.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass
from datetime import datetime

import duckdb

from store.errors import StoreError, TerminalStoreError, TransientStoreError

CATALOG_ALIAS = "flaglens_catalog"
REQUEST_ID_BITS = 32  # request ids a writer hands out before it needs a new number
_TOKEN = re.compile(r"^[A-Za-z0-9_.:@-]{1,200}$")


@dataclass(frozen=True, slots=True)
class LeaseState:
    holder: str | None
    """Who holds it (None: nobody ever took it)."""
    live: bool
    """Whether the holder's time has not run out (by the database's clock)."""
    expires_at: datetime | None


def _translate(exc: duckdb.Error) -> StoreError:
    from store.connection import translate  # connection opens the catalog: imported late

    return translate(exc, path="the lake's catalog")


def _quote(text: str) -> str:
    if not _TOKEN.match(text):
        raise TerminalStoreError(f"{text!r} is not a lease name or holder id ([A-Za-z0-9_.:@-])")
    return "'" + text + "'"


class CatalogTables:
    """Statements on flaglens' tables in the catalog, through one connection of this process."""

    def __init__(self, connection: duckdb.DuckDBPyConnection, schema: str | None) -> None:
        self._con = connection
        self._schema = schema or "public"
        self._lock = threading.Lock()  # one DuckDB connection, used from several threads

    def _execute(self, sql: str) -> None:
        with self._lock:
            try:
                self._con.execute(f"CALL postgres_execute('{CATALOG_ALIAS}', $sql)", {"sql": sql})
            except duckdb.Error as exc:
                raise _translate(exc) from exc

    def _query(self, sql: str) -> list[tuple[object, ...]]:
        with self._lock:
            try:
                return self._con.execute(
                    f"SELECT * FROM postgres_query('{CATALOG_ALIAS}', $sql)",  # noqa: S608 - a constant
                    {"sql": sql},
                ).fetchall()
            except duckdb.Error as exc:
                raise _translate(exc) from exc

    def _table(self, name: str) -> str:
        return f'"{self._schema}".{name}'

    def create(self) -> None:
        """Create the tables if missing (idempotent; safe when several processes start)."""
        for attempt in range(3):
            try:
                self._create()
                return
            except TransientStoreError:
                # two sessions' CREATE ... IF NOT EXISTS can collide in PostgreSQL's own catalog
                if attempt == 2:
                    raise
                time.sleep(0.1 * (attempt + 1))

    def _create(self) -> None:
        self._execute(
            f'CREATE SCHEMA IF NOT EXISTS "{self._schema}"; '
            f"CREATE SEQUENCE IF NOT EXISTS {self._table('flaglens_writers')}; "
            f"CREATE TABLE IF NOT EXISTS {self._table('flaglens_leases')} ("
            "name text PRIMARY KEY, holder text NOT NULL, acquired_at timestamptz NOT NULL, "
            "expires_at timestamptz NOT NULL); "
            f"CREATE TABLE IF NOT EXISTS {self._table('flaglens_progress')} ("
            "name text PRIMARY KEY, snapshot_id bigint NOT NULL, "
            "updated_at timestamptz NOT NULL)"
        )

    def next_writer_number(self) -> int:
        rows = self._query(f"SELECT nextval('{self._table('flaglens_writers')}') AS n")
        return int(str(rows[0][0]))

    def take_lease(self, name: str, holder: str, ttl_seconds: float) -> LeaseState:
        """Take or renew lease ``name`` for ``holder`` unless another holds it unexpired.

        The upsert is one atomic statement; its result is read back in a second one (the
        postgres extension cannot return rows from an INSERT).
        """
        leases = self._table("flaglens_leases")
        ttl = f"interval '{float(ttl_seconds):.3f} seconds'"
        self._execute(
            f"INSERT INTO {leases} AS l VALUES ({_quote(name)}, {_quote(holder)}, now(), "  # noqa: S608 - checked tokens
            f"now() + {ttl}) ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, "
            "expires_at = EXCLUDED.expires_at, acquired_at = CASE WHEN l.holder = "
            "EXCLUDED.holder THEN l.acquired_at ELSE now() END "
            "WHERE l.holder = EXCLUDED.holder OR l.expires_at < now()"
        )
        return self.lease(name)

    def lease(self, name: str) -> LeaseState:
        rows = self._query(
            f"SELECT holder, expires_at > now() AS live, expires_at "  # noqa: S608 - checked tokens
            f"FROM {self._table('flaglens_leases')} WHERE name = {_quote(name)}"
        )
        if not rows:
            return LeaseState(None, False, None)
        holder, live, expires = rows[0]
        return LeaseState(
            str(holder), bool(live), expires if isinstance(expires, datetime) else None
        )

    def release_lease(self, name: str, holder: str) -> None:
        """Give the lease up now (if still ours), so another process takes it at once."""
        self._execute(
            f"DELETE FROM {self._table('flaglens_leases')} "  # noqa: S608 - checked tokens
            f"WHERE name = {_quote(name)} AND holder = {_quote(holder)}"
        )

    def size_bytes(self) -> int:
        """What the catalog's tables (DuckLake's and flaglens') take in PostgreSQL, indexes and
        TOAST included."""
        rows = self._query(
            "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "  # noqa: S608
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            f"WHERE n.nspname = {_quote(self._schema)} AND c.relkind = 'r'"
        )
        return int(float(str(rows[0][0])))  # PostgreSQL's sum is a numeric

    def progress(self, name: str) -> int | None:
        rows = self._query(
            f"SELECT snapshot_id FROM {self._table('flaglens_progress')} "  # noqa: S608 - checked tokens
            f"WHERE name = {_quote(name)}"
        )
        return int(str(rows[0][0])) if rows else None

    def set_progress(self, name: str, snapshot_id: int) -> None:
        self._execute(
            f"INSERT INTO {self._table('flaglens_progress')} VALUES ({_quote(name)}, "  # noqa: S608 - checked tokens
            f"{int(snapshot_id)}, now()) ON CONFLICT (name) DO UPDATE SET "
            "snapshot_id = EXCLUDED.snapshot_id, updated_at = EXCLUDED.updated_at"
        )
