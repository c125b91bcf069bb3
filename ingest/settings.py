"""Settings of the ingest server, each declared once as a field of :class:`IngestSettings`.

Precedence: a command-line flag, else the ``FLAGLENS_*`` environment variable, else the default
written here (for the self-metrics endpoint, the SDK's ``OTEL_EXPORTER_OTLP_*`` variables come
between flaglens' variable and the default). The environment is read only when the settings
object is built, at the edge (the CLI); everything below receives the settings object.

Each field is declared with :func:`setting`: its default, constraints, a description (the first
sentence is the ``--help`` line; the whole text goes into ``docs/configuration.md``) and the
group it is listed under. The application (``flaglens/``) turns the fields into command-line
flags and the configuration reference; adding a setting is adding a field.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, Field
from pydantic.config import JsonDict
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined
from pydantic_settings import BaseSettings, SettingsConfigDict

from ingest.connections import (
    DEFAULT_BODY_TIMEOUT,
    DEFAULT_GRPC_IDLE_TIMEOUT,
    DEFAULT_HEADER_TIMEOUT,
    DEFAULT_IDLE_TIMEOUT,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_HEADER_BYTES,
    DEFAULT_MAX_HEADERS,
)
from ingest.inflight import DEFAULT_MAX_INFLIGHT_BYTES
from ingest.limits import Limits
from store.connection import DEFAULT_MEMORY_LIMIT
from store.lake import (
    DEFAULT_INLINING_ROW_LIMIT,
    DEFAULT_SNAPSHOT_RETENTION,
    DEFAULT_UPKEEP_INTERVAL,
    LakeOptions,
)
from store.lease import DEFAULT_LEASE_TTL
from store.location import StoreLocation, parse_store
from store.reconcile import DEFAULT_RECONCILE_INTERVAL
from store.writer import (
    DEFAULT_MAX_GROUP_DELAY,
    DEFAULT_MAX_GROUP_ROWS,
    DEFAULT_MAX_GROUP_WAIT,
    DEFAULT_MAX_PENDING_ROWS,
)

ENV_PREFIX = "FLAGLENS_"
DEFAULT_HTTP_PORT = 4318
DEFAULT_GRPC_PORT = 4317
_DEFAULTS = Limits()
_GRPC_MAX_MESSAGE = 2**31 - 1  # gRPC's message size limit is a signed 32-bit int
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
_SHOWN = "flaglens"  # the key of a field's json_schema_extra that holds its SettingShown


@dataclass(frozen=True, slots=True)
class SettingShown:
    """How a setting is listed on the command line and in the configuration reference.

    Attributes:
        group: the heading it is listed under (``--help`` groups, sections of the reference).
        metavar: the placeholder after the flag (default: from the type: N, PATH, ...).
        default: the default as documented, when the value itself would mislead (it depends
            on the machine, or None stands for a built-in choice).
        test_only: a knob for tests and demonstrations, listed apart and marked as such.
    """

    group: str
    metavar: str | None = None
    default: str | None = None
    test_only: bool = False


def setting(
    default: Any = PydanticUndefined,
    *,
    description: str,
    group: str,
    metavar: str | None = None,
    shown_default: str | None = None,
    test_only: bool = False,
    **field: Any,
) -> Any:
    """One setting: a pydantic field (``default``, constraints such as ``ge=0`` in ``field``)
    that also carries how it is shown (:class:`SettingShown`)."""
    entry: JsonDict = {"group": group, "test_only": test_only}
    if metavar is not None:
        entry["metavar"] = metavar
    if shown_default is not None:
        entry["default"] = shown_default
    extra: JsonDict = {_SHOWN: entry}
    return Field(default, description=description, json_schema_extra=extra, **field)


def shown(field: FieldInfo) -> SettingShown | None:
    """How a field declared with :func:`setting` is shown (None: not declared with it)."""
    extra = field.json_schema_extra
    entry = extra.get(_SHOWN) if isinstance(extra, dict) else None
    if not isinstance(entry, dict):
        return None
    metavar, default = entry.get("metavar"), entry.get("default")
    return SettingShown(
        group=str(entry["group"]),
        metavar=metavar if isinstance(metavar, str) else None,
        default=default if isinstance(default, str) else None,
        test_only=entry.get("test_only") is True,
    )


class Settings(BaseSettings):
    """A model of flaglens settings: each field is a ``FLAGLENS_<NAME>`` variable (unknown
    keyword arguments are refused). Models combine by inheritance."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid")


