"""Leases: exactly one process of those sharing a store does the store's periodic work.

On a lake, every `flaglens serve` (ingest servers and readers alike) asks for the lease
``rounds``; the one holding it evaluates alerts, records closed windows, reconciles duplicates
and runs the lake's upkeep. The holder renews it every ``ttl / 3`` seconds; a holder that dies
stops renewing, its lease runs out ``ttl`` seconds later by PostgreSQL's clock (no two machines'
clocks are compared), and the next process to ask takes it over. A holder that cannot renew in
time (catalog unreachable, process paused) treats the lease as lost from the moment its last
successful renewal would have run out by its own clock.

A DuckDB file has one process, so its lease is always held (:class:`LocalLease`).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from typing import Protocol

from store.catalog import CatalogTables
from store.errors import StoreError

log = logging.getLogger(__name__)

DEFAULT_LEASE_TTL = 30.0


class Lease(Protocol):
    """Whether this process may do the store's periodic work now."""

    name: str
    holder: str

    @property
    def held(self) -> bool: ...

    def start(self) -> None: ...

    def close(self) -> None: ...


def holder_id() -> str:
    """This process, for a lease's holder column: host, pid and a random part."""
    host = "".join(c if c.isalnum() or c in "._-" else "-" for c in socket.gethostname())
    return f"{host[:60]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class LocalLease:
    """The lease of a store only this process opens: always held."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.holder = holder_id()

    @property
    def held(self) -> bool:
        return True

    def start(self) -> None:
        pass

    def close(self) -> None:
        pass


class CatalogLease:
    """A lease row in the lake's catalog, taken and renewed by a thread of this process."""

    def __init__(
        self,
        tables: CatalogTables,
        name: str,
        *,
        ttl: float = DEFAULT_LEASE_TTL,
        holder: str | None = None,
    ) -> None:
        self.name = name
        self.holder = holder or holder_id()
        self.ttl = ttl
        self._tables = tables
        self._valid_until = 0.0  # monotonic; held while now is before it
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._changed = threading.Condition()

    @property
    def held(self) -> bool:
        return time.monotonic() < self._valid_until

    def wait_held(self, timeout: float) -> bool:
        """Wait until this process holds the lease (for tests and start-up)."""
        with self._changed:
            return self._changed.wait_for(lambda: self.held, timeout)

    def holder_state(self) -> str:
        """Who holds the lease now, for messages."""
        state = self._tables.lease(self.name)
        if state.holder is None or not state.live:
            return "nobody"
        return f"{state.holder} (until {state.expires_at:%H:%M:%S} UTC)"

    def renew(self) -> bool:
        """Take or renew the lease once; returns whether this process holds it now."""
        asked = time.monotonic()
        was_held = self.held
        try:
            state = self._tables.take_lease(self.name, self.holder, self.ttl)
        except StoreError as exc:
            log.warning("lease %s: cannot reach the catalog: %s", self.name, exc)
            return self.held
        mine = state.holder == self.holder and state.live
        with self._changed:
            # counted from before the request: the database's expiry is at least this late
            self._valid_until = asked + self.ttl if mine else 0.0
            self._changed.notify_all()
        if mine and not was_held:
            log.info("lease %s: taken by %s", self.name, self.holder)
        elif was_held and not mine:
            log.warning("lease %s: lost to %s", self.name, state.holder)
        return mine

    def start(self) -> None:
        if self._thread is None:
            self.renew()
            self._thread = threading.Thread(
                target=self._run, name=f"lease-{self.name}", daemon=True
            )
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.ttl / 3):
            self.renew()

    def close(self) -> None:
        """Stop renewing and give the lease up, so another process need not wait out the ttl."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None
        if self.held:
            self._valid_until = 0.0
            try:
                self._tables.release_lease(self.name, self.holder)
            except StoreError as exc:
                log.warning("lease %s: not released (it runs out by itself): %s", self.name, exc)
