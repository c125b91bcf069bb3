"""The stock OpenTelemetry SDK gRPC exporters against a real `flaglens serve` (decode workers
and all): what they send is stored, and the server's ledger reconciles."""

from __future__ import annotations

import duckdb
import pytest
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind

from tests.factories import RESOURCE, decision_attributes, privacy_decision_attributes
from tests.servers import start_server

pytestmark = pytest.mark.e2e


def test_stock_grpc_exporters_store_decisions_and_spans(tmp_path):
    db = tmp_path / "f.duckdb"
    process = start_server(db, "--grpc-port", "0")
    try:
        endpoint = f"http://{process.grpc_target}"
        resource = Resource.create(RESOURCE)
        logs = LoggerProvider(resource=resource)
        logs.add_log_record_processor(
            BatchLogRecordProcessor(OTLPLogExporter(endpoint=endpoint, insecure=True))
        )
        logger = logs.get_logger("tests")
        valid = [decision_attributes() for _ in range(30)]
        invalid = [
            privacy_decision_attributes(**{"privacy.consent.state": "maybe"}) for _ in range(2)
        ]
        for attributes in valid + invalid:
            logger.emit(event_name="feature_flag.evaluation", attributes=attributes)
        logs.shutdown()
        traces = TracerProvider(resource=resource)
        traces.add_span_processor(
            BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint, insecure=True))
        )
        tracer = traces.get_tracer("tests")
        for _ in range(5):
            with tracer.start_as_current_span("GET /x", kind=SpanKind.SERVER) as span:
                span.add_event("feature_flag.evaluation", decision_attributes())
        traces.shutdown()
    finally:
        process.stop()
    con = duckdb.connect(str(db), read_only=True)
    stored = {r[0] for r in con.sql("select decision_id from decisions").fetchall()}
    assert {a["decision.id"] for a in valid} <= stored
    spans = con.sql("select count(*) from spans").fetchone()[0]
    assert spans == 5
    events = con.sql("select count(*) from decisions where source = 'span_event'").fetchone()[0]
    assert events == 5
    accepted, rejected = con.sql(
        "select sum(accepted), sum(rejected) from ingest_log "
        "where status_code = 200 and transport = 'grpc'"
    ).fetchone()
    quarantined = con.sql("select count(*) from quarantine").fetchone()[0]
    assert rejected == quarantined == 2
    logged = con.sql("select count(*) from decisions where source = 'log'").fetchone()[0]
    assert accepted == logged + spans  # traces count spans; their events land in decisions
