"""The lake's upkeep, run by the process holding the ``rounds`` lease.

Two schedules in one thread: every ``reconcile_interval`` seconds the duplicates two writers
committed at once are removed (:mod:`store.reconcile`); every ``upkeep_interval`` seconds
DuckLake's maintenance runs (:func:`store.lake.run_upkeep`: inlined rows flushed, small files
merged, old snapshots expired, unreferenced files deleted). Snapshots the reconciliation has not
read yet are never expired. A process not holding the lease does neither.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime, timedelta

import duckdb

from store.connection import Store, translate
from store.errors import StoreError
from store.lake import LakeOptions, UpkeepReport, run_upkeep
from store.lease import Lease
from store.reconcile import (
    DEFAULT_RECONCILE_INTERVAL,
    Reconciled,
    oldest_unreconciled,
    reconcile,
)

log = logging.getLogger(__name__)


class LakeUpkeep:
    """Reconciliation and maintenance of a lake, while ``lease`` is held."""

    def __init__(
        self,
        store: Store,
        lease: Lease,
        *,
        options: LakeOptions | None = None,
        reconcile_interval: float = DEFAULT_RECONCILE_INTERVAL,
    ) -> None:
        self.store = store
        self.lease = lease
        self.options = options or store.lake_options
        self.reconcile_interval = reconcile_interval
        self.last_upkeep: UpkeepReport | None = None
        self.last_reconciled: Reconciled | None = None
        self._cursor = store.cursor()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lake-upkeep", daemon=True)
        self._next_upkeep = time.monotonic() + self.options.upkeep_interval

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(60)
        self._cursor.close()

    def reconcile_now(self) -> Reconciled:
        self.last_reconciled = reconcile(self.store, self._cursor)
        return self.last_reconciled

    def upkeep_now(self) -> UpkeepReport:
        """Reconcile, then maintain (expiring only snapshots already reconciled).

        Raises:
            StoreError: the lake or its catalog failed.
        """
        self.reconcile_now()
        try:
            self.last_upkeep = self._maintain()
        except duckdb.Error as exc:
            raise translate(exc, path=self.store.path) from exc
        log.info("lake upkeep: %s", self.last_upkeep)
        return self.last_upkeep

    def _maintain(self) -> UpkeepReport:
        retention = self.options.snapshot_retention
        tables = self.store.catalog_tables
        oldest = None if tables is None else oldest_unreconciled(tables)
        if oldest is not None:
            row = self._cursor.execute(
                f"SELECT snapshot_time FROM {self.store.catalog}.snapshots() "  # noqa: S608
                "WHERE snapshot_id = $id",
                {"id": oldest},
            ).fetchone()
            if row is not None and isinstance(row[0], datetime):
                age = (datetime.now(UTC) - row[0]) / timedelta(seconds=1)
                retention = max(retention, age)
        options = LakeOptions(
            inlining_row_limit=self.options.inlining_row_limit,
            snapshot_retention=retention,
            upkeep_interval=self.options.upkeep_interval,
        )
        return run_upkeep(self._cursor, self.store.catalog, options)

    def _run(self) -> None:
        while not self._stop.wait(self.reconcile_interval):
            if not self.lease.held:
                continue
            try:
                if time.monotonic() >= self._next_upkeep:
                    self._next_upkeep = time.monotonic() + self.options.upkeep_interval
                    self.upkeep_now()
                else:
                    self.reconcile_now()
            except StoreError as exc:
                log.error("lake upkeep failed (tried again next round): %s", exc)
