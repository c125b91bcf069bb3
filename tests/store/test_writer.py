"""The writer's duplicate handling: the same answers from its memory of recent keys as from the
database, on a real store."""

from __future__ import annotations

import itertools
import pickle
import random
import time
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from store.batch import LedgerEntry, WriteBatch
from store.connection import Store
from store.recent_keys import RecentKeys
from store.tables import arrow_table
from store.writer import StoreWriter

SECOND = 1_000_000  # µs
T0 = 1_796_000_000 * SECOND  # 2026-11-29
_request_ids = itertools.count(1)


def decisions_batch(rows: Sequence[tuple[str, int]]) -> WriteBatch:
    """One request of decisions, given as (decision id, event time in µs)."""
    request_id = next(_request_ids)
    n = len(rows)
    table = arrow_table(
        "decisions",
        {
            "time": [t for _, t in rows],
            "decision_id": [key for key, _ in rows],
            "service_name": ["checkout"] * n,
            "environment": ["prod"] * n,
            "flag_key": ["new-checkout"] * n,
            "flag_version": ["v1"] * n,
            "policy_module": ["release"] * n,
            "source": ["log"] * n,
            "contract_id": ["feature_flag.evaluation"] * n,
            "contract_version": ["1.0.0"] * n,
            "attributes": ["{}"] * n,
            "request_id": [request_id] * n,
        },
    )
    ledger = LedgerEntry(
        request_id=request_id, received_at=datetime.now(UTC), transport="http", signal="logs",
        encoding="json", compression=None, body_bytes=0, received=n, accepted=n, rejected=0,
        status_code=200, error=None, services=("checkout",),
    )  # fmt: skip
    return WriteBatch(ledger=ledger, tables={"decisions": table})


def write(writer: StoreWriter, rows: Sequence[tuple[str, int]]) -> int:
    """Commit one request on its own; returns how many of its rows were dropped as duplicates."""
    return writer.submit(decisions_batch(rows)).result(30).duplicates


def stored(store: Store) -> list[tuple[str, int]]:
    cursor = store.cursor()
    query = "SELECT decision_id, epoch_us(time) FROM decisions ORDER BY ALL"
    return [(key, int(t)) for key, t in cursor.execute(query).fetchall()]


def test_duplicates_are_dropped_in_the_group_and_against_stored_rows(tmp_path, store_maker):
    with store_maker.open(tmp_path) as store, StoreWriter(store, max_group_delay=0) as w:
        assert write(w, [("a", T0), ("b", T0), ("a", T0)]) == 1
        assert write(w, [("a", T0), ("c", T0 + 1)]) == 1
        # same id, other time: a different record unless its time is in the group's range
        assert write(w, [("b", T0 + 5 * SECOND)]) == 0
        assert write(w, [("c", T0 - SECOND), ("x", T0 + SECOND)]) == 1
        ledger = store.cursor().execute("SELECT duplicates FROM ingest_log ORDER BY request_id")
        assert [d for (d,) in ledger.fetchall()] == [1, 1, 0, 1]
        assert stored(store) == [
            ("a", T0), ("b", T0), ("b", T0 + 5 * SECOND), ("c", T0 + 1), ("x", T0 + SECOND)
        ]  # fmt: skip


def test_rows_stored_before_the_writer_started_are_found_in_the_database(tmp_path, store_maker):
    with store_maker.open(tmp_path) as store:
        with StoreWriter(store, max_group_delay=0) as first:
            write(first, [("a", T0), ("b", T0 + SECOND)])
        with StoreWriter(store, max_group_delay=0) as second:
            assert second._duplicates.recent("decisions").floor == T0 + SECOND + 1
            assert write(second, [("a", T0), ("new", T0 + 2 * SECOND)]) == 1
            assert write(second, [("b", T0 + SECOND)]) == 1
            assert write(second, [("new", T0 + 2 * SECOND)]) == 1  # from memory


