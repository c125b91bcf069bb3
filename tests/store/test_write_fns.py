"""Write functions handed to the one writer: committed or rolled back whole, on the writer's
thread, taking turns with ingest groups, on a real store."""

from __future__ import annotations

import threading
import time

import duckdb
import pytest

from store.connection import Store
from store.errors import StoreError, TerminalStoreError, WriterClosed
from store.writer import StoreWriter
from tests.store.test_writer import T0, decisions_batch


def _outbox_row(cursor: duckdb.DuckDBPyConnection, outbox_id: int) -> None:
    cursor.execute(
        "INSERT INTO alert_outbox (id, created_at, group_key, status, payload, next_attempt_at) "
        "VALUES ($id, now(), 'g', 'firing', '{}', now())",
        {"id": outbox_id},
    )


def _outbox_ids(store: Store) -> list[int]:
    rows = store.cursor().execute("SELECT id FROM alert_outbox ORDER BY id").fetchall()
    return [row[0] for row in rows]


@pytest.fixture
def store(tmp_path, store_maker):
    with store_maker.open(tmp_path, "w") as store:
        yield store


def test_a_write_fn_runs_on_the_writer_thread_and_commits(store):
    """Its result reaches the future once committed; readers see its rows."""

    def write(cursor):
        _outbox_row(cursor, 1)
        return threading.current_thread().name

    with StoreWriter(store) as writer:
        assert writer.execute_write_fn(write).result(10) == "flaglens-writer"
        assert _outbox_ids(store) == [1]
        stats = writer.stats()
    assert (stats.write_fns, stats.failed_write_fns, stats.pending_write_fns) == (1, 0, 0)
    assert stats.as_dict()["write_fns"] == 1  # what /healthz shows


def _raises(cursor):
    _outbox_row(cursor, 1)
    raise ValueError("the caller's own error")


def _bad_sql(cursor):
    _outbox_row(cursor, 1)
    cursor.execute("INSERT INTO no_such_table VALUES (1)")


def _duplicate_key(cursor):
    _outbox_row(cursor, 1)
    _outbox_row(cursor, 1)


def _needs_key_constraints(fn, maker):
    if fn is _duplicate_key and maker.kind == "ducklake":
        pytest.skip("a lake has no key constraints, so a duplicate key is no error there "
                    "(store/migrations.py)")  # fmt: skip


@pytest.mark.parametrize(
    ("fn", "error"),
    [(_raises, ValueError), (_bad_sql, TerminalStoreError), (_duplicate_key, StoreError)],
    ids=["raises", "bad-sql", "duplicate-key"],
)
def test_a_failing_write_fn_is_rolled_back_with_its_error_on_the_future(
    store, store_maker, fn, error
):
    """Nothing it wrote stays; DuckDB's errors arrive translated, with DuckDB's as the cause."""
    _needs_key_constraints(fn, store_maker)
    with StoreWriter(store) as writer:
        future = writer.execute_write_fn(fn)
        with pytest.raises(error) as caught:
            future.result(10)
        assert _outbox_ids(store) == []
        assert writer.stats().failed_write_fns == 1
    if error is not ValueError:
        assert str(store.path) in str(caught.value)
        assert isinstance(caught.value.__cause__, duckdb.Error)


def _begins(cursor):
    cursor.execute("BEGIN TRANSACTION")


def _commits_and_raises(cursor):
    cursor.execute("COMMIT")
    raise ValueError("after its own commit")


def _commits(cursor):
    cursor.execute("COMMIT")


@pytest.mark.parametrize(
    "fn",
    [_raises, _bad_sql, _duplicate_key, _begins, _commits_and_raises, _commits],
    ids=["raises", "bad-sql", "duplicate-key", "begins", "commits-and-raises", "commits"],
)
def test_a_failing_write_fn_never_breaks_ingest_groups(store, store_maker, fn):
    """After any failure (even one that ended the writer's transaction itself) the next group
    and the next write function commit."""
    _needs_key_constraints(fn, store_maker)
    with StoreWriter(store, max_group_delay=0) as writer:
        with pytest.raises(Exception):  # noqa: B017 - each case fails its own way
            writer.execute_write_fn(fn).result(10)
        result = writer.submit(decisions_batch([("after", T0)])).result(10)
        assert writer.execute_write_fn(lambda cursor: _outbox_row(cursor, 7)).result(10) is None
    assert result.duplicates == 0
    (decisions,) = store.cursor().execute("SELECT count(*) FROM decisions").fetchone()
    assert decisions == 1 and 7 in _outbox_ids(store)