def _default_decode_workers() -> int:
    return min(os.cpu_count() or 1, 4)


_DATABASE = "database"
_RECEIVERS = "receivers"
_ACCESS = "authentication and TLS"
_LIMITS = "request and record limits"
_CONNECTIONS = "connections"
_PROCESSING = "decoding and writing"
_SELF = "self-observability"


_LAKE = "DuckLake (several servers on one store)"


class StoreSettings(Settings):
    """Which store: a DuckDB file, or a DuckLake (every verb that opens a store)."""

    db: Path = setting(
        Path("flaglens.duckdb"),
        description="The DuckDB file the server owns; created and migrated on start.",
        group=_DATABASE,
    )
    store: str | None = setting(
        None,
        description="A store URL, instead of --db: a DuckDB file, or "
        "ducklake:postgres://USER@HOST:PORT/DBNAME for a DuckLake that several servers and "
        "readers share, its catalog in that PostgreSQL database (with --data-path). A "
        "metadata_schema=NAME query parameter keeps the catalog in that schema; other "
        "parameters go to libpq (sslmode=require, ...). See docs/deployment.md.",
        group=_DATABASE,
        metavar="URL",
        shown_default="none: the DuckDB file --db",
    )
    data_path: str | None = setting(
        None,
        description="Where a DuckLake's Parquet files are: a directory every server and reader "
        "reaches (shared storage), or an object store URL. Required with a ducklake: --store.",
        group=_DATABASE,
        metavar="DIR",
    )

    @property
    def store_location(self) -> StoreLocation:
        """The store these settings name: ``store`` if given, else the DuckDB file ``db``.

        Raises:
            StoreUrlError: ``store`` names no store, or a lake lacks its data path.
        """
        return parse_store(self.store or self.db, data_path=self.data_path)

    @property
    def db_beside(self) -> Path | None:
        """The DuckDB file, where files beside it (keys.toml) are looked for; None on a lake."""
        location = self.store_location
        return None if location.is_lake else Path(location.path)


