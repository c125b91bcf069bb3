"""Settings of the ingest server.

Precedence: a command-line flag, else the ``FLAGLENS_*`` environment variable, else the default
written here (for the self-metrics endpoint, the SDK's ``OTEL_EXPORTER_OTLP_ENDPOINT`` and
``OTEL_EXPORTER_OTLP_PROTOCOL`` come before the default). The environment is read only when
``IngestSettings()`` is built, at the edge (the CLI); everything below receives the settings
object.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from ingest.limits import Limits
from store.connection import DEFAULT_MEMORY_LIMIT
from store.writer import (
    DEFAULT_MAX_GROUP_DELAY,
    DEFAULT_MAX_GROUP_ROWS,
    DEFAULT_MAX_GROUP_WAIT,
    DEFAULT_MAX_PENDING_ROWS,
)

DEFAULT_HTTP_PORT = 4318
DEFAULT_GRPC_PORT = 4317
DEFAULT_DASHBOARDS_PORT = 8050
_DEFAULTS = Limits()
_GRPC_MAX_MESSAGE = 2**31 - 1  # gRPC's message size limit is a signed 32-bit int
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


class IngestSettings(BaseSettings):
    """Everything `flaglens serve` can be told; each field is documented in the README."""

    model_config = SettingsConfigDict(env_prefix="FLAGLENS_", extra="forbid")

    db: Path = Field(Path("flaglens.duckdb"), description="DuckDB file the server owns.")
    host: str = Field("127.0.0.1", description="Address the receivers and dashboards bind to.")
    http_port: int = Field(
        DEFAULT_HTTP_PORT, description="OTLP/HTTP port (0 picks a free one).", ge=0, le=65535
    )
    grpc_port: int | None = Field(
        DEFAULT_GRPC_PORT,
        description="OTLP/gRPC port (0 picks a free one; None: no gRPC).",
        ge=0,
        le=65535,
    )
    contracts_dir: Path | None = Field(
        None,
        description="Directory of contract files; default: the contracts shipped with flaglens.",
    )
    max_body_bytes: int = Field(
        _DEFAULTS.max_body_bytes,
        description="Largest request body accepted, as sent (compressed).",
        gt=0,
    )
    max_decompressed_bytes: int = Field(
        _DEFAULTS.max_decompressed_bytes,
        description="Largest request body after gzip inflation.",
        gt=0,
        le=_GRPC_MAX_MESSAGE,
    )
    max_records_per_request: int = Field(
        _DEFAULTS.max_records_per_request,
        description="Most log records, spans or points per request.",
        gt=0,
    )
    max_attributes_per_record: int = Field(
        _DEFAULTS.max_attributes_per_record, description="Most attributes on one record.", gt=0
    )
    max_attribute_value_bytes: int = Field(
        _DEFAULTS.max_attribute_value_bytes,
        description="Longest attribute string value, in bytes.",
        gt=0,
    )
    max_value_depth: int = Field(
        _DEFAULTS.max_value_depth,
        description="Deepest nesting of array/kvlist attribute values.",
        gt=0,
    )
    memory_limit: str = Field(
        DEFAULT_MEMORY_LIMIT,
        description="DuckDB's memory limit for the serving process (writer, dashboards, rounds); "
        "beyond it DuckDB evicts cached blocks and spills to disk.",
        pattern=r"^\d+(\.\d+)?\s*([KMGT]i?B|B)$",
    )
    duckdb_threads: int | None = Field(
        None,
        description="DuckDB's threads in the serving process (writer, dashboards, rounds); "
        "None: DuckDB's default, one per core. On 2 cores, 1 thread took a third off the server's "
        "CPU per ingested record (13-19% more records/s) and made the dashboards' queries on "
        "10M decisions 1.7-2.2x slower.",
        ge=1,
        le=256,
    )
    decode_workers: int = Field(
        default_factory=lambda: min(os.cpu_count() or 1, 4),
        description="Processes that decode and check requests (0: a thread of the server).",
        ge=0,
        le=64,
    )
    writer_max_pending_rows: int = Field(
        DEFAULT_MAX_PENDING_ROWS,
        description="Rows queued for the writer before exporters are told to retry (503).",
        gt=0,
    )
    writer_max_group_rows: int = Field(
        DEFAULT_MAX_GROUP_ROWS, description="Most rows the writer commits in one transaction.", gt=0
    )
    writer_max_group_delay: float = Field(
        DEFAULT_MAX_GROUP_DELAY,
        description="Most seconds the writer gathers a group that would not fill a row group.",
        ge=0,
    )
    writer_max_group_wait: float = Field(
        DEFAULT_MAX_GROUP_WAIT,
        description="Most seconds it waits for requests that would fill a row group.",
        ge=0,
    )
    auth_file: Path | None = Field(
        None, description="Token file (hashed bearer tokens bound to services); None: no auth."
    )
    insecure_no_auth: bool = Field(
        False, description="Allow binding beyond loopback without a token file."
    )
    tls_cert: Path | None = Field(None, description="PEM certificate for HTTPS and gRPC TLS.")
    tls_key: Path | None = Field(None, description="PEM private key of the certificate.")
    self_otlp_endpoint: str | None = Field(
        None,
        # the OpenTelemetry SDK's own variables apply when flaglens' are not set
        validation_alias=AliasChoices(
            "self_otlp_endpoint", "FLAGLENS_SELF_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"
        ),
        description="OTLP base URL to export flaglens' own metrics to (None: no export).",
    )
    self_otlp_protocol: str = Field(
        "http/protobuf",
        validation_alias=AliasChoices(
            "self_otlp_protocol",
            "FLAGLENS_SELF_OTLP_PROTOCOL",
            "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL",
            "OTEL_EXPORTER_OTLP_PROTOCOL",
        ),
        description="'grpc' exports the self-metrics over OTLP/gRPC; anything else, OTLP/HTTP.",
    )
    writer_commit_delay: float = Field(
        0.0,
        description="Seconds the writer sleeps before each commit. For demonstrating and testing "
        "backpressure only: it makes the writer slow on purpose.",
        ge=0,
    )

    def exposure_problem(self) -> str | None:
        """Why these settings must not be served as they are (None when they may)."""
        if (self.tls_cert is None) != (self.tls_key is None):
            return "give both --tls-cert and --tls-key, or neither"
        loopback = self.host in ("127.0.0.1", "::1", "localhost")
        if not loopback and self.auth_file is None and not self.insecure_no_auth:
            return (
                f"binding to {self.host} exposes the receivers beyond this machine: give a token "
                "file with --auth-file (see `flaglens auth token`), or --insecure-no-auth"
            )
        return None

    @property
    def limits(self) -> Limits:
        """The request and record limits these settings describe."""
        return Limits(
            max_body_bytes=self.max_body_bytes,
            max_decompressed_bytes=self.max_decompressed_bytes,
            max_records_per_request=self.max_records_per_request,
            max_attributes_per_record=self.max_attributes_per_record,
            max_attribute_value_bytes=self.max_attribute_value_bytes,
            max_value_depth=self.max_value_depth,
        )
