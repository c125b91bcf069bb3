"""Write functions: work that the rest of flaglens hands to the one writer.

Ingest hands the writer rows; everything else that writes (the recorded change facts and cohort
periods, the alert state, the webhook outbox) hands it a *write function*: a callable taking the
writer's cursor, submitted with :meth:`store.writer.StoreWriter.execute_write_fn` (as
datasette's ``execute_write_fn``). The writer thread runs it between ingest groups in a
transaction of its own and settles the returned future with its result or error, so every
write to the database happens on one cursor, one transaction at a time.

A write function should do only the writes and the reads they depend on (read the current state,
write the next one); the heavy reads belong on a reader cursor before it is submitted, since
ingest waits while it runs. It must not begin, commit or roll back a transaction itself, and must
not wait on the writer (it would wait for itself).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, TypeVar

import duckdb

from store.connection import translate

log = logging.getLogger(__name__)

T = TypeVar("T")
WriteFn = Callable[[duckdb.DuckDBPyConnection], T]
"""A write function: called with the writer's cursor inside a transaction; its return value
becomes the future's result."""


@dataclass(frozen=True, slots=True)
class WriteCall:
    """A submitted write function and the future its caller waits on."""

    fn: WriteFn[Any]
    future: Future[Any]


def run_call(
    cursor: duckdb.DuckDBPyConnection,
    call: WriteCall,
    *,
    path: str,
    done: Callable[[bool], None],
) -> None:
    """Run ``call`` in a transaction of its own on ``cursor`` and settle its future.

    On failure the transaction is rolled back and the future gets the error (a DuckDB error
    translated by :func:`~store.connection.translate`). ``done`` is told whether it committed
    just before the future is settled; a call its caller cancelled is skipped.
    """
    if not call.future.set_running_or_notify_cancel():
        return
    try:
        cursor.execute("BEGIN TRANSACTION")
        result = call.fn(cursor)
        cursor.execute("COMMIT")
    except BaseException as exc:  # whatever it raised is the caller's; the writer goes on
        _roll_back(cursor)
        done(False)
        call.future.set_exception(_translated(exc, path))
        return
    done(True)
    call.future.set_result(result)


def _roll_back(cursor: duckdb.DuckDBPyConnection) -> None:
    try:
        cursor.execute("ROLLBACK")
    except duckdb.TransactionException:
        pass  # DuckDB ended it already (a failed COMMIT, or the function committed on its own)
    except duckdb.Error as exc:  # the next transaction will fail and say why
        log.error("could not roll back a failed write function: %s", exc)


def _translated(exc: BaseException, path: str) -> BaseException:
    if not isinstance(exc, duckdb.Error):
        return exc
    error = translate(exc, path=path)
    error.__cause__ = exc
    return error