def test_write_fns_and_ingest_groups_never_overlap(store):
    """While a write function's transaction is open, no group commits: they take turns on the
    one writer thread, under a stream of ingest submissions."""
    group_commits: list[float] = []
    windows: list[tuple[float, float, str]] = []
    stop = threading.Event()

    def stream():
        n = 0
        while not stop.is_set():
            future = writer.submit(decisions_batch([(f"s{n}", T0 + n)]))
            future.add_done_callback(lambda _f: group_commits.append(time.monotonic()))
            n += 1
            time.sleep(0.002)

    def slow(cursor):
        started = time.monotonic()
        _outbox_row(cursor, len(windows) + 1)
        time.sleep(0.05)
        windows.append((started, time.monotonic(), threading.current_thread().name))

    with StoreWriter(store, max_group_delay=0.005) as writer:
        sender = threading.Thread(target=stream)
        sender.start()
        try:
            for _ in range(5):
                writer.execute_write_fn(slow).result(10)
                time.sleep(0.02)
        finally:
            stop.set()
            sender.join()
    assert len(group_commits) > 10 and len(windows) == 5
    for started, ended, thread in windows:
        assert thread == "flaglens-writer"
        assert not [t for t in group_commits if started < t < ended]
    assert _outbox_ids(store) == [1, 2, 3, 4, 5]


def test_a_write_fn_is_not_starved_by_queued_groups(store):
    """A write function submitted behind many queued groups runs after the one being
    committed, not after the whole queue."""
    # one request per group, each commit slowed down: the queue stays long
    with StoreWriter(store, max_group_rows=1, max_group_delay=0, commit_delay=0.02) as writer:
        futures = [writer.submit(decisions_batch([(f"q{n}", T0 + n)])) for n in range(30)]
        seen = writer.execute_write_fn(lambda _cursor: writer.stats().batches_committed)
        assert seen.result(10) <= 2
        assert all(f.result(10) for f in futures)


def test_ingest_waits_for_one_write_fn_at_most(store):
    """Queued write functions and groups alternate: a group after each write function."""
    writer = StoreWriter(store, max_group_rows=1, max_group_delay=0)  # a group per request
    slow = [writer.execute_write_fn(lambda _cursor: time.sleep(0.05)) for _ in range(5)]
    fns_before_each_group: list[int] = []
    groups = [writer.submit(decisions_batch([(f"d{n}", T0 + n)])) for n in range(3)]
    for group in groups:
        group.add_done_callback(lambda _f: fns_before_each_group.append(writer.stats().write_fns))
    with writer:
        for future in [*groups, *slow]:
            future.result(10)
    assert fns_before_each_group == [0, 1, 2]


def test_close_runs_queued_write_fns_then_refuses_new_ones(store):
    """Closing drains the write functions queued before it; later ones are refused."""
    writer = StoreWriter(store)
    queued = [writer.execute_write_fn(lambda c, i=i: _outbox_row(c, i)) for i in (1, 2, 3)]
    writer.start()
    writer.close()
    assert [f.result(0) for f in queued] == [None, None, None]
    assert _outbox_ids(store) == [1, 2, 3]
    with pytest.raises(WriterClosed):
        writer.execute_write_fn(lambda c: _outbox_row(c, 4))


def test_a_writer_closed_unstarted_fails_its_queued_write_fns(store):
    """No future is left waiting forever."""
    writer = StoreWriter(store)
    future = writer.execute_write_fn(lambda c: _outbox_row(c, 1))
    writer.close()
    with pytest.raises(WriterClosed):
        future.result(0)
