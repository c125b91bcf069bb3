"""Scale-out on a DuckLake: three ingest servers and a reader on one lake (a real PostgreSQL
catalog), real OTLP exporters behind a round-robin sender, one server killed hard mid-load.

Every acknowledged record ends up in the lake exactly once, including batches the sender hands
to two servers at once (as a balancer that retries a slow upstream elsewhere does); the reader
process sees the union of the writers while they run (through its read API; a CLI verb in
another process reads the lake directly); and the rounds lease passes from the killed server to
a live process.
"""

from __future__ import annotations

import json
import logging
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed

import pytest
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.sdk._logs import LoggerProvider, ReadableLogRecord
from opentelemetry.sdk._logs.export import (
    BatchLogRecordProcessor,
    LogRecordExporter,
    LogRecordExportResult,
)
from opentelemetry.sdk.resources import Resource

from flaglens.client import Client
from store.connection import Store
from store.status import store_status
from tests.factories import RESOURCE, decision_attributes
from tests.servers import REPO, ServerProcess, start_server
from tests.stores import StoreMaker

pytestmark = pytest.mark.e2e

SENDERS = 3
BATCH = 100
# records acknowledged before the reads and the kill, and in all: a few batches per sender, so
# that each sends some batch twice
FIRST = 900
SECOND = 1_800
TWICE_EVERY = 3  # every third batch goes to two servers at once
# a sender emits its next batch once at most this many of its records await an answer: the
# load follows what the servers take instead of queueing up batches that the exporters'
# shutdown would then have to send
IN_FLIGHT = BATCH
PACE = 1.0  # seconds between a sender's batches: load that overlaps the reads and the kill


class RoundRobin(LogRecordExporter):
    """Each batch to the next server; a batch a server fails goes to the next one, and that
    server is skipped from then on, like a load balancer's retry and passive health check.
    Keeps the decision ids of every batch a server acknowledged."""

    def __init__(self, urls: Sequence[str], acked: set[str], lock: threading.Lock) -> None:
        self._exporters = [OTLPLogExporter(endpoint=f"{url}/v1/logs", timeout=5) for url in urls]
        self._down: set[int] = set()
        self._next = 0
        self._batches = 0
        self._acked = acked
        self._lock = lock
        self._pool = ThreadPoolExecutor(2)
        self.answered = 0  # records whose batch was acknowledged or failed
        self.changed = threading.Condition()

    def _send(self, index: int, batch: Sequence[ReadableLogRecord]) -> bool:
        index %= len(self._exporters)
        if index in self._down:
            return False
        if self._exporters[index].export(batch) is LogRecordExportResult.SUCCESS:
            return True
        self._down.add(index)
        return False

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        try:
            return self._export(batch)
        finally:
            with self.changed:
                self.answered += len(batch)
                self.changed.notify_all()

    def _export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        ids = {str(record.log_record.attributes["decision.id"]) for record in batch}  # type: ignore[index]
        self._batches += 1
        start = self._next
        self._next += 1
        if self._batches % TWICE_EVERY == 0:  # the same batch to two servers at the same time
            both = list(self._pool.map(lambda i: self._send(i, batch), (start, start + 1)))
            if any(both):
                with self._lock:
                    self._acked |= ids
                return LogRecordExportResult.SUCCESS
        for attempt in range(len(self._exporters)):
            if self._send(start + attempt, batch):
                with self._lock:
                    self._acked |= ids
                return LogRecordExportResult.SUCCESS
        return LogRecordExportResult.FAILURE

    def wait_for_answers(self, count: int, stop: threading.Event) -> None:
        """Until ``count`` records have had their answer, or ``stop`` is set."""
        with self.changed:
            while self.answered < count and not stop.is_set():
                self.changed.wait(0.5)

    def shutdown(self) -> None:
        self._pool.shutdown()
        for exporter in self._exporters:
            exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True


def _send(urls: Sequence[str], acked: set[str], lock: threading.Lock, stop: threading.Event):
    provider = LoggerProvider(resource=Resource.create(RESOURCE))
    exporter = RoundRobin(urls, acked, lock)
    provider.add_log_record_processor(
        BatchLogRecordProcessor(exporter, max_export_batch_size=BATCH, schedule_delay_millis=50)
    )
    logger = provider.get_logger("scale-out")
    emitted = 0
    while not stop.is_set():
        for _ in range(BATCH):
            logger.emit(event_name="feature_flag.evaluation", attributes=decision_attributes())
        emitted += BATCH
        exporter.wait_for_answers(emitted - IN_FLIGHT, stop)
        stop.wait(PACE)
    provider.shutdown()


