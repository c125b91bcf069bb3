"""The storage writer: the only code that writes the database.

Receivers submit one :class:`WriteBatch` per export request and wait on the returned future.
One thread gathers queued batches into a group and commits the whole group in one transaction:
small requests become large Arrow appends, which DuckDB takes far faster than small ones. A
future resolves only after COMMIT returned, so an exporter is acknowledged only for committed
records.

A group aims at whole row groups of the store (:attr:`Store.row_group_size`): rows that fill
a row group within one transaction are compressed and written to the file once, while the
rest goes through the WAL and is written again by a checkpoint. Receivers announce the
requests they are decoding (:meth:`StoreWriter.incoming`); when those and the queue would fill
a row group, the writer waits for them (at most ``max_group_wait``) and takes the queued
requests up to the last whole row group they reach (at most ``max_group_rows``); the rest start
the next group. Otherwise it waits ``max_group_delay`` at most: light traffic gains nothing
from waiting.

Duplicate deliveries (an exporter retrying after a timeout) are dropped inside the transaction
(:mod:`store.duplicates`); the count of dropped rows is reported per request.

While the writer has work, DuckDB runs on one thread; the store's thread count (for the
dashboards' queries) comes back when the queue is empty after a commit (on a DuckDB file; a lake
keeps its thread count). On two threads, a group's INSERT went wrong either way. Handed as one
Arrow chunk it was one task, which often ran on DuckDB's background thread while the writer, in
DuckDB's Python client, polled for it without sleeping and took the GIL at every turn (the
client waits only when a task is blocked; see duckdb/duckdb#12512): 3–4 µs of server CPU a
record. Handed as one chunk per request, each thread filled row groups of its own, so a whole
row group was stored as two partial ones. Switching the count back and forth around every
commit (rather than when the queue empties) cost another ~2 µs a record.

On a store other processes write as well (a DuckLake, :attr:`Store.shared`), request ids start
at a number the catalog gives each writer (:meth:`Store.first_request_id`), every ledger row
names its writer, and the duplicate lookup always asks the lake. What two writers commit at the
same moment neither can see; the lease holder removes those duplicates after the fact
(:mod:`store.reconcile`). A commit that conflicts with another process's change (DuckLake
refuses an append to a table that a DELETE changed meanwhile) is retried
(``conflict_retries``), not answered as a failure.

When more than ``max_pending_rows`` rows are queued or being committed,
:meth:`StoreWriter.submit` raises :class:`WriterOverloaded` with a retry delay: the receivers
answer 503 / UNAVAILABLE, exporters back off, and memory stays bounded.

Everything else that writes hands the writer a write function (:mod:`store.write_fns`,
:meth:`StoreWriter.execute_write_fn`), which runs on this thread in a transaction of its own.
Write functions and ingest groups take turns: while both wait, the writer runs one write
function after each group, so a write function waits for at most the group being gathered or
committed (plus the write functions ahead of it), and ingest waits for at most one write
function between two groups. A write function that fails is rolled back alone.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import duckdb
import pyarrow as pa

from store.batch import WriteBatch, WriteResult, ledger_row
from store.connection import Store, is_conflict, translate
from store.duplicates import DEDUPE_KEYS, DuplicateFilter, Kept
from store.errors import StoreError, WriterClosed, WriterOverloaded
from store.health import CommitHealth
from store.lease import holder_id
from store.tables import COMMIT_TIME_COLUMNS, RECORD_TABLES, input_schema
from store.write_fns import WriteCall, WriteFn, run_call

log = logging.getLogger(__name__)
T = TypeVar("T")

DEFAULT_MAX_GROUP_ROWS = 65_536
DEFAULT_MAX_GROUP_DELAY = 0.02  # seconds a group gathers when it would not fill a row group
DEFAULT_MAX_GROUP_WAIT = 0.25  # seconds it gathers at most for requests that would fill one
# Two full groups: one being committed, one gathering. A decision row is about 1 KB in Arrow
# (its attributes JSON and typed columns), so this bounds what the writer holds to ~130 MB;
# beyond it exporters are told to retry rather than the server growing.
DEFAULT_MAX_PENDING_ROWS = 2 * DEFAULT_MAX_GROUP_ROWS
# keys per table that RecentKeys holds (~130 bytes each with 20-character ids, 16 MiB in
# all): seconds of live traffic
DEFAULT_RECENT_KEYS = 2 * DEFAULT_MAX_GROUP_ROWS
DEFAULT_CONFLICT_RETRIES = 5


@dataclass
class WriterStats:
    """A snapshot of the writer's state, for /healthz and self-metrics."""

    pending_rows: int = 0
    pending_batches: int = 0
    commits: int = 0
    failed_commits: int = 0
    refused_batches: int = 0  # requests answered "retry later" because the queue was full
    conflicts_retried: int = 0  # commits retried after conflicting with another process's
    batches_committed: int = 0
    rows_committed: dict[str, int] = field(default_factory=dict)
    duplicates_dropped: int = 0
    last_commit_ms: float = 0.0
    mean_commit_ms: float = 0.0
    rows_per_second: float = 0.0
    pending_write_fns: int = 0  # write functions waiting for their turn
    write_fns: int = 0  # write functions committed
    failed_write_fns: int = 0  # write functions rolled back (their error went to the caller)
    last_write_fn_ms: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


