"""Reader cursors that cannot write: what shows that a caller writes only through the writer.

Every statement on a :class:`ReadOnlyCursor` runs in a read-only transaction of its own, so it
reads what is committed, as an autocommit cursor does, while DuckDB itself refuses any write
("transaction is launched in read-only mode") and any BEGIN ("cannot start a transaction
within a transaction"). The writer keeps its own, ordinary cursor.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import duckdb

from store.connection import Store
from store.writer import StoreWriter


class ReadOnlyCursor:
    """A store cursor on which nothing can be written (see the module docstring)."""

    def __init__(self, cursor: duckdb.DuckDBPyConnection) -> None:
        self._cursor = cursor
        self._open = False

    def execute(self, query: str, parameters: Any = None) -> ReadOnlyCursor:
        self._begin()
        if parameters is None:
            self._cursor.execute(query)
        else:
            self._cursor.execute(query, parameters)
        return self

    def executemany(self, query: str, parameters: Any) -> ReadOnlyCursor:
        self._begin()
        self._cursor.executemany(query, parameters)
        return self

    # a registered view lives in the transaction that made it: make it outside of one
    def register(self, name: str, data: Any) -> ReadOnlyCursor:
        self._end()
        self._cursor.register(name, data)
        return self

    def unregister(self, name: str) -> ReadOnlyCursor:
        self._end()
        self._cursor.unregister(name)
        return self

    def _begin(self) -> None:
        self._end()
        self._cursor.execute("BEGIN TRANSACTION READ ONLY")
        self._open = True

    def _end(self) -> None:
        if self._open:
            self._open = False
            with contextlib.suppress(duckdb.TransactionException):  # ended by a failure
                self._cursor.execute("ROLLBACK")

    def __getattr__(self, name: str) -> Any:  # fetchall, fetchone, to_arrow_table, ...
        return getattr(self._cursor, name)


def read_only_cursors(store: Store) -> Callable[[], Any]:
    """A cursor factory (as :class:`analytics.session.Session` takes) of read-only cursors."""
    return lambda: ReadOnlyCursor(store.cursor())


def read_only_beside_writers(monkeypatch: Any) -> list[StoreWriter]:
    """From now on, a store whose :class:`StoreWriter` is made hands out read-only cursors
    (its writer keeps its own); returns the writers made, for code that makes its own."""
    made: list[StoreWriter] = []
    make = StoreWriter.__init__

    def init(writer: StoreWriter, store: Store, **options: Any) -> None:
        make(writer, store, **options)
        plain = store.cursor
        monkeypatch.setattr(store, "cursor", lambda: ReadOnlyCursor(plain()))
        made.append(writer)

    monkeypatch.setattr(StoreWriter, "__init__", init)
    return made