def _status(url: str, data_path: str) -> dict:
    """`flaglens store status` from its own process, as a reader elsewhere would run it."""
    done = subprocess.run(
        [sys.executable, "-m", "flaglens.cli.main", "store", "status", "--store", url,
         "--data-path", data_path, "--format", "json"],
        cwd=REPO, capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    return json.loads(done.stdout)


def _lease(url: str, data_path: str) -> dict:
    """Who holds the rounds lease, read in this process (`_status` once showed it elsewhere)."""
    with Store.open(url, data_path=data_path, read_only=True) as store:
        return dict(store_status(store)["lease"])


def _exported_ids(url: str, data_path: str) -> set[str]:
    """`flaglens export decisions --store` from its own process: the lake read directly."""
    done = subprocess.run(
        [sys.executable, "-m", "flaglens.cli.main", "export", "decisions", "--store", url,
         "--data-path", data_path, "--from", "now-1h", "--format", "ndjson"],
        cwd=REPO, capture_output=True, timeout=120, check=True,
    )  # fmt: skip
    return {json.loads(line)["decision_id"] for line in done.stdout.splitlines()}


def _read_through(api_url: str) -> set[str]:
    with Client(api_url) as client:
        return set(client.decisions(start="now-1h")["decision_id"])


def _wait_for_acked(acked: set[str], count: int, senders: Sequence[threading.Thread]) -> None:
    """Until ``count`` records are acknowledged (a sender that died fails the test here)."""
    while len(acked) < count:
        assert all(thread.is_alive() for thread in senders), "a sender stopped"
        time.sleep(0.1)


def _lake_server(db, url: str, data_path: str, *extra: str, **options) -> ServerProcess:
    # four processes start at once on two cores: more time than start_server's default
    return start_server(
        db, "--store", url, "--data-path", data_path, "--decode-workers", "0", "--no-alerts",
        "--lease-ttl", "3", "--lake-reconcile-interval", "1", *extra, timeout=180, **options,
    )  # fmt: skip


@pytest.fixture
def quiet_exporters():
    """The exporters log every refused connection to the killed server; that is the test."""
    otel = logging.getLogger("opentelemetry")
    level = otel.level
    otel.setLevel(logging.CRITICAL)
    yield
    otel.setLevel(level)


def _copies(url: str, data_path: str) -> dict[str, int]:
    with Store.open(url, data_path=data_path, read_only=True) as store:
        rows = store.cursor().execute(
            "SELECT decision_id, count(*) FROM decisions GROUP BY decision_id"
        )
        return dict(rows.fetchall())


def test_three_servers_and_a_reader_on_one_lake(postgres, tmp_path, quiet_exporters):
    url, data_path = StoreMaker("ducklake", postgres).url(tmp_path)
    assert data_path is not None
    db = tmp_path / "unused.duckdb"
    started: list[ServerProcess] = []
    acked: set[str] = set()
    lock = threading.Lock()
    stop = threading.Event()
    try:
        with ThreadPoolExecutor(4) as pool:
            ingesting = [pool.submit(_lake_server, db, url, data_path) for _ in range(3)]
            # the reader once an ingest server is up: one of the three holds the rounds lease
            next(as_completed(ingesting)).exception()
            reading = pool.submit(
                _lake_server, db, url, data_path, "--no-ingest", "--dashboard-port", "0",
                wait_for=("database",),
            )  # fmt: skip
            for future in (*ingesting, reading):
                if future.exception() is None:
                    started.append(future.result())
            for future in (*ingesting, reading):
                future.result()  # the first that failed to start, after the others stop
        servers, reader = started[:3], started[3]
        urls = [server.http_url for server in servers]
        senders = [
            threading.Thread(target=_send, args=(urls, acked, lock, stop)) for _ in range(SENDERS)
        ]
        for thread in senders:
            thread.start()
        _wait_for_acked(acked, FIRST, senders)
        with lock:
            committed = set(acked)  # acknowledged, so committed, before the reads below
        # three readers at once, while the writers write: a CLI verb elsewhere, the --no-ingest
        # reader's read API, and the lake read directly by a CLI verb in its own process
        with ThreadPoolExecutor(3) as pool:
            status = pool.submit(_status, url, data_path)
            reading = pool.submit(_read_through, reader.api_url)
            exporting = pool.submit(_exported_ids, url, data_path)
            during, through_reader, exported = (
                status.result(),
                reading.result(),
                exporting.result(),
            )
        first_holder = during["lease"]["holder"]
        holding = [s for s in servers if f":{s.process.pid}:" in first_holder]
        assert holding, f"no ingest server holds the rounds lease: {first_holder}"
        killed = holding[0]
        killed.stop(signal.SIGKILL)  # mid-load, holding the lease
        _wait_for_acked(acked, SECOND, senders)
        stop.set()
        for thread in senders:
            thread.join(120)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # the lease runs out; a live process takes it
            after = _lease(url, data_path)
            if after["live"] and after["holder"] != first_holder:
                break
            time.sleep(0.5)
        while time.monotonic() < deadline:  # the new holder's reconciliation rounds
            copies = _copies(url, data_path)
            if max(copies.values()) == 1:
                break
            time.sleep(0.5)
    finally:
        stop.set()
        with ThreadPoolExecutor(len(started) or 1) as pool:
            list(pool.map(ServerProcess.stop, started))  # the killed one is already gone
    assert len([w for w in during["writers"] if w["accepted"]]) == 3, during["writers"]
    assert during["rows"]["decisions"] >= FIRST
    assert committed <= through_reader  # the reader serves the union of the three writers
    assert committed <= exported
    assert after["holder"] != first_holder and after["live"]
    assert acked <= copies.keys()  # every acknowledged record is there
    assert max(copies.values()) == 1  # exactly once
    with Store.open(url, data_path=data_path, read_only=True) as store:
        cursor = store.cursor()
        late = cursor.execute("SELECT coalesce(sum(rows), 0) FROM late_duplicates").fetchone()
        ledger = cursor.execute(
            "SELECT count(DISTINCT writer), sum(duplicates) FROM ingest_log"
        ).fetchone()
    assert ledger[0] == 3  # a ledger per writer
    assert ledger[1] + late[0] > 0  # the batches sent twice were dropped or removed
