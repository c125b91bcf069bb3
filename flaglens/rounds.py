"""The periodic work of `flaglens serve`, in one thread on one interval.

Each round evaluates the alert rules and delivers pending notifications (when alert rules are
on), then records the facts of changes whose windows have closed
(:func:`analytics.impact_records.refresh`) and the cohort engagement of closed periods
(:func:`analytics.cohort_periods.refresh`), which the dashboards read instead of querying them
again. The first round runs as soon as the thread starts, so a large store gets its records
without waiting one interval. Each part queries on a reader cursor of its own and writes
through the service's writer (see :mod:`store.write_fns`). A round runs only while this process
holds the store's ``rounds`` lease: on a lake shared by several servers, exactly one of them does
this work.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, timedelta

import duckdb
import httpx

from alerts.evaluator import Evaluator
from alerts.rules import AlertConfig
from alerts.webhook import deliver_pending
from analytics import cohort_periods, impact_records
from analytics.session import Session
from flaglens.trust import system_trust
from store.errors import StoreError
from store.lease import Lease
from store.writer import StoreWriter

log = logging.getLogger(__name__)


class PeriodicRounds:
    """Evaluate and deliver alerts (``config`` None: no alert rules), then record what has
    closed, every ``interval`` until stopped."""

    def __init__(
        self,
        session: Session,
        writer: StoreWriter,
        config: AlertConfig | None,
        *,
        interval: timedelta,
        dashboards_url: str = "",
        lease: Lease | None = None,
    ) -> None:
        self.evaluator = (
            None
            if config is None
            else Evaluator(session, config, writer, dashboards_url=dashboards_url)
        )
        self._cursor_factory = session.cursor
        self._lease = lease
        self._writer = writer
        self._interval = interval.total_seconds()
        self._stop = threading.Event()
        self._client = httpx.Client(timeout=10, verify=system_trust())
        self._thread = threading.Thread(target=self._run, name="periodic-rounds", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def run_once(self, now: datetime | None = None) -> None:
        """One round, as of ``now`` (default: the current time)."""
        now = now or datetime.now(UTC)
        if self.evaluator is not None:
            self.evaluator.evaluate(now)
            url = self.evaluator.config.receiver.url
            if url:
                cursor = self._cursor_factory()
                deliver_pending(cursor, self._writer, url, client=self._client, now=now)
        recorded = impact_records.refresh(self._cursor_factory(), self._writer, now)
        if recorded:
            log.info("recorded the facts of %d closed changes", recorded)
        periods = cohort_periods.refresh(self._cursor_factory(), self._writer, now)
        if periods:
            log.info("recorded the cohort engagement of %d closed periods", periods)

    def _run(self) -> None:
        while True:
            try:
                if self._lease is None or self._lease.held:
                    self.run_once()
            except (duckdb.Error, StoreError) as exc:
                log.error("periodic round failed: %s", exc)
            if self._stop.wait(self._interval):
                return

    def stop(self) -> None:
        self._stop.set()
        if self._thread.ident is not None:  # started
            self._thread.join(30)
        self._client.close()
