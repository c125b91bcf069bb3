"""How the writer groups requests into commits, and what that leaves in the file, on a real
store: whole row groups when requests on their way would fill them, no waiting otherwise."""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future

import duckdb
import pytest

from contracts import load_registry
from ingest.limits import Limits
from ingest.pipeline import IngestPipeline
from store.batch import WriteBatch, WriteResult
from store.connection import Store
from store.writer import StoreWriter
from tests.factories import decision_attributes, prepare_http, proto_logs
from tests.store.test_writer import T0, decisions_batch

ROW_GROUP = 2048  # DuckDB's smallest: one vector


def batch(rows: int, first: int) -> WriteBatch:
    """A request of ``rows`` decisions numbered from ``first``."""
    return decisions_batch([(f"d{first + i}", T0 + first + i) for i in range(rows)])


def decoded_batches(requests: int, records: int) -> list[WriteBatch]:
    """Requests of full decision rows, as the decode workers make them (every column set)."""
    pipeline = IngestPipeline(load_registry(), Limits())
    batches = []
    for n in range(requests):
        body = proto_logs([decision_attributes() for _ in range(records)]).SerializeToString()
        batches.append(prepare_http(pipeline, n + 1, "logs", body, "application/x-protobuf").batch)
    return batches


def commit_times(futures: list[Future[WriteResult]]) -> list[object]:
    return [future.result(30).committed_at for future in futures]


def test_a_queue_past_a_row_group_is_cut_after_the_last_whole_one(tmp_path):
    with Store.open(tmp_path / "g.duckdb", row_group_size=ROW_GROUP) as store:
        writer = StoreWriter(store, max_group_delay=0)
        # queued before the thread starts: 5 requests of 600 rows
        futures = [writer.submit(batch(600, 600 * i)) for i in range(5)]
        with writer:
            times = commit_times(futures)
    # the first four reach a row group (2,400 rows); the fifth waits for the next commit
    assert len(set(times[:4])) == 1
    assert times[4] != times[0]


def submit_while_decoding(writer: StoreWriter, batch: WriteBatch, decode_seconds: float):
    """A receiver's path: the request is announced, "decoded" for a while, then submitted."""
    futures: list[Future[WriteResult]] = []
    announced = threading.Event()

    def receive() -> None:
        with writer.incoming():
            announced.set()
            time.sleep(decode_seconds)
            futures.append(writer.submit(batch))

    thread = threading.Thread(target=receive)
    thread.start()
    announced.wait(10)
    return thread, futures


@pytest.mark.parametrize(
    ("rows", "decode_seconds", "together"),
    [
        # 1,024 queued and a request of ~1,024 on its way make a row group: one commit
        pytest.param(1024, 0.15, True, id="they-fill-a-row-group"),
        # 200 rows are far from one: the first is committed after 50 ms, alone
        pytest.param(100, 0.5, False, id="they-would-not"),
    ],
)
def test_the_group_waits_for_announced_requests_only_when_they_fill_a_row_group(
    tmp_path, rows, decode_seconds, together
):
    with (
        Store.open(tmp_path / "g.duckdb", row_group_size=ROW_GROUP) as store,
        StoreWriter(store, max_group_delay=0.05, max_group_wait=30) as writer,
    ):
        thread, second = submit_while_decoding(writer, batch(rows, rows), decode_seconds)
        first = writer.submit(batch(rows, 0))
        thread.join()
        assert (commit_times([first]) == commit_times(second)) is together


def test_a_lone_request_waits_only_for_the_short_delay(tmp_path):
    with (
        Store.open(tmp_path / "g.duckdb", row_group_size=ROW_GROUP) as store,
        StoreWriter(store, max_group_delay=0.05, max_group_wait=120) as writer,
    ):
        future = writer.submit(batch(10, 0))
        # nothing else is on its way: committed after 50 ms, not after max_group_wait
        done = threading.Event()
        future.add_done_callback(lambda _: done.set())
        assert done.wait(20), "a lone request waited for max_group_wait"
        assert future.result().duplicates == 0


def test_a_group_of_whole_row_groups_is_stored_as_such_and_opens_in_plain_duckdb(tmp_path):
    path = tmp_path / "g.duckdb"
    # two DuckDB threads, as on a 2-core server: were both to scan the group (one Arrow chunk
    # per request), they would write these 16,384 rows as row groups of 14,848 and 1,536
    # (which the checkpoint on close merges, leaving their blocks as free space in the file)
    with Store.open(path, row_group_size=16_384, threads=2) as store:
        writer = StoreWriter(store, max_group_delay=0)
        futures = [writer.submit(b) for b in decoded_batches(32, 512)]
        with writer:
            commit_times(futures)
        counts = (
            store.cursor()
            .execute(
                "SELECT row_group_id, max(count) FROM pragma_storage_info('decisions') "
                "GROUP BY ALL ORDER BY ALL"
            )
            .fetchall()
        )
        assert counts == [(0, 16_384)]
    with duckdb.connect(str(path), read_only=True) as con:  # as a user's duckdb CLI would
        assert con.execute("SELECT count(*) FROM decisions").fetchone() == (16_384,)