def test_keys_the_writer_forgot_are_found_in_the_database(tmp_path, store_maker):
    with (
        store_maker.open(tmp_path, "w") as store,
        StoreWriter(store, max_group_delay=0, recent_keys=4) as w,
    ):
        for second in range(5):
            write(w, [(f"{second}-{i}", T0 + second * SECOND + i) for i in range(3)])
        recent = w._duplicates.recent("decisions")
        assert recent.size <= 4
        assert recent.floor > T0 + 2 * SECOND  # the oldest seconds were forgotten
        assert write(w, [("0-1", T0 + 1), ("4-2", T0 + 4 * SECOND + 2)]) == 2


def test_memory_and_database_give_the_same_answers(tmp_path, store_maker):
    """Random requests with repeated ids and times, some late: every request's duplicate count
    and the stored rows match what a lookup of the whole table says they must be."""
    rng = random.Random(7)
    with (
        store_maker.open(tmp_path, "w") as store,
        StoreWriter(store, max_group_delay=0, recent_keys=40) as w,
    ):
        expected: list[tuple[str, int]] = []
        now = T0
        for _ in range(60):
            now += rng.randrange(0, 2 * SECOND)
            rows = []
            for _ in range(rng.randrange(1, 12)):
                late = rng.random() < 0.2
                t = now - rng.randrange(0, 8 * SECOND) if late else now + rng.randrange(0, 3)
                rows.append((f"d{rng.randrange(200)}", t))
            low, high = min(t for _, t in rows), max(t for _, t in rows)
            seen = {key for key, t in expected if low <= t <= high}
            dropped = 0
            for key, t in rows:
                if key in seen:
                    dropped += 1
                else:
                    seen.add(key)
                    expected.append((key, t))
            assert write(w, rows) == dropped
        assert stored(store) == sorted(expected)


def test_recent_keys_forgets_the_oldest_second_and_raises_its_floor():
    recent = RecentKeys(newest_stored=T0, capacity=3)
    assert recent.floor == T0 + 1
    recent.add(["a", "b"], [T0 + SECOND, T0 + SECOND + 5])
    recent.add(["c", "d"], [T0 + 2 * SECOND, T0 + 3 * SECOND])
    assert recent.floor == T0 + 2 * SECOND  # the second holding a and b was forgotten
    assert recent.stored({"c", "d", "x"}, T0 + 2 * SECOND, T0 + 3 * SECOND) == {"c", "d"}
    assert recent.stored({"c", "d"}, T0 + 2 * SECOND + 1, T0 + 3 * SECOND) == {"d"}
    recent.add(["late"], [T0])  # below the floor: the database answers for it
    assert recent.size == 2
    recent.forget(T0 + 9 * SECOND)
    assert (recent.size, recent.floor) == (0, T0 + 9 * SECOND + 1)


