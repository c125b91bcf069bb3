"""Limits and ports are checked before the server touches anything, with errors that name the
flag and the environment variable."""

from __future__ import annotations

import duckdb
import pytest

from flaglens.cli.main import main
from ingest.service import IngestService
from ingest.settings import IngestSettings


@pytest.mark.parametrize(
    ("flags", "env", "expected"),
    [
        (["--max-body-bytes", "-1"], {}, "--max-body-bytes / FLAGLENS_MAX_BODY_BYTES: Input "
         "should be greater than 0 (got -1)"),
        (["--http-port", "70000"], {}, "--http-port / FLAGLENS_HTTP_PORT: Input should be less "
         "than or equal to 65535"),
        ([], {"FLAGLENS_MAX_DECOMPRESSED_BYTES": "abc"},
         "--max-decompressed-bytes / FLAGLENS_MAX_DECOMPRESSED_BYTES: Input should be a valid "
         "integer"),
        ([], {"FLAGLENS_MAX_DECOMPRESSED_BYTES": str(2**31)}, "less than or equal to 2147483647"),
        (["--max-value-depth", "0"], {}, "--max-value-depth / FLAGLENS_MAX_VALUE_DEPTH"),
        (["--memory-limit", "1GB'; CHECKPOINT; --"], {},
         "--memory-limit / FLAGLENS_MEMORY_LIMIT: String should match pattern"),
        (["--decode-workers", "-1"], {}, "--decode-workers / FLAGLENS_DECODE_WORKERS"),
        (["--duckdb-threads", "0"], {}, "--duckdb-threads / FLAGLENS_DUCKDB_THREADS"),
        (["--http-port", "abc"], {}, "--http-port / FLAGLENS_HTTP_PORT: Input should be a valid "
         "integer"),
        ([], {"FLAGLENS_NO_GRPC": "maybe"}, "--no-grpc / FLAGLENS_NO_GRPC: Input should be a "
         "valid boolean"),
        (["--alert-interval", "soon"], {}, "--alert-interval / FLAGLENS_ALERT_INTERVAL: Value "
         "error, duration 'soon' is not of the form"),
        ([], {"OTEL_EXPORTER_OTLP_PROTOCOL": "pigeon"}, "--self-otlp-protocol / "
         "FLAGLENS_SELF_OTLP_PROTOCOL / OTEL_EXPORTER_OTLP_METRICS_PROTOCOL / "
         "OTEL_EXPORTER_OTLP_PROTOCOL: Input should be 'grpc', 'http/protobuf' or 'http/json' "
         "(got pigeon)"),
    ],
    ids=["negative body limit", "port out of range", "not a number", "past gRPC's limit",
         "zero depth", "memory limit not a size", "negative workers", "no DuckDB thread",
         "port not a number", "switch not a boolean", "interval not a duration",
         "unknown OTLP protocol"],
)  # fmt: skip
def test_bad_setting_is_refused_with_its_flag_and_variable(
    tmp_path, monkeypatch, capsys, flags, env, expected
):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    db = tmp_path / "f.duckdb"
    assert main(["serve", "--db", str(db), "--no-dashboards", "--no-alerts", *flags]) == 2
    assert expected in capsys.readouterr().err
    assert not db.exists()


def test_every_bad_setting_has_its_line(tmp_path, monkeypatch, capsys):
    """Two bad settings, one from a flag and one from a variable: two lines, exit code 2."""
    monkeypatch.setenv("FLAGLENS_MAX_VALUE_DEPTH", "0")
    assert main(["serve", "--db", str(tmp_path / "f.duckdb"), "--http-port", "-5"]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "flaglens serve: invalid settings:"
    assert [line.split(":")[0].strip() for line in lines[1:]] == [
        "--http-port / FLAGLENS_HTTP_PORT",
        "--max-value-depth / FLAGLENS_MAX_VALUE_DEPTH",
    ]


def test_memory_limit_reaches_duckdb(tmp_path):
    service = IngestService(
        IngestSettings(db=tmp_path / "f.duckdb", memory_limit="256MB", decode_workers=0)
    )
    try:
        (limit,) = service.store.cursor().execute(
            "SELECT current_setting('memory_limit')"
        ).fetchone() or ("",)
    finally:
        service.close()
    assert limit in ("244.1 MiB", "256.0 MB"), limit


@pytest.mark.parametrize(("threads", "expected"), [(None, "duckdb's own"), (1, 1)])
def test_duckdb_threads_reach_duckdb(tmp_path, threads, expected):
    if expected == "duckdb's own":
        expected = duckdb.connect().execute("SELECT current_setting('threads')").fetchone()[0]
    given = {} if threads is None else {"duckdb_threads": threads}
    service = IngestService(IngestSettings(db=tmp_path / "f.duckdb", decode_workers=0, **given))
    try:
        (current,) = service.store.cursor().execute(
            "SELECT current_setting('threads')"
        ).fetchone() or (0,)
    finally:
        service.close()
    assert current == expected