class IngestSettings(StoreSettings):
    """Everything the ingest server (receivers, decoding, writer) can be told."""

    lease_ttl: float = setting(
        DEFAULT_LEASE_TTL,
        description="Seconds the rounds lease of a lake lasts unrenewed. Of the processes "
        "sharing a lake, the one holding the lease runs the periodic round and the lake's "
        "upkeep; when it dies, another takes over after at most this long.",
        group=_LAKE,
        metavar="SECONDS",
        gt=1,
    )
    lake_inlining_row_limit: int = setting(
        DEFAULT_INLINING_ROW_LIMIT,
        description="Commits of fewer rows are kept in the lake's catalog instead of a Parquet "
        "file each (DuckLake's data inlining; 0: never); upkeep flushes them to Parquet.",
        group=_LAKE,
        ge=0,
    )
    lake_upkeep_interval: float = setting(
        DEFAULT_UPKEEP_INTERVAL,
        description="Seconds between rounds of lake upkeep by the lease holder: inlined rows "
        "flushed to Parquet, small files merged, snapshots past the retention expired and "
        "the files only they referenced deleted.",
        group=_LAKE,
        metavar="SECONDS",
        gt=0,
    )
    lake_snapshot_retention: float = setting(
        DEFAULT_SNAPSHOT_RETENTION,
        description="Seconds a lake keeps a snapshot (time travel, a long query's view, a "
        "backup in progress) before upkeep expires it.",
        group=_LAKE,
        metavar="SECONDS",
        ge=0,
    )
    lake_reconcile_interval: float = setting(
        DEFAULT_RECONCILE_INTERVAL,
        description="Seconds between the lease holder's removals of duplicates that two servers "
        "committed at the same moment: the longest such a duplicate stays visible.",
        group=_LAKE,
        metavar="SECONDS",
        gt=0,
    )
    memory_limit: str = setting(
        DEFAULT_MEMORY_LIMIT,
        description="DuckDB's memory limit in the serving process (writer, dashboards, periodic "
        "round), as a size such as 512MB or 2GiB. Beyond it DuckDB evicts cached blocks and "
        "spills to disk: a smaller limit keeps the server's memory nearer flat under load, at "
        "the cost of spilling big dashboard queries.",
        group=_DATABASE,
        metavar="SIZE",
        pattern=r"^\d+(\.\d+)?\s*([KMGT]i?B|B)$",
        examples=["512MB"],
    )
    duckdb_threads: int | None = setting(
        None,
        description="DuckDB's threads in the serving process, for the dashboards' queries and "
        "the periodic round. While the writer has requests to commit, DuckDB runs on one "
        "thread whatever this says (on a DuckDB file; a lake keeps this count). 1 suits an "
        "ingest-only server: it leaves more CPU to ingestion and makes big dashboard queries "
        "about twice as slow.",
        group=_DATABASE,
        shown_default="one per core",
        ge=1,
        le=256,
    )
    host: str = setting(
        "127.0.0.1",
        description="The address every listener binds to. Beyond loopback the server needs a "
        "token file (--auth-file) or --insecure-no-auth.",
        group=_RECEIVERS,
        metavar="ADDR",
    )
    http_port: int = setting(
        DEFAULT_HTTP_PORT,
        description="The OTLP/HTTP port (/v1/logs, /v1/traces, /v1/metrics); 0 picks a free "
        "one, announced on start.",
        group=_RECEIVERS,
        ge=0,
        le=65535,
    )
    grpc_port: int = setting(
        DEFAULT_GRPC_PORT,
        description="The OTLP/gRPC port (logs, trace and metrics services); 0 picks a free one, "
        "announced on start.",
        group=_RECEIVERS,
        ge=0,
        le=65535,
    )
    no_grpc: bool = setting(
        False, description="Do not serve OTLP/gRPC, only OTLP/HTTP.", group=_RECEIVERS
    )
    contracts_dir: Path | None = setting(
        None,
        description="A directory of contract files to check records against, instead of the "
        "contracts shipped with flaglens.",
        group=_RECEIVERS,
        metavar="DIR",
        shown_default="the built-in contracts",
    )
    uncontracted: Literal["ignore", "keep", "reject"] = setting(
        "ignore",
        description="What becomes of log records no contract claims (no event name, or one no "
        "contract governs, such as an application's plain logs): 'ignore' accepts and counts "
        "them per service (ingest_log.uncontracted, /metrics) without storing them; 'keep' also "
        "stores them in the uncontracted table; 'reject' quarantines them and reports them "
        "rejected. A record that claims a governed event and breaks its contract is rejected in "
        "every mode.",
        group=_RECEIVERS,
        metavar="MODE",
    )
    auth_file: Path | None = setting(
        None,
        description="The token file: hashed bearer tokens, each bound to the services it may "
        "write for (`flaglens auth token` makes entries). Without it every request is accepted, "
        "which only loopback allows.",
        group=_ACCESS,
        shown_default="none (no authentication)",
    )
    insecure_no_auth: bool = setting(
        False,
        description="Allow a non-loopback --host without a token file, e.g. behind a proxy "
        "that authenticates.",
        group=_ACCESS,
    )
    tls_cert: Path | None = setting(
        None,
        description="A PEM certificate: serve HTTPS and gRPC over TLS with it (give --tls-key "
        "too).",
        group=_ACCESS,
        shown_default="none (plain text)",
    )
    tls_key: Path | None = setting(
        None, description="The PEM private key of --tls-cert.", group=_ACCESS
    )
    max_body_bytes: int = setting(
        _DEFAULTS.max_body_bytes,
        description="The largest request body accepted, as sent (compressed), in bytes; larger "
        "ones are answered 413 (gRPC: RESOURCE_EXHAUSTED), an HTTP one by its Content-Length "
        "before it is read.",
        group=_LIMITS,
        gt=0,
    )
    max_decompressed_bytes: int = setting(
        _DEFAULTS.max_decompressed_bytes,
        description="The largest request body once gzip-inflated, in bytes, counted over every "
        "gzip member (a gzip bomb stops there); over gRPC too, where flaglens inflates the "
        "messages.",
        group=_LIMITS,
        gt=0,
        le=_GRPC_MAX_MESSAGE,
    )
    max_records_per_request: int = setting(
        _DEFAULTS.max_records_per_request,
        description="The most log records, spans or data points in one request; more are "
        "answered 413.",
        group=_LIMITS,
        gt=0,
    )
    max_attributes_per_record: int = setting(
        _DEFAULTS.max_attributes_per_record,
        description="The most attributes (resource and record) on one record; a record with "
        "more is quarantined, the rest of the request is stored.",
        group=_LIMITS,
        gt=0,
    )
    max_attribute_value_bytes: int = setting(
        _DEFAULTS.max_attribute_value_bytes,
        description="The longest string attribute value, in bytes of UTF-8; a record with a "
        "longer one is quarantined.",
        group=_LIMITS,
        gt=0,
    )
    max_attribute_key_bytes: int = setting(
        _DEFAULTS.max_attribute_key_bytes,
        description="The longest attribute key (resource, record, or inside a kvlist value), in "
        "bytes of UTF-8; a record with a longer one is quarantined.",
        group=_LIMITS,
        gt=0,
    )
    max_value_depth: int = setting(
        _DEFAULTS.max_value_depth,
        description="The deepest nesting of array and kvlist attribute values (a flat value is "
        "depth 1); a record nested deeper is quarantined, also when it is nested deeper than "
        "the protobuf and JSON parsers read. At most 32.",
        group=_LIMITS,
        gt=0,
        le=32,
    )
    header_timeout: float = setting(
        DEFAULT_HEADER_TIMEOUT,
        description="Seconds a client has to send a request's line and headers, from "
        "connecting or from the request's first byte; then 408 and close (a connection that "
        "sent nothing is just closed). Over gRPC, the HTTP/2 handshake's timeout.",
        group=_CONNECTIONS,
        metavar="SECONDS",
        gt=0,
    )
    body_timeout: float = setting(
        DEFAULT_BODY_TIMEOUT,
        description="Seconds a client has to send a request's whole body once its headers are "
        "read; then 408 and close.",
        group=_CONNECTIONS,
        metavar="SECONDS",
        gt=0,
    )
    idle_timeout: float = setting(
        DEFAULT_IDLE_TIMEOUT,
        description="Seconds an HTTP keep-alive connection may wait for its next request.",
        group=_CONNECTIONS,
        metavar="SECONDS",
        gt=0,
    )
    grpc_idle_timeout: float = setting(
        DEFAULT_GRPC_IDLE_TIMEOUT,
        description="Seconds a gRPC connection without calls stays open; then GOAWAY, and the "
        "client reconnects on its next export.",
        group=_CONNECTIONS,
        metavar="SECONDS",
        gt=0,
    )
    max_header_bytes: int = setting(
        DEFAULT_MAX_HEADER_BYTES,
        description="The largest request line and headers of an HTTP request, in bytes; past "
        "it 431 and close, before more of the head is held. Over gRPC, the metadata limit.",
        group=_CONNECTIONS,
        ge=1024,
    )
    max_headers: int = setting(
        DEFAULT_MAX_HEADERS,
        description="The most header fields in one HTTP request; past it 431 and close.",
        group=_CONNECTIONS,
        gt=0,
    )
    max_connections: int = setting(
        DEFAULT_MAX_CONNECTIONS,
        description="The most open connections per listener (OTLP/HTTP, OTLP/gRPC, "
        "dashboards). At the cap a new HTTP connection closes the one idle longest, or is "
        "answered 503 when none is idle; gRPC refuses it. Lowered on start to fit the file "
        "descriptor limit.",
        group=_CONNECTIONS,
        gt=0,
    )
    decode_workers: int = setting(
        default_factory=_default_decode_workers,
        description="Processes that decode requests and check them against the contracts; 0 "
        "does it in a thread of the server (the server's one GIL then limits throughput).",
        group=_PROCESSING,
        shown_default="cores, at most 4",
        ge=0,
        le=64,
    )
    max_inflight_bytes: int = setting(
        DEFAULT_MAX_INFLIGHT_BYTES,
        description="Bytes the server may hold for requests not yet answered (bodies received, "
        "being inflated, queued for and inside the decode workers, rows queued for the writer). "
        "Past it a new request is answered 503 / UNAVAILABLE with a retry delay before its body "
        "is read: the server's memory levels off under any number of connections.",
        group=_PROCESSING,
        ge=1 << 20,
    )
    writer_max_pending_rows: int = setting(
        DEFAULT_MAX_PENDING_ROWS,
        description="Rows the writer may hold (queued or being committed) before exporters are "
        "told to retry (503 / UNAVAILABLE); about 1 KB each. It bounds the server's memory "
        "under load.",
        group=_PROCESSING,
        gt=0,
    )
    writer_max_group_rows: int = setting(
        DEFAULT_MAX_GROUP_ROWS,
        description="The most rows the writer commits in one transaction; the requests beyond "
        "start the next group.",
        group=_PROCESSING,
        gt=0,
    )
    writer_max_group_delay: float = setting(
        DEFAULT_MAX_GROUP_DELAY,
        description="The most seconds the writer gathers a group that would not fill a row "
        "group of the store. Light traffic gains nothing from waiting longer.",
        group=_PROCESSING,
        metavar="SECONDS",
        ge=0,
    )
    writer_max_group_wait: float = setting(
        DEFAULT_MAX_GROUP_WAIT,
        description="The most seconds the writer waits for requests still being decoded when "
        "they would fill a row group (written to the file once rather than through the "
        "write-ahead log).",
        group=_PROCESSING,
        metavar="SECONDS",
        ge=0,
    )
    self_otlp_endpoint: str | None = setting(
        None,
        # the OpenTelemetry SDK's own variables apply when flaglens' are not set
        validation_alias=AliasChoices(
            "self_otlp_endpoint", "FLAGLENS_SELF_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"
        ),
        description="An OTLP base URL to export flaglens' own metrics to (a collector, or "
        "another flaglens).",
        group=_SELF,
        metavar="URL",
        shown_default="none (no export)",
    )
    self_otlp_protocol: Literal["grpc", "http/protobuf", "http/json"] = setting(
        "http/protobuf",
        validation_alias=AliasChoices(
            "self_otlp_protocol",
            "FLAGLENS_SELF_OTLP_PROTOCOL",
            "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL",
            "OTEL_EXPORTER_OTLP_PROTOCOL",
        ),
        description="How the self-metrics are exported: grpc over OTLP/gRPC, the others over "
        "OTLP/HTTP with protobuf bodies.",
        group=_SELF,
        metavar="PROTOCOL",
    )
    writer_commit_delay: float = setting(
        0.0,
        description="Seconds the writer sleeps before each commit. For tests and "
        "demonstrations of backpressure only: it makes the writer slow on purpose.",
        group=_PROCESSING,
        metavar="SECONDS",
        test_only=True,
        ge=0,
    )

    def exposure_problem(self) -> str | None:
        """Why these settings must not be served as they are (None when they may)."""
        if (self.tls_cert is None) != (self.tls_key is None):
            return "give both --tls-cert and --tls-key, or neither"
        loopback = self.host in LOOPBACK_HOSTS
        if not loopback and self.auth_file is None and not self.insecure_no_auth:
            return (
                f"binding to {self.host} exposes the receivers beyond this machine: give a token "
                "file with --auth-file (see `flaglens auth token`), or --insecure-no-auth"
            )
        return None

    @property
    def lake_options(self) -> LakeOptions:
        return LakeOptions(
            inlining_row_limit=self.lake_inlining_row_limit,
            snapshot_retention=self.lake_snapshot_retention,
            upkeep_interval=self.lake_upkeep_interval,
        )

    @property
    def limits(self) -> Limits:
        """The request and record limits these settings describe (a field per limit)."""
        return Limits(**{f.name: getattr(self, f.name) for f in dataclasses.fields(Limits)})
