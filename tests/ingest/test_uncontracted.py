"""Records no contract claims: ignored (counted, not stored, not rejected) by default, kept in
their own table, or rejected as before; a governed event that breaks its contract is rejected in
every mode."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import duckdb
import httpx
import pytest
from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.resources import Resource

from contracts import load_registry
from ingest.auth import Grant
from ingest.limits import Limits
from ingest.pipeline import IngestPipeline, RequestMeta
from store.writer import StoreWriter
from tests.factories import RESOURCE, decision_attributes, otlp_json_logs
from tests.servers import running_server


def _body() -> bytes:
    """A plain log, an event no contract governs, a valid decision and a decision without its
    version: two uncontracted records, one accepted and one rejected decision."""
    body = otlp_json_logs(
        [decision_attributes(), decision_attributes(**{"feature_flag.version": None})]
    )
    records = body["resourceLogs"][0]["scopeLogs"][0]["logRecords"]
    plain = {"timeUnixNano": "1764000000000000000", "severityNumber": 9,
             "body": {"stringValue": "GET /checkout 200"}}  # fmt: skip
    other = {**plain, "eventName": "app.cache.miss"}
    records[:0] = [plain, other]
    return json.dumps(body).encode()


def _prepare(mode, grant=None):
    pipeline = IngestPipeline(load_registry(), Limits(), mode)
    meta = RequestMeta(1, "logs", "http", "json", None, 0, datetime.now(UTC), grant=grant)
    return pipeline.prepare(meta, _body(), content_type="application/json", content_encoding=None)


@pytest.mark.parametrize(
    ("mode", "rejected", "kept"), [("ignore", 1, 0), ("keep", 1, 2), ("reject", 3, 0)]
)
def test_modes(mode, rejected, kept):
    prepared = _prepare(mode)
    ledger = prepared.batch.ledger
    assert (ledger.received, ledger.accepted, ledger.rejected) == (4, 4 - rejected, rejected)
    assert prepared.rejected == rejected
    tables = prepared.batch.tables
    assert tables["decisions"].num_rows == 1
    assert tables["quarantine"].num_rows == rejected
    assert (tables["uncontracted"].num_rows if "uncontracted" in tables else 0) == kept
    if mode == "reject":
        assert ledger.uncontracted == ()
        assert "no contract for event None" in prepared.error_message
    else:
        assert ledger.uncontracted == (("checkout", 2),)
        assert prepared.error_message.startswith("rejected 1 of 4 log records")
        assert "feature_flag.version" in prepared.error_message


def test_kept_records_are_stored_compactly():
    rows = _prepare("keep").batch.tables["uncontracted"].to_pylist()
    assert [(r["event_name"], r["service_name"], r["severity_number"]) for r in rows] == [
        (None, "checkout", 9),
        ("app.cache.miss", "checkout", 9),
    ]
    assert json.loads(rows[0]["record"])["body"] == "GET /checkout 200"


def test_a_token_may_not_speak_for_another_service_even_uncontracted():
    grant = Grant(name="payments-team", services=frozenset({"payments"}))
    prepared = _prepare("ignore", grant=grant)
    assert prepared.rejected == 4
    assert prepared.batch.ledger.uncontracted == ()


def _sdk_logs(url: str, decisions: int, plain: int) -> None:
    """Decisions and an application's ordinary logs through one stock SDK logger provider."""
    provider = LoggerProvider(resource=Resource.create(RESOURCE))
    provider.add_log_record_processor(
        BatchLogRecordProcessor(OTLPLogExporter(endpoint=f"{url}/v1/logs"))
    )
    logger = provider.get_logger("tests")
    for index in range(max(decisions, plain)):
        if index < decisions:
            logger.emit(event_name="feature_flag.evaluation", attributes=decision_attributes())
        if index < plain:  # what a logging bridge sends: a body and a severity, no event name
            logger.emit(body=f"checkout served in {10 + index} ms",
                        severity_number=SeverityNumber.INFO, severity_text="INFO")  # fmt: skip
    provider.shutdown()


@pytest.mark.e2e
@pytest.mark.parametrize("mode", ["default", "reject"])
def test_plain_sdk_logs_beside_decisions_are_not_rejected_by_default(tmp_path, mode):
    """The stock OpenTelemetry SDK exporter against a real server: plain logs sent through the
    same provider are counted per service, not rejected (with --uncontracted reject they are)."""
    db = tmp_path / "f.duckdb"
    extra = () if mode == "default" else ("--uncontracted", "reject")
    with running_server(db, *extra) as server:
        _sdk_logs(server.http_url, decisions=20, plain=30)
        metrics = httpx.get(f"{server.http_url}/metrics").text
    con = duckdb.connect(str(db), read_only=True)
    ledger = con.sql(
        "select sum(received), sum(accepted), sum(rejected) from ingest_log"
    ).fetchone()
    decisions = con.sql("select count(*) from decisions").fetchone()
    quarantined = con.sql("select count(*) from quarantine").fetchone()
    per_service = con.sql(
        "select u.service_name, sum(u.records) from ingest_log, unnest(uncontracted) as t(u) "
        "group by all"
    ).fetchall()
    assert decisions == (20,)
    if mode == "default":
        assert ledger == (50, 50, 0)
        assert quarantined == (0,)
        assert per_service == [("checkout", 30)]
        line = 'flaglens_ingest_uncontracted_records_total{signal="logs",service="checkout"} 30'
        assert line in metrics
    else:
        assert ledger == (50, 20, 30)
        assert quarantined == (30,)
        assert per_service == []


def test_kept_records_and_counts_are_committed(tmp_path, store_maker):
    """Through the writer into a real store (a file, and a lake, whose tables have no keys):
    the uncontracted table and ingest_log's counts."""
    prepared = _prepare("keep")
    with store_maker.open(tmp_path, "u") as store:
        with StoreWriter(store, max_group_delay=0) as writer:
            writer.submit(prepared.batch).result(timeout=30)
        cursor = store.cursor()
        kept = cursor.execute("select count(*), count(ingested_at) from uncontracted").fetchone()
        counts = cursor.execute("select uncontracted from ingest_log").fetchall()
    assert kept == (2, 2)
    assert counts == [([{"service_name": "checkout", "records": 2}],)]
