"""A writer slowed on purpose, a burst of exports: 503/UNAVAILABLE with a retry delay, every
record stored exactly once in the end (raw gRPC calls, the stock SDK gRPC exporters, a retrying
HTTP sender), and the server's memory bounded."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import duckdb
import grpc
import httpx
import psutil
import pytest
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.resources import Resource

from sample_data.otlp import Export, OtlpSender
from tests.factories import RESOURCE, decision_attributes, proto_logs
from tests.servers import start_server

pytestmark = pytest.mark.e2e

# the HTTP burst: six times what the writer's queue holds (1,000 rows), sent 8 at a time, so
# that most requests meet a full queue and are retried; a longer burst only repeats that
REQUESTS, PER_REQUEST = 30, 200


def _body(records: list[dict]) -> bytes:
    return proto_logs(records).SerializeToString()


STOCK_EXPORTERS, STOCK_PER_EXPORTER = 8, 300
STOCK_RECORDS = STOCK_EXPORTERS * STOCK_PER_EXPORTER


def _stock_grpc_export(target: str) -> bool:
    """One SDK logger provider with the stock OTLP/gRPC exporter sends its records, in one batch.

    A generous exporter timeout leaves room for the retries the server asks for.
    """
    exporter = OTLPLogExporter(endpoint=f"http://{target}", insecure=True, timeout=120)
    provider = LoggerProvider(resource=Resource.create(RESOURCE))
    provider.add_log_record_processor(
        BatchLogRecordProcessor(exporter, max_export_batch_size=STOCK_PER_EXPORTER)
    )
    logger = provider.get_logger("tests")
    for _ in range(STOCK_PER_EXPORTER):
        logger.emit(event_name="feature_flag.evaluation",
                    attributes=decision_attributes(**{"policy.rule.id": "stock"}))  # fmt: skip
    flushed = provider.force_flush(timeout_millis=150_000)
    provider.shutdown()
    return flushed


def test_burst_against_a_slow_writer_loses_nothing(tmp_path):
    db = tmp_path / "f.duckdb"
    server = start_server(
        db,
        "--grpc-port", "0",
        env={"FLAGLENS_WRITER_COMMIT_DELAY": "0.25", "FLAGLENS_WRITER_MAX_PENDING_ROWS": "1000"},
    )  # fmt: skip
    process = psutil.Process(server.process.pid)
    rss: list[int] = []
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            rss.append(process.memory_info().rss)
            done.wait(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    batches = [[decision_attributes() for _ in range(PER_REQUEST)] for _ in range(REQUESTS)]
    try:
        # gRPC while the queue is full: UNAVAILABLE with google.rpc.RetryInfo
        codes: list[grpc.StatusCode] = []
        with grpc.insecure_channel(server.grpc_target) as channel:
            export = channel.unary_unary(
                "/opentelemetry.proto.collector.logs.v1.LogsService/Export"
            )

            def grpc_send(records: list[dict]) -> None:
                try:
                    export(_body(records), timeout=60)
                    codes.append(grpc.StatusCode.OK)
                except grpc.RpcError as exc:
                    codes.append(exc.code())
                    if exc.code() == grpc.StatusCode.UNAVAILABLE:
                        trailers = dict(exc.trailing_metadata() or ())
                        status = status_pb2.Status.FromString(trailers["grpc-status-details-bin"])
                        retry = error_details_pb2.RetryInfo()
                        assert status.details[0].Unpack(retry)
                        assert retry.retry_delay.seconds >= 1
                        # the same delay where the Python SDK's exporter reads it
                        alone = error_details_pb2.RetryInfo.FromString(
                            trailers["google.rpc.retryinfo-bin"]
                        )
                        assert alone.retry_delay == retry.retry_delay

            with ThreadPoolExecutor(8) as pool:
                list(pool.map(grpc_send, [[decision_attributes() for _ in range(PER_REQUEST)]
                                          for _ in range(16)]))  # fmt: skip
        assert grpc.StatusCode.UNAVAILABLE in codes
        grpc_stored = codes.count(grpc.StatusCode.OK) * PER_REQUEST
        # the stock SDK gRPC exporters, eight at once: refused ones wait and send again
        with ThreadPoolExecutor(8) as pool:
            flushed = list(pool.map(_stock_grpc_export, [server.grpc_target] * 8))
        assert all(flushed)
        # HTTP: a retrying exporter (honours 503 + Retry-After) sends the burst, encoded before
        # the first is sent: encoding them on the way, on a busy machine, can pace the burst
        # down to what the slow writer keeps up with
        burst = [Export("logs", _body(records), len(records), None) for records in batches]
        sender = OtlpSender(server.http_url, in_flight=8)
        try:
            summary = sender.send_all(burst)
        finally:
            sender.close()
        assert summary.retries > 0  # the server did push back
        assert summary.rejected["logs"] == 0
        health = httpx.get(f"{server.http_url}/healthz", timeout=10).json()
        assert health["status"] == "ok"
        # every refusal is counted (refused requests are not on the ledger: the exporter
        # sends them again, and the retry is what gets stored)
        assert health["writer"]["refused_batches"] >= summary.retries
    finally:
        done.set()
        sampler.join()
        server.stop()
    con = duckdb.connect(str(db), read_only=True)
    total, distinct = con.sql(
        "select count(*), count(distinct decision_id) from decisions"
    ).fetchone()
    assert total == distinct == REQUESTS * PER_REQUEST + grpc_stored + STOCK_RECORDS
    stock = con.sql(
        "select count(*), count(distinct decision_id) from decisions where rule_id = 'stock'"
    ).fetchone()
    assert stock == (STOCK_RECORDS, STOCK_RECORDS)
    sent = {a["decision.id"] for records in batches for a in records}
    stored = {r[0] for r in con.sql("select decision_id from decisions").fetchall()}
    assert sent <= stored
    # memory: the queue holds at most ~1,000 rows, so the server never grows by much
    assert max(rss) - rss[0] < 300 * 2**20, (rss[0], max(rss))
