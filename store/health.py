"""The writer's health: whether its commits fail, why, and a log that says so once per interval.

A full disk fails every commit until space is freed; logging each failure would write hundreds
of lines a minute, all saying the same. :class:`CommitHealth` logs the first failure of a cause
at once, the same cause again at most once per ``interval`` (with how many failures it
stands for), and the recovery when a commit succeeds again; :meth:`CommitHealth.problem` is
the current cause, for ``/healthz``.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime

log = logging.getLogger("store.writer")

DEFAULT_LOG_INTERVAL = 60.0


class CommitHealth:
    """The outcome of the writer's recent commits (thread-safe)."""

    def __init__(self, interval: float = DEFAULT_LOG_INTERVAL) -> None:
        self.interval = interval
        self._lock = threading.Lock()
        self._problem: str | None = None
        self._since: datetime | None = None
        self._failures = 0  # since the cause was last logged
        self._total = 0  # since commits started failing
        self._logged_at = -float("inf")

    def failed(self, cause: str) -> None:
        """A commit failed with ``cause`` (the translated error's message)."""
        with self._lock:
            now = time.monotonic()
            changed = cause != self._problem
            if self._problem is None:
                self._since = datetime.now(UTC)
            self._problem = cause
            self._failures += 1
            self._total += 1
            if not changed and now - self._logged_at < self.interval:
                return
            failures, self._failures, self._logged_at = self._failures, 0, now
        if failures > 1:
            log.error("write failed (%d times since the last report): %s", failures, cause)
        else:
            log.error("write failed: %s", cause)

    def succeeded(self) -> None:
        """A commit succeeded: the problem, if any, is over."""
        if self._problem is None:  # the common case, without the lock
            return
        with self._lock:
            problem, total, since = self._problem, self._total, self._since
            self._problem, self._since, self._failures, self._total = None, None, 0, 0
            self._logged_at = -float("inf")
        if problem is not None:
            log.warning("writes succeed again after %d failed commits since %s (%s)",
                        total, since, problem)  # fmt: skip

    def problem(self) -> str | None:
        """Why commits fail now, with when that began (None: they succeed)."""
        with self._lock:
            if self._problem is None:
                return None
            return f"{self._problem} (failing since {self._since:%Y-%m-%dT%H:%M:%SZ})"
