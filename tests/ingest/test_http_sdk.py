"""The stock OpenTelemetry Python SDK exporting to a real `flaglens serve` over OTLP/HTTP."""

from __future__ import annotations

import json

import duckdb
import pytest
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode

from tests.factories import RESOURCE, decision_attributes, privacy_decision_attributes
from tests.servers import running_server

pytestmark = pytest.mark.e2e


def _send_logs(url: str, attribute_maps: list[dict]) -> None:
    provider = LoggerProvider(resource=Resource.create(RESOURCE))
    provider.add_log_record_processor(
        BatchLogRecordProcessor(OTLPLogExporter(endpoint=f"{url}/v1/logs"))
    )
    logger = provider.get_logger("tests")
    for attributes in attribute_maps:
        logger.emit(event_name="feature_flag.evaluation", attributes=attributes)
    provider.shutdown()


def _send_spans(url: str) -> None:
    provider = TracerProvider(resource=Resource.create(RESOURCE))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{url}/v1/traces")))
    tracer = provider.get_tracer("tests")
    for status in (200, 200, 503):
        with tracer.start_as_current_span("POST /checkout", kind=SpanKind.SERVER) as span:
            span.set_attribute("http.route", "/checkout")
            span.set_attribute("http.response.status_code", status)
            span.add_event("feature_flag.evaluation", decision_attributes())
            if status >= 500:
                span.set_status(Status(StatusCode.ERROR))
    provider.shutdown()


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """One server, sent 40 valid and 3 invalid decisions as logs and 3 server spans with a
    decision event each, then stopped; yields a connection to its store. (The tests read apart
    what each signal stored: a server each would cost a start.)"""
    db = tmp_path_factory.mktemp("http-sdk") / "f.duckdb"
    valid = [decision_attributes() for _ in range(40)]
    invalid = [privacy_decision_attributes(**{"privacy.consent.state": None}) for _ in range(3)]
    with running_server(db) as server:
        _send_logs(server.http_url, valid + invalid)
        _send_spans(server.http_url)
    with duckdb.connect(str(db), read_only=True) as con:
        yield con


def test_sdk_logs_valid_stored_invalid_quarantined(exported):
    """Valid decisions land in `decisions`, invalid ones in `quarantine` with their reasons."""
    con = exported
    stored = con.sql(
        "select count(*), count(distinct decision_id) from decisions where source = 'log'"
    ).fetchone()
    reasons = con.sql("select contract_id, errors from quarantine").fetchall()
    ledger = con.sql(
        "select sum(received), sum(accepted), sum(rejected) from ingest_log where signal = 'logs'"
    ).fetchone()
    assert stored == (40, 40)
    assert len(reasons) == 3
    assert {contract for contract, _ in reasons} == {"feature_flag.evaluation.privacy"}
    pointers = {e["pointer"] for _, errors in reasons for e in json.loads(errors)}
    assert pointers == {"/privacy.consent.state"}
    assert ledger == (43, 40, 3)


def test_sdk_spans_stored_with_decision_events(exported):
    """Server spans are stored for SLIs and their feature_flag.evaluation events as decisions."""
    con = exported
    spans = con.sql(
        "select kind, status_code, http_status_code from spans order by http_status_code"
    ).fetchall()
    decisions = con.sql("select source, count(*) from decisions group by source order by source")
    assert spans == [("server", "unset", 200), ("server", "unset", 200), ("server", "error", 503)]
    # the logs' 40 (the other test) and the spans' 3 events, nothing else
    assert decisions.fetchall() == [("log", 40), ("span_event", 3)]
