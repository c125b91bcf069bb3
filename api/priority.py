"""Reads yield the cores to ingest: the threads that run reads get a higher nice value.

Linux schedules each thread on its own, so a reading thread at nice 10 gets about a tenth of a
core's share against the OTLP receivers, the writer and the decode workers (nice 0) when they
want the cores, and all of an idle core otherwise. While the writer has requests to commit,
DuckDB runs on one thread (see store.writer), so a read's query runs on the reading thread
itself and yields with it. A thread's nice value can only rise without privileges, so it is
set once per thread and kept: the threads that run reads run nothing else.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

log = logging.getLogger(__name__)
_done = threading.local()


def yield_to_ingest(nice: int) -> None:
    """Raise the calling thread's nice value to ``nice`` (once; Linux only, else nothing)."""
    if nice <= 0 or getattr(_done, "nice", None) == nice or not hasattr(os, "setpriority"):
        return
    _done.nice = nice
    try:
        tid = threading.get_native_id()
        if os.getpriority(os.PRIO_PROCESS, tid) < nice:
            os.setpriority(os.PRIO_PROCESS, tid, nice)
    except OSError as exc:  # not permitted here: reads keep the default priority
        log.warning("cannot lower the priority of a reading thread: %s", exc)


class YieldingWsgi:
    """A WSGI app whose requests run at the readers' priority (the dashboards)."""

    def __init__(self, app: Any, nice: int) -> None:
        self.app = app
        self.nice = nice

    def __call__(self, environ: Any, start_response: Any) -> Any:
        yield_to_ingest(self.nice)
        return self.app(environ, start_response)
