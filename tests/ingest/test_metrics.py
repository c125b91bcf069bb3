"""Metrics from the stock SDK (PeriodicExportingMetricReader, OTLP HTTP and gRPC exporters)."""

from __future__ import annotations

import duckdb
import pytest
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import (
    OTLPMetricExporter as GrpcMetricExporter,
)
from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
    OTLPMetricExporter as HttpMetricExporter,
)
from opentelemetry.sdk.metrics import Counter, Histogram, MeterProvider
from opentelemetry.sdk.metrics.export import AggregationTemporality, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource

from tests.servers import start_server

pytestmark = pytest.mark.e2e

DURATIONS = [0.05, 0.12, 0.2, 0.4, 0.9]  # seconds, as semantic conventions record them


def _record(exporter, service: str, rounds: int = 2) -> None:
    """Two collection rounds of a latency histogram, a request counter, a gauge-like metric."""
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=60_000)
    provider = MeterProvider(
        resource=Resource.create({"service.name": service, "deployment.environment.name": "prod"}),
        metric_readers=[reader],
    )
    meter = provider.get_meter("tests")
    duration = meter.create_histogram("http.server.request.duration", unit="s")
    requests = meter.create_counter("http.server.requests")
    queue = meter.create_up_down_counter("queue.depth")
    for _ in range(rounds):
        for i, seconds in enumerate(DURATIONS):
            attributes = {"http.route": "/checkout", "http.request.method": "POST",
                          "http.response.status_code": 500 if i == 4 else 200}  # fmt: skip
            duration.record(seconds, attributes)
            requests.add(1, attributes)
        queue.add(3)
        reader.force_flush()
    provider.shutdown()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    db = tmp_path_factory.mktemp("metrics") / "f.duckdb"
    process = start_server(db, "--grpc-port", "0")
    yield process, db
    process.stop()


def test_http_and_grpc_metric_exporters(server):
    process, db = server
    _record(HttpMetricExporter(endpoint=f"{process.http_url}/v1/metrics"), "checkout")
    delta = {Counter: AggregationTemporality.DELTA, Histogram: AggregationTemporality.DELTA}
    _record(
        GrpcMetricExporter(endpoint=f"http://{process.grpc_target}", insecure=True,
                           preferred_temporality=delta),
        "payments",
    )  # fmt: skip
    process.stop()
    con = duckdb.connect(str(db), read_only=True)
    rows = con.sql(
        "select service_name, metric, kind, temporality, http_status_code, count, value, "
        "bounds is not null, len(bucket_counts) from metric_points "
        "order by service_name, metric, http_status_code, time"
    ).fetchall()
    histograms = [r for r in rows if r[1] == "http.server.request.duration"]
    # checkout: cumulative (the SDK default); payments: delta, as asked
    checkout = [r for r in histograms if r[0] == "checkout"]
    assert {r[3] for r in checkout} == {"cumulative"}
    # cumulative counts grow; shutdown exports once more, unchanged
    assert [r[5] for r in checkout if r[4] == 200] == [4, 8, 8]
    payments = [r for r in histograms if r[0] == "payments"]
    assert {r[3] for r in payments} == {"delta"}
    assert [r[5] for r in payments if r[4] == 200] == [4, 4]
    assert all(r[7] and r[8] >= 2 for r in histograms)
    counters = [r for r in rows if r[1] == "http.server.requests" and r[0] == "payments"]
    assert [r[6] for r in counters if r[4] == 500] == [1.0, 1.0]
    drops = con.sql(
        "select metric, kind, sum(points) from metric_drops group by all order by all"
    ).fetchall()
    assert [d[:2] for d in drops] == [("queue.depth", "sum (non-monotonic)")]
    dropped = drops[0][2]
    assert dropped >= 4  # one point per export of each provider
    received, accepted, rejected = con.sql(
        "select sum(received), sum(accepted), sum(rejected) from ingest_log "
        "where signal = 'metrics'"
    ).fetchone()
    stored = con.sql("select count(*) from metric_points").fetchone()[0]
    assert rejected == 0 and accepted == received == stored + dropped