def test_recent_keys_answer_as_a_plain_scan_would_on_times_spread_thin():
    """Keys a second or more apart (a replay, a backfill) leave a second per key: eviction and
    lookups must give what a scan over every second gives."""
    rng = random.Random(13)
    recent = RecentKeys(newest_stored=T0, capacity=50)
    held: dict[int, dict[str, int]] = {}  # the plain model: second → key → time
    floor = T0 + 1
    for n in range(400):
        # a replay moving forward ten seconds a request, some rows older than the floor
        times = sorted(T0 + (10 * n + rng.randrange(-100, 100)) * SECOND + rng.randrange(SECOND)
                       for _ in range(rng.randrange(1, 8)))  # fmt: skip
        keys = [f"k{rng.randrange(300)}" for _ in times]
        recent.add(keys, times)
        for key, t in zip(keys, times, strict=True):
            if t >= floor:
                held.setdefault(t // SECOND, {})[key] = t
        while sum(map(len, held.values())) > 50:
            second = min(held)
            del held[second]
            floor = max(floor, (second + 1) * SECOND)
        assert (recent.floor, recent.size) == (floor, sum(map(len, held.values()))), n
        some = rng.choice([t for times_ in held.values() for t in times_.values()] or [floor])
        low = max(floor, rng.choice([some, some // SECOND * SECOND, some - 3 * SECOND]))
        newest = max([t for times_ in held.values() for t in times_.values()], default=low)
        high = rng.choice([low + d for d in (0, SECOND // 2, 5 * SECOND, 10_000 * SECOND)]
                          + [max(low, newest)])  # fmt: skip
        asked = {f"k{rng.randrange(300)}" for _ in range(100)}
        expected = {k for times_ in held.values() for k, t in times_.items()
                    if k in asked and low <= t <= high}  # fmt: skip
        assert recent.stored(asked, low, high) == expected, n


@pytest.mark.parametrize("capacity", [0, 1])
def test_a_tiny_memory_still_answers_correctly(tmp_path, capacity, store_maker):
    with (
        store_maker.open(tmp_path, "w") as store,
        StoreWriter(store, max_group_delay=0, recent_keys=capacity) as w,
    ):
        assert write(w, [("a", T0), ("b", T0 + SECOND)]) == 0
        assert write(w, [("a", T0), ("b", T0 + SECOND), ("c", T0 + 2 * SECOND)]) == 2
        assert write(w, [("c", T0 + 2 * SECOND)]) == 1


def test_a_pickled_batch_comes_back_with_the_same_tables():
    """Decode workers send batches pickled (as Arrow IPC streams)."""
    batch = decisions_batch([("a", T0), ("b", T0 + 1)])
    empty = arrow_table("spans", {})
    batch = WriteBatch(ledger=batch.ledger, tables={**batch.tables, "spans": empty})
    back = pickle.loads(pickle.dumps(batch))
    assert back.ledger == batch.ledger
    assert back.tables.keys() == batch.tables.keys()
    for name, table in batch.tables.items():
        assert back.tables[name].schema == table.schema
        assert back.tables[name].equals(table)
    assert back.rows == 2


def duckdb_threads(store: Store) -> int:
    return int(store.cursor().execute("SELECT current_setting('threads')").fetchone()[0])


def threads_come_back(store: Store, threads: int) -> bool:
    """Whether DuckDB's threads read ``threads`` within 5 s (the writer restores them just
    after it has answered the group's requests)."""
    deadline = time.monotonic() + 5
    while duckdb_threads(store) != threads:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_a_commit_runs_duckdb_on_one_thread_and_gives_the_others_back(tmp_path):
    """On two threads, DuckDB's Python client spins while the other thread runs a commit's
    only task; the writer commits on one and restores the store's count for queries once it
    has nothing more to do."""
    with Store.open(tmp_path / "w.duckdb", threads=2) as store:
        with StoreWriter(store, max_group_delay=0, commit_delay=0.3) as writer:
            future = writer.submit(decisions_batch([("a", T0)]))
            during = set()
            while not future.done():
                during.add(duckdb_threads(store))
                time.sleep(0.01)
            assert future.result().duplicates == 0
            assert 1 in during  # (and 2 before the commit began)
            assert threads_come_back(store, 2)
            assert write(writer, [("b", T0 + 1)]) == 0
            assert threads_come_back(store, 2)
        assert stored(store) == [("a", T0), ("b", T0 + 1)]


def test_duckdb_stays_on_one_thread_while_requests_are_queued(tmp_path):
    with Store.open(tmp_path / "w.duckdb", threads=2) as store:
        writer = StoreWriter(store, max_group_delay=0, max_group_rows=1, commit_delay=0.1)
        futures = [writer.submit(decisions_batch([(f"k{i}", T0 + i)])) for i in range(3)]
        seen = []
        with writer:  # three groups of one request each, back to back
            while not futures[1].done():  # the third is still queued or being committed
                seen.append(duckdb_threads(store))
                time.sleep(0.01)
            assert len({future.result().committed_at for future in futures}) == 3
        assert 1 in seen
        assert set(seen[seen.index(1) :]) == {1}  # (2 only before the first commit began)
        assert threads_come_back(store, 2)
