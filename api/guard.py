"""Reads that never starve ingest: a slot per running read, and a time limit per query.

:class:`QueryGuard` hands out at most ``max_concurrent`` slots; a read waits ``slot_wait``
seconds for one, then is refused (503 busy). The reading thread runs at a lower priority than ingest
(:mod:`api.priority`). Within a slot the read gets a :class:`Watch`: its
own cursors (never the writer's), each interrupted with DuckDB's ``interrupt()`` once the
watch's time limit passes, and again every tenth of a second while the read goes on (a query
started after the first interrupt is stopped too); a cursor asked for after the limit is
refused. The read then ends with :class:`~api.errors.QueryTimeout`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import duckdb

from analytics.session import AnalyticsConfig, Session
from api.errors import Busy, QueryTimeout
from api.limits import ApiLimits
from api.priority import yield_to_ingest

T = TypeVar("T")
_REINTERRUPT = 0.1


class Watch:
    """The cursors of one read and its deadline (see the module docstring)."""

    def __init__(self, cursor_factory: Callable[[], duckdb.DuckDBPyConnection]) -> None:
        self._factory = cursor_factory
        self._cursors: list[duckdb.DuckDBPyConnection] = []
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None
        self._done = False
        self.limit = 0.0
        self.expired = False

    def cursor(self) -> duckdb.DuckDBPyConnection:
        with self._lock:
            if self.expired:
                raise QueryTimeout(self.limit)
            cursor = self._factory()
            self._cursors.append(cursor)
            return cursor

    def arm(self, seconds: float) -> None:
        """Interrupt this watch's queries ``seconds`` from now unless :meth:`disarm` comes first."""
        with self._lock:
            self.limit = seconds
            self._schedule(seconds)

    def disarm(self) -> None:
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None

    def _schedule(self, seconds: float) -> None:
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def _expire(self) -> None:
        with self._lock:
            if self._done or self._timer is None:
                return
            self.expired = True
            for cursor in self._cursors:
                cursor.interrupt()
            self._schedule(_REINTERRUPT)

    def interrupt(self) -> None:
        """Stop this watch's running queries now (the reader went away); safe from any thread."""
        with self._lock:
            cursors = list(self._cursors)
        for cursor in cursors:
            cursor.interrupt()

    def close(self) -> None:
        """Stop the timer and close every cursor of the watch."""
        with self._lock:
            self._done = True
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            cursors, self._cursors = self._cursors, []
        for cursor in cursors:
            cursor.close()


class QueryGuard:
    """Slots and time limits for the reads of one store (see the module docstring)."""

    def __init__(
        self,
        cursor_factory: Callable[[], duckdb.DuckDBPyConnection],
        config: AnalyticsConfig,
        limits: ApiLimits,
    ) -> None:
        self._factory = cursor_factory
        self.config = config
        self.limits = limits
        self._slots = threading.BoundedSemaphore(limits.max_concurrent)

    @contextmanager
    def slot(self) -> Iterator[Watch]:
        """Hold one read slot (raises Busy when none frees up in time); yields the read's
        watch, which is closed with the slot."""
        yield_to_ingest(self.limits.nice)
        started = time.monotonic()
        if not self._slots.acquire(timeout=self.limits.slot_wait):
            raise Busy(self.limits.max_concurrent, time.monotonic() - started)
        watch = Watch(self._factory)
        try:
            yield watch
        finally:
            watch.close()
            self._slots.release()

    def run(self, read: Callable[[Session], T]) -> T:
        """Run ``read`` on a session of its own cursors, in a slot, within the time limit.

        Raises:
            Busy, QueryTimeout: as the module docstring says.
            whatever ``read`` raises otherwise.
        """
        with self.slot() as watch:
            return timed(
                watch, self.limits.query_timeout, lambda: read(Session(watch.cursor, self.config))
            )


def timed(watch: Watch, seconds: float, call: Callable[[], T]) -> T:
    """``call()`` with ``watch``'s queries interrupted after ``seconds``; QueryTimeout then."""
    watch.arm(seconds)
    try:
        result = call()
    except QueryTimeout:
        raise
    except Exception:
        if watch.expired:
            raise QueryTimeout(seconds) from None
        raise
    finally:
        watch.disarm()
    if watch.expired:
        raise QueryTimeout(seconds)
    return result
