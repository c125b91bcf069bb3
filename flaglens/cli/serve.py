"""`flaglens serve`: its flags, and the server they describe (see :mod:`flaglens.server`)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from analytics.errors import AnalyticsError
from analytics.windows import parse_duration
from contracts.errors import ContractError
from flaglens.cli.alerts import add_alert_arguments
from flaglens.cli.analyze import add_analytics_arguments, analytics_config
from flaglens.server import ExposureError, SurfaceOptions, serve
from ingest.auth import TokenFileError
from ingest.settings import DEFAULT_DASHBOARDS_PORT, IngestSettings
from store.connection import DEFAULT_MEMORY_LIMIT
from store.errors import StoreError

# flags → IngestSettings fields; unset flags fall back to FLAGLENS_* variables, then defaults
_FLAG_FIELDS = (
    "db",
    "host",
    "http_port",
    "grpc_port",
    "contracts_dir",
    "auth_file",
    "self_otlp_endpoint",
    "tls_cert",
    "tls_key",
    "max_body_bytes",
    "max_decompressed_bytes",
    "max_records_per_request",
    "max_attributes_per_record",
    "max_attribute_value_bytes",
    "max_value_depth",
    "writer_max_pending_rows",
    "decode_workers",
    "memory_limit",
    "duckdb_threads",
)


def register(subparsers: Any) -> None:
    """Add `flaglens serve`."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "serve",
        help="run the OTLP receivers (and dashboards) on a DuckDB file",
        description="Receive OTLP exports, check them against the telemetry contracts and store "
        "them in DuckDB. Binds to 127.0.0.1 unless --host says otherwise.",
    )
    add_server_arguments(parser)
    parser.set_defaults(handler=_run)


def add_server_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of `serve`."""
    parser.add_argument("--db", type=Path, help="DuckDB file (default ./flaglens.duckdb)")
    parser.add_argument(
        "--dashboard-port",
        type=int,
        default=DEFAULT_DASHBOARDS_PORT,
        help=f"dashboards port (default {DEFAULT_DASHBOARDS_PORT}; 0 = any)",
    )
    parser.add_argument("--no-dashboards", action="store_true", help="do not serve dashboards")
    add_analytics_arguments(parser)
    add_alert_arguments(parser)
    parser.add_argument(
        "--alert-interval", default="30s", help="evaluate alert rules this often (default 30s)"
    )
    parser.add_argument("--no-alerts", action="store_true", help="do not evaluate alert rules")
    parser.add_argument("--host", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--http-port", type=int, help="OTLP/HTTP port (default 4318; 0 = any free)")
    parser.add_argument("--grpc-port", type=int, help="OTLP/gRPC port (default 4317; 0 = any free)")
    parser.add_argument("--no-grpc", action="store_true", help="do not serve OTLP/gRPC")
    parser.add_argument(
        "--auth-file", type=Path, help="bearer-token file (required beyond loopback)"
    )
    parser.add_argument(
        "--insecure-no-auth", action="store_true", help="allow a non-loopback --host without tokens"
    )
    parser.add_argument(
        "--self-otlp-endpoint", help="export flaglens' own metrics to this OTLP/HTTP base URL"
    )
    parser.add_argument("--tls-cert", type=Path, help="PEM certificate: HTTPS and gRPC over TLS")
    parser.add_argument("--tls-key", type=Path, help="PEM private key for --tls-cert")
    parser.add_argument("--contracts-dir", type=Path, help="contract files (default: built-in)")
    parser.add_argument("--max-body-bytes", type=int, help="largest request body, as sent")
    parser.add_argument(
        "--max-decompressed-bytes", type=int, help="largest body after gzip inflation"
    )
    parser.add_argument(
        "--max-records-per-request", type=int, help="most records, spans or points per request"
    )
    parser.add_argument(
        "--max-attributes-per-record", type=int, help="most attributes on one record"
    )
    parser.add_argument(
        "--max-attribute-value-bytes", type=int, help="longest string attribute value, in bytes"
    )
    parser.add_argument(
        "--max-value-depth", type=int, help="deepest nesting of array/kvlist attribute values"
    )
    parser.add_argument(
        "--memory-limit",
        help=f"DuckDB's memory limit for the server (default {DEFAULT_MEMORY_LIMIT}), e.g. 512MB",
    )
    parser.add_argument(
        "--duckdb-threads",
        type=int,
        help="DuckDB's threads in the server (default: one per core; 1 favours ingestion over "
        "big dashboard queries)",
    )
    parser.add_argument(
        "--decode-workers",
        type=int,
        help="processes that decode and check requests (default: cores, at most 4; 0 = none)",
    )
    parser.add_argument(
        "--writer-max-pending-rows",
        type=int,
        help="rows queued for the writer before exporters are told to retry (503)",
    )


def settings_from_args(args: argparse.Namespace) -> IngestSettings:
    """Flags override FLAGLENS_* environment variables, which override the defaults."""
    overrides: dict[str, Any] = {
        name: getattr(args, name) for name in _FLAG_FIELDS if getattr(args, name, None) is not None
    }
    if getattr(args, "no_grpc", False):
        overrides["grpc_port"] = None
    if getattr(args, "insecure_no_auth", False):
        overrides["insecure_no_auth"] = True
    return IngestSettings(**overrides)


def surface_options(args: argparse.Namespace, db: Path) -> SurfaceOptions:
    from alerts.rules import DEFAULT_RULES_FILE

    return SurfaceOptions(
        dashboard_port=None if args.no_dashboards else args.dashboard_port,
        analytics=analytics_config(args, db),
        alert_rules=None if args.no_alerts else (args.alert_rules or DEFAULT_RULES_FILE),
        alert_webhook=args.alert_webhook,
        alert_interval=parse_duration(args.alert_interval),
    )


def settings_problems(exc: ValidationError) -> str:
    """One line per bad setting, naming the flag and the variable it can come from."""
    lines = []
    for error in exc.errors():
        name = str(error["loc"][0]) if error["loc"] else "?"
        name = name.lower().removeprefix("flaglens_")
        where = f"--{name.replace('_', '-')} / FLAGLENS_{name.upper()}"
        lines.append(f"{where}: {error['msg']} (got {error.get('input')!r})")
    return "invalid settings:\n  " + "\n  ".join(lines)


def _run(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        settings = settings_from_args(args)
    except ValidationError as exc:
        print(f"flaglens serve: {settings_problems(exc)}", file=sys.stderr)
        return 2
    try:
        return serve(settings, surfaces=surface_options(args, settings.db))
    except (AnalyticsError, ContractError, StoreError, ExposureError, TokenFileError) as exc:
        print(f"flaglens serve: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0
    except OSError as exc:
        print(
            f"flaglens serve: cannot listen on {settings.host}:{settings.http_port}: {exc}",
            file=sys.stderr,
        )
        return 2