_Pending = tuple[WriteBatch, "Future[WriteResult]"]


class StoreWriter:
    """Owns the database's one write cursor and commits requests in groups."""

    def __init__(
        self,
        store: Store,
        *,
        max_group_rows: int = DEFAULT_MAX_GROUP_ROWS,
        max_group_delay: float = DEFAULT_MAX_GROUP_DELAY,
        max_group_wait: float = DEFAULT_MAX_GROUP_WAIT,
        max_pending_rows: int = DEFAULT_MAX_PENDING_ROWS,
        commit_delay: float = 0.0,
        recent_keys: int = DEFAULT_RECENT_KEYS,
        conflict_retries: int = DEFAULT_CONFLICT_RETRIES,
        name: str | None = None,
    ) -> None:
        self.store = store
        self.commit_delay = commit_delay  # slows every commit: for showing backpressure only
        self.max_group_rows = max_group_rows
        self.max_group_delay = max_group_delay
        self.max_group_wait = max_group_wait
        self.row_group_rows = store.row_group_size
        self.max_pending_rows = max_pending_rows
        self.conflict_retries = conflict_retries
        self.name = name or holder_id()
        """Who wrote a ledger row (``ingest_log.writer``): host, pid and a random part."""
        self._cursor = store.cursor()
        threads = self._cursor.execute("SELECT current_setting('threads')").fetchone()
        self._duckdb_threads = int(threads[0]) if threads else 1  # the store's, for queries
        # not on a lake: a `SET threads` there waited forever for a query of the lake's upkeep
        # (reconciliation, scanning an Arrow table) on another thread, and ingest stopped
        self._switch_threads = self._duckdb_threads > 1 and not store.shared
        self._holding_one_thread = False  # DuckDB held at one thread until the queue empties
        self._request_ids = itertools.count(store.first_request_id(self._cursor))
        self._duplicates = DuplicateFilter(self._cursor, shared=store.shared, capacity=recent_keys)
        self._ids_lock = threading.Lock()
        self._queue: deque[_Pending] = deque()
        self._calls: deque[WriteCall] = deque()  # write functions, in the order submitted
        self._group_last = False  # whether the last turn was a group (then a call goes next)
        self._cond = threading.Condition()
        self._pending_rows = 0
        self._closing = False
        self._thread: threading.Thread | None = None
        self._stats = WriterStats()
        self._health = CommitHealth()
        self._commit_seconds_total = 0.0
        self._decoding = 0  # requests being decoded, announced with incoming()
        self._rows_per_request = 0.0  # moving mean over submitted requests

    # -- receivers' side ------------------------------------------------------------------

    def next_request_id(self) -> int:
        """A new request id, larger than any stored one."""
        with self._ids_lock:
            return next(self._request_ids)

    @contextlib.contextmanager
    def incoming(self) -> Iterator[None]:
        """Announce a request that is being decoded and will be submitted (or not) inside the
        block: the writer waits for such requests when they would fill its group."""
        with self._cond:
            self._decoding += 1
            self._cond.notify()
        try:
            yield
        finally:
            with self._cond:
                self._decoding -= 1
                self._cond.notify()

    def submit(self, batch: WriteBatch) -> Future[WriteResult]:
        """Queue a request's rows; the future resolves after they are committed.

        Raises:
            WriterOverloaded: the queue is full; nothing was queued.
            WriterClosed: the writer is shutting down.
        """
        future: Future[WriteResult] = Future()
        rows = batch.rows
        with self._cond:
            if self._closing:
                raise WriterClosed("the writer is closed; the server is shutting down")
            if self._pending_rows and self._pending_rows + rows > self.max_pending_rows:
                self._stats.refused_batches += 1
                raise WriterOverloaded(self._retry_after(), self._pending_rows)
            self._queue.append((batch, future))
            self._pending_rows += rows
            mean = self._rows_per_request
            self._rows_per_request = mean + (rows - mean) / 16 if mean else float(rows)
            self._cond.notify()
        return future

    def execute_write_fn(self, fn: WriteFn[T]) -> Future[T]:
        """Queue ``fn`` to run on the writer thread as ``fn(cursor)`` in a transaction of its
        own (see :mod:`store.write_fns`); the future resolves with what it returned once
        committed, or with its error once rolled back (DuckDB errors as :class:`StoreError`).

        Raises:
            WriterClosed: the writer is shutting down.
        """
        future: Future[T] = Future()
        with self._cond:
            if self._closing:
                raise WriterClosed("the writer is closed; the server is shutting down")
            self._calls.append(WriteCall(fn, future))
            self._cond.notify()
        return future

    def _retry_after(self) -> float:
        rate = self._stats.rows_per_second or 50_000.0
        return min(30.0, max(1.0, self._pending_rows / rate))

    def stats(self) -> WriterStats:
        with self._cond:
            snapshot = WriterStats(**asdict(self._stats))
            snapshot.pending_rows = self._pending_rows
            snapshot.pending_batches = len(self._queue)
            snapshot.pending_write_fns = len(self._calls)
        return snapshot

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="flaglens-writer", daemon=True)
            self._thread.start()

    def close(self, timeout: float = 60.0) -> None:
        """Commit everything queued (rows and write functions), then stop the thread."""
        with self._cond:
            self._closing = True
            self._cond.notify()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                return  # still committing: the cursor is its own until it is done
            self._thread = None
        with self._cond:  # left when the writer was never started
            while self._calls:
                self._calls.popleft().future.set_exception(
                    WriterClosed("the writer was closed before this write function ran")
                )
        self._cursor.close()

    def __enter__(self) -> StoreWriter:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- the writer thread --------------------------------------------------------------------

    def _next_turn(self) -> list[_Pending] | WriteCall | None:
        """The next group, or write function (see the module docstring); None: closed and
        nothing left to do."""
        with self._cond:
            while not self._queue and not self._calls and not self._closing:
                self._cond.wait()
            if self._calls and (self._group_last or not self._queue):
                self._group_last = False
                return self._calls.popleft()
            if not self._queue:
                return None
            self._group_last = True
            self._gather()
            # up to the last whole row group the queue reaches; the rest starts the next group
            target = min(self._pending_rows, self.max_group_rows)
            if target >= self.row_group_rows:
                target -= target % self.row_group_rows
            group: list[_Pending] = []
            rows = 0
            while self._queue and (not group or rows < target):
                if group and rows + self._queue[0][0].rows > self.max_group_rows:
                    break
                item = self._queue.popleft()
                rows += item[0].rows
                group.append(item)
            # the group's rows still count as pending until committed (see _run): the bound on
            # pending rows bounds everything the writer holds, not only what waits in the queue
            return group

    def _gather(self) -> None:
        """Wait (holding the condition) until the group is worth committing.

        When the queue and the requests still being decoded (at the recent mean rows per
        request) would reach a row group, wait for them: until the queue holds a row group,
        nothing more is on its way, or ``max_group_wait`` has passed (and, as a safeguard, no
        request has arrived for five times ``max_group_delay``). Otherwise waiting would only
        delay the commit while the decode workers idle, so wait ``max_group_delay`` at most.
        """
        started = last_arrival = time.monotonic()
        full = min(self.row_group_rows, self.max_group_rows)
        seen = self._pending_rows
        while not self._closing and self._pending_rows < full:
            now = time.monotonic()
            if self._pending_rows != seen:
                seen, last_arrival = self._pending_rows, now
            if seen + self._decoding * self._rows_per_request >= full:
                until = min(last_arrival + 5 * self.max_group_delay, started + self.max_group_wait)
            else:
                until = started + self.max_group_delay
            if now >= until:
                return
            self._cond.wait(until - now)

    def _run(self) -> None:
        try:
            while True:
                turn = self._next_turn()
                if turn is None:
                    return
                if isinstance(turn, WriteCall):
                    self._run_call(turn)  # DuckDB's threads stay as the last group left them
                    continue
                group = turn
                try:
                    self._write_group(group)
                finally:
                    with self._cond:
                        self._pending_rows -= sum(batch.rows for batch, _ in group)
                        idle = not self._queue
                    if idle:
                        self._release_duckdb_threads()
        finally:
            self._release_duckdb_threads()

    def _run_call(self, call: WriteCall) -> None:
        started = time.perf_counter()

        def done(committed: bool) -> None:
            with self._cond:
                self._stats.last_write_fn_ms = (time.perf_counter() - started) * 1000
                if committed:
                    self._stats.write_fns += 1
                else:
                    self._stats.failed_write_fns += 1

        run_call(self._cursor, call, path=self.store.path, done=done)

    def _hold_one_duckdb_thread(self) -> None:
        """DuckDB on one thread from now until the writer runs out of work."""
        if self._switch_threads and not self._holding_one_thread:
            self._set_duckdb_threads(1)
            self._holding_one_thread = True

    def _release_duckdb_threads(self) -> None:
        """The store's number of DuckDB threads again."""
        if self._holding_one_thread:
            self._set_duckdb_threads(self._duckdb_threads)
            self._holding_one_thread = False

    def _set_duckdb_threads(self, threads: int) -> None:
        try:
            self._cursor.execute(f"SET threads = {threads}")
        except duckdb.Error as exc:  # the commit itself will fail and say why
            log.warning("could not set DuckDB's threads to %d: %s", threads, exc)

    def _write_group(self, group: list[_Pending]) -> None:
        """Commit a group and settle its futures (one by one if the group as a whole fails)."""
        self._hold_one_duckdb_thread()
        if self.commit_delay:
            time.sleep(self.commit_delay)
        try:
            results = self._commit_retrying([batch for batch, _ in group])
        except (duckdb.Error, StoreError, pa.ArrowException) as exc:
            self._stats.failed_commits += 1
            if len(group) == 1:
                self._fail(group[0][1], exc)
                return
            # one poison batch must not fail its group-mates: retry them one by one
            for batch, future in group:
                try:
                    (result,) = self._commit_retrying([batch])
                except (duckdb.Error, StoreError, pa.ArrowException) as single_exc:
                    self._fail(future, single_exc)
                else:
                    self._health.succeeded()
                    future.set_result(result)
            return
        self._health.succeeded()
        for (_, future), result in zip(group, results, strict=True):
            future.set_result(result)

    def _fail(self, future: Future[WriteResult], exc: BaseException) -> None:
        error = translate(exc, path=self.store.path) if isinstance(exc, duckdb.Error) else exc
        self._health.failed(str(error))
        future.set_exception(error)

    def _commit_retrying(self, batches: Sequence[WriteBatch]) -> list[WriteResult]:
        """Commit, again (from the duplicate lookup on) when another process's commit
        conflicted with this one."""
        for attempt in itertools.count():
            try:
                return self._commit(batches)
            except duckdb.Error as exc:
                if not is_conflict(exc) or attempt >= self.conflict_retries:
                    raise
                self._stats.conflicts_retried += 1
                log.info("commit conflicted with another writer's (%s); retrying", exc)
                time.sleep(0.05 * 2**attempt)
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    def problem(self) -> str | None:
        """Why commits fail now (e.g. the disk is full, with the path), or None."""
        return self._health.problem()

    def _commit(self, batches: Sequence[WriteBatch]) -> list[WriteResult]:
        started = time.perf_counter()
        now = datetime.now(UTC)
        cursor = self._cursor
        duplicates = [0] * len(batches)
        committed: dict[str, int] = {}
        kept_by_table: list[tuple[str, Kept]] = []
        committing = False
        cursor.execute("BEGIN TRANSACTION")
        try:
            for table in RECORD_TABLES:
                parts = [(i, b.tables[table]) for i, b in enumerate(batches) if table in b.tables]
                parts = [(i, t) for i, t in parts if t.num_rows]
                if not parts:
                    continue
                combined = pa.concat_tables([t for _, t in parts])
                owners = [i for i, t in parts for _ in range(t.num_rows)]
                if table in DEDUPE_KEYS:
                    kept = self._duplicates.drop(table, combined, owners)
                    for owner, dropped in kept.dropped_by.items():
                        duplicates[owner] += dropped
                    kept_by_table.append((table, kept))
                    combined = kept.rows
                if combined.num_rows:
                    self._append(table, combined, now)
                committed[table] = combined.num_rows
            self._append_ledger(batches, duplicates, now)
            committing = True
            cursor.execute("COMMIT")
        except BaseException:
            if committing:  # the rows may be stored or not
                for name, kept in kept_by_table:
                    self._duplicates.uncertain(name, kept)
            try:
                cursor.execute("ROLLBACK")
            except duckdb.Error:  # a failed COMMIT has rolled back already: its error stands
                pass
            raise
        for name, kept in kept_by_table:
            self._duplicates.committed(name, kept)
        elapsed = time.perf_counter() - started
        self._record_commit(batches, committed, sum(duplicates), elapsed)
        return [WriteResult(b.ledger.request_id, duplicates[i], now) for i, b in enumerate(batches)]

    def _append(self, table: str, rows: pa.Table, now: datetime) -> None:
        """Insert rows (in the table's own columns) stamped with ``now``."""
        stamp = COMMIT_TIME_COLUMNS[table]
        # DuckDB reads the local variable named in the query: cheaper than register() and a
        # parameter, which cost a few ms per statement whatever the number of rows. The table's
        # chunks (one per request) fill row groups in order because the commit runs DuckDB on
        # one thread; on two they became partial row groups (22.3 vs 13.9 CPU µs a row and
        # twice the file, for 16,384-row commits; see the module docstring).
        _incoming = rows
        self._cursor.execute(
            f'INSERT INTO "{table}" BY NAME '  # noqa: S608 - constant names, a datetime
            f"SELECT *, TIMESTAMPTZ '{now.isoformat()}' AS {stamp} FROM _incoming"
        )

    def _append_ledger(
        self, batches: Sequence[WriteBatch], duplicates: list[int], now: datetime
    ) -> None:
        rows = [
            {**ledger_row(batch.ledger), "duplicates": dropped, "writer": self.name}
            for batch, dropped in zip(batches, duplicates, strict=True)
        ]
        self._append(
            "ingest_log", pa.Table.from_pylist(rows, schema=input_schema("ingest_log")), now
        )

    def _record_commit(
        self,
        batches: Sequence[WriteBatch],
        committed: Mapping[str, int],
        duplicates: int,
        elapsed: float,
    ) -> None:
        stats = self._stats
        with self._cond:
            stats.commits += 1
            stats.batches_committed += len(batches)
            for table, rows in committed.items():
                stats.rows_committed[table] = stats.rows_committed.get(table, 0) + rows
            stats.duplicates_dropped += duplicates
            stats.last_commit_ms = elapsed * 1000
            self._commit_seconds_total += elapsed
            stats.mean_commit_ms = self._commit_seconds_total * 1000 / stats.commits
            rows = sum(committed.values())
            if elapsed > 0 and rows:
                rate = rows / elapsed
                stats.rows_per_second = (
                    rate if not stats.rows_per_second else 0.8 * stats.rows_per_second + 0.2 * rate
                )
