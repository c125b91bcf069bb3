"""Decoding and contract checks in worker processes, so that they do not share the server's GIL.

Turning an OTLP body into checked rows (:meth:`IngestPipeline.prepare`) is Python work for every
record: protobuf field access, the canonical dict, the contract check, the row columns. In the
server process it would take turns on one GIL with the HTTP and gRPC stacks, the writer's Arrow
handling and the dashboards, so a second core would sit idle. The pool runs ``prepare`` in
``decode_workers`` processes instead: the body goes out, Arrow tables come back (both are
cheap to pickle), and the server process keeps only the transport and the writer.

Workers are started with *spawn*, never *fork*: the server process holds DuckDB, gRPC and
uvicorn threads whose locks a forked child would inherit in whatever state they were. Each
worker loads the contracts once (the server has already loaded them, so a broken contract
stops start-up before any worker exists).

A worker that dies (killed, out of memory) breaks the pool: the requests it held are answered
503 / UNAVAILABLE with a retry delay (nothing of them was stored), and the next request starts a
new pool. A server killed hard cannot stop its workers: each notices within half a second that
its parent is gone and exits. ``decode_workers = 0`` runs ``prepare`` on a thread of the server
process instead.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool

from contracts import build_registry, load_registry
from ingest.errors import Overloaded
from ingest.limits import Limits
from ingest.pipeline import IngestPipeline, PreparedExport, RequestMeta, Uncontracted

log = logging.getLogger(__name__)

# what an exporter is told to wait before retrying a request that a dying worker held
WORKER_LOST_RETRY_AFTER = 1.0
# how often a worker looks whether the server that started it is still there
PARENT_CHECK_SECONDS = 0.5

_worker_pipeline: IngestPipeline | None = None


def _exit_with_parent(parent: int) -> None:
    """End this worker once the server is gone (killed hard, it cannot shut the pool down)."""
    while os.getppid() == parent:
        time.sleep(PARENT_CHECK_SECONDS)
    os._exit(0)


def _start_worker(
    parent: int,
    contracts: Path | Sequence[tuple[str, Any]] | None,
    limits: Limits,
    uncontracted: Uncontracted,
) -> None:
    global _worker_pipeline
    # Ctrl-C reaches the whole process group; the server shuts its workers down itself
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # the server's pid comes from the server: a worker still starting when the server is killed
    # would otherwise take its new parent (init) for the server and never exit
    threading.Thread(target=_exit_with_parent, args=(parent,), daemon=True).start()
    registry = (
        load_registry(contracts)
        if contracts is None or isinstance(contracts, Path)
        else build_registry(contracts)
    )
    _worker_pipeline = IngestPipeline(registry, limits, uncontracted)


def _ready() -> bool:
    return _worker_pipeline is not None


def _prepare(
    meta: RequestMeta, body: bytes, content_type: str, content_encoding: str | None
) -> PreparedExport:
    if _worker_pipeline is None:  # pragma: no cover - the initializer always runs first
        raise RuntimeError("decode worker used before its initializer ran")
    return _worker_pipeline.prepare(
        meta, body, content_type=content_type, content_encoding=content_encoding
    )


class Preparers:
    """Where requests are decoded and checked: worker processes, or a thread when there are none.

    Args:
        pipeline: the server's own pipeline, used when ``workers`` is 0.
        contracts: what each worker builds its contracts from: the contract files as the server
            read them (``(file name, JSON)`` pairs), or a directory (None: the built-in ones).
        workers: number of worker processes.
    """

    def __init__(
        self,
        pipeline: IngestPipeline,
        contracts: Path | Sequence[tuple[str, Any]] | None,
        workers: int,
    ) -> None:
        self.pipeline = pipeline
        self.contracts = contracts
        self.workers = workers
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()
        self.restarts = 0  # pools replaced after a worker died
        self._successor: Preparers | None = None  # set when a contract reload retires this one

    def start(self) -> None:
        """Start the workers now (in the background) rather than on the first request."""
        if self.workers:
            self._current_pool()

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

    def ready(self, timeout: float) -> None:
        """Start the workers and wait until each has loaded its contracts.

        Raises:
            BrokenProcessPool: a worker could not start (its contracts did not load).
            TimeoutError: they were not up within ``timeout`` seconds.
        """
        if not self.workers:
            return
        pool = self._current_pool()
        if pool is None:
            return
        futures = [pool.submit(_ready) for _ in range(self.workers)]
        deadline = time.monotonic() + timeout
        for future in futures:
            future.result(timeout=max(0.0, deadline - time.monotonic()))

    def retire(self, successor: Preparers) -> None:
        """Hand new requests to ``successor``; those the workers hold already finish here,
        under this pool's contracts, before its processes stop (waits for them)."""
        with self._lock:
            self._successor = successor
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=False)

    def _current_pool(self) -> ProcessPoolExecutor | None:
        """The pool (started when there is none); None once retired."""
        with self._lock:
            if self._successor is not None:
                return None
            if self._pool is None:
                self._pool = ProcessPoolExecutor(
                    max_workers=self.workers,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=_start_worker,
                    initargs=(
                        os.getpid(),
                        self.contracts,
                        self.pipeline.limits,
                        self.pipeline.uncontracted,
                    ),
                )
                # the executor starts a process only when no idle one is there: ask for all now
                for _ in range(self.workers):
                    self._pool.submit(_ready)
            return self._pool

    def _discard(self, pool: ProcessPoolExecutor) -> None:
        with self._lock:
            if self._pool is not pool:
                return  # another request already replaced it
            self._pool = None
            self.restarts += 1
        log.error("a decode worker died; starting a new pool of %d", self.workers)
        pool.shutdown(wait=False, cancel_futures=True)

    async def prepare(
        self, meta: RequestMeta, body: bytes, *, content_type: str, content_encoding: str | None
    ) -> PreparedExport:
        """Decode and check one request.

        Raises:
            IngestError: the request as a whole cannot be used (Overloaded when a worker died
                while holding it: retry).
        """
        successor = self._successor
        if successor is not None:  # taken just before a reload swapped the contracts
            return await successor.prepare(
                meta, body, content_type=content_type, content_encoding=content_encoding
            )
        if not self.workers:
            return await run_in_threadpool(
                self.pipeline.prepare,
                meta,
                body,
                content_type=content_type,
                content_encoding=content_encoding,
            )
        pool, future = self._submit(meta, body, content_type, content_encoding)
        try:
            return await asyncio.wrap_future(future)
        except BrokenProcessPool as exc:
            self._discard(pool)
            raise Overloaded(
                retry_after=WORKER_LOST_RETRY_AFTER,
                reason="a decode worker stopped while holding this request",
            ) from exc

    def _submit(
        self, meta: RequestMeta, body: bytes, content_type: str, content_encoding: str | None
    ) -> tuple[ProcessPoolExecutor, Future[PreparedExport]]:
        """Hand the request to a pool; a pool found broken (or replaced) before it took the
        request is swapped for a new one, since the request itself was not lost."""
        for _ in range(3):
            pool = self._current_pool()
            if pool is None:  # retired by a reload meanwhile: the new contracts take it
                successor = self._successor
                if successor is not None:
                    return successor._submit(meta, body, content_type, content_encoding)
                continue
            try:
                return pool, pool.submit(_prepare, meta, body, content_type, content_encoding)
            except BrokenProcessPool:
                self._discard(pool)
            except RuntimeError:  # shut down by another request's _discard meanwhile
                continue
        raise Overloaded(
            retry_after=WORKER_LOST_RETRY_AFTER, reason="the decode workers keep stopping"
        )
