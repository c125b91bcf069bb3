"""flaglens' own counters: at /metrics and /healthz, and exported over OTLP (here, to a second
flaglens, which stores them like any service's metrics)."""

from __future__ import annotations

import re

import duckdb
import httpx

from tests.factories import decision_attributes, otlp_json_logs, privacy_decision_attributes
from tests.inprocess import start_inprocess


def test_counters_at_metrics_and_healthz_and_over_otlp(tmp_path):
    collector = start_inprocess(tmp_path / "collector.duckdb")
    server = start_inprocess(tmp_path / "f.duckdb", self_otlp_endpoint=collector.http_url)
    try:
        body = otlp_json_logs(
            [decision_attributes() for _ in range(4)]
            + [privacy_decision_attributes(**{"privacy.purpose": None})]
        )
        assert httpx.post(f"{server.http_url}/v1/logs", json=body).status_code == 200
        assert (
            httpx.post(
                f"{server.http_url}/v1/logs",
                content=b"x",
                headers={"content-type": "application/x-protobuf"},
            ).status_code
            == 400
        )
        text = httpx.get(f"{server.http_url}/metrics").text

        def value(pattern: str) -> float:
            match = re.search("^" + pattern + r" (\S+)$", text, re.MULTILINE)
            assert match, pattern
            return float(match.group(1))

        received = value(
            r'flaglens_ingest_records_total\{signal="logs",outcome="received",contract="-"\}'
        )
        assert received == 5
        assert value(r'flaglens_ingest_records_total\{signal="logs",outcome="accepted",'
                     r'contract="feature_flag.evaluation.release"\}') == 4  # fmt: skip
        assert value(r'flaglens_ingest_records_total\{signal="logs",outcome="rejected",'
                     r'contract="feature_flag.evaluation.privacy"\}') == 1  # fmt: skip
        assert value(r'flaglens_ingest_requests_total\{signal="logs",transport="http",'
                     r'status="400"\}') == 1  # fmt: skip
        assert value("flaglens_writer_queue_rows") == 0
        health = httpx.get(f"{server.http_url}/healthz").json()
        assert {"signal": "logs", "transport": "http", "status": 200, "count": 1} in (
            health["ingest"]["requests"]
        )
        server.stop()  # a graceful stop flushes the last export to the collector
        collector.stop()
    finally:
        server.stop()
        collector.stop()
    con = duckdb.connect(str(tmp_path / "collector.duckdb"), read_only=True)
    rows = con.sql(
        "select metric, attributes->>'$.outcome', max(value) from metric_points "
        "where service_name = 'flaglens' and metric = 'flaglens.ingest.records' group by all"
    ).fetchall()
    assert ("flaglens.ingest.records", "accepted", 4.0) in rows


def test_sdk_environment_variables_export_over_grpc_and_early_refusals_count(tmp_path, monkeypatch):
    """Without --self-otlp-endpoint, the SDK's OTEL_EXPORTER_OTLP_* variables apply; requests
    refused before decoding (415, 413) are counted like the rest."""
    collector = start_inprocess(tmp_path / "collector.duckdb", grpc=True)
    # read from the environment when the server's settings are built, as `flaglens serve` does
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://{collector.grpc_target}")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
    server = start_inprocess(tmp_path / "f.duckdb", max_body_bytes=4000)
    try:
        logs = f"{server.http_url}/v1/logs"
        assert httpx.post(logs, json=otlp_json_logs([decision_attributes()])).status_code == 200
        unsupported = httpx.post(logs, content=b"{}", headers={"content-type": "text/plain"})
        assert unsupported.status_code == 415
        too_large = httpx.post(logs, content=bytes(5000),
                               headers={"content-type": "application/x-protobuf"})  # fmt: skip
        assert too_large.status_code == 413
        text = httpx.get(f"{server.http_url}/metrics").text
        for status in (200, 413, 415):
            labels = f'signal="logs",transport="http",status="{status}"'
            assert f"flaglens_ingest_requests_total{{{labels}}} 1" in text.splitlines()
        server.stop()
        collector.stop()
    finally:
        server.stop()
        collector.stop()
    con = duckdb.connect(str(tmp_path / "collector.duckdb"), read_only=True)
    statuses = con.sql(
        "select distinct attributes->>'$.status' from metric_points "
        "where service_name = 'flaglens' and metric = 'flaglens.ingest.requests'"
    ).fetchall()
    assert sorted(int(s) for (s,) in statuses) == [200, 413, 415]
    transports = con.sql("select distinct transport from ingest_log").fetchall()
    assert transports == [("grpc",)]
