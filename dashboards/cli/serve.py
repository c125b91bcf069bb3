"""`flaglens serve`: the OTLP receivers, with the dashboards and the alert evaluator beside them.

Everything runs in one process because DuckDB lets one process own a database file: the writer
appends, the dashboards and alerts read through their own cursors.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import socket
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import grpc
import uvicorn
from pydantic import ValidationError
from werkzeug.serving import BaseWSGIServer, make_server

from analytics.errors import AnalyticsError
from analytics.queries.windows import parse_duration
from analytics.warehouse.store import DEFAULT_MEMORY_LIMIT
from contracts.errors import ContractError
from dashboards.cli.alerts import add_alert_arguments
from dashboards.cli.analyze import add_analytics_arguments
from ingest.app import create_app
from ingest.auth import TokenFileError
from ingest.service import IngestService
from ingest.settings import DEFAULT_DASHBOARDS_PORT, IngestSettings

log = logging.getLogger("flaglens.serve")

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


def bind_socket(host: str, port: int) -> socket.socket:
    """Bind the listening socket ourselves so that port 0 resolves before we announce it."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def url_of(sock: socket.socket, *, tls: bool = False) -> str:
    host, port = sock.getsockname()[:2]
    scheme = "https" if tls else "http"
    return f"{scheme}://[{host}]:{port}" if ":" in host else f"{scheme}://{host}:{port}"


class ExposureError(Exception):
    """The settings would expose the server in a way it refuses (e.g. no auth beyond loopback)."""


class Announcer:
    """Prints one line per listening endpoint, so scripts and tests can find the ports."""

    def __init__(self, out: Callable[[str], None] | None = None) -> None:
        self._out = out or (lambda line: print(line, flush=True))

    def __call__(self, what: str, url: str) -> None:
        self._out(f"flaglens: {what} listening on {url}")


@dataclass(frozen=True)
class SurfaceOptions:
    """The dashboards and the alert evaluator beside the receivers, and what they read."""

    dashboard_port: int | None  # None: no dashboards
    slo_file: Path
    governance_file: Path
    key_file: Path
    alert_rules: Path | None  # None: no alert evaluation
    alert_webhook: str | None
    alert_interval: timedelta


def surface_options(args: argparse.Namespace, db: Path) -> SurfaceOptions:
    from analytics.governance import DEFAULT_GOVERNANCE_FILE, default_key_file
    from analytics.slo import DEFAULT_SLO_FILE
    from dashboards.alerting.rules import DEFAULT_RULES_FILE

    return SurfaceOptions(
        dashboard_port=None if args.no_dashboards else args.dashboard_port,
        slo_file=args.slos or DEFAULT_SLO_FILE,
        governance_file=args.governance or DEFAULT_GOVERNANCE_FILE,
        key_file=args.keys or default_key_file(db),
        alert_rules=None if args.no_alerts else (args.alert_rules or DEFAULT_RULES_FILE),
        alert_webhook=args.alert_webhook,
        alert_interval=parse_duration(args.alert_interval),
    )


def start_dashboards(
    service: IngestService, host: str, options: SurfaceOptions, otlp_url: str
) -> BaseWSGIServer:
    """Serve the Dash app from a thread of this process, reading the service's store."""
    # fail at start-up, not on the first page view, when a configuration file is broken
    from analytics.governance import load_rules
    from analytics.slo import load_slos
    from dashboards.app import create_dash_app
    from dashboards.pages import DataSource

    load_slos(options.slo_file)
    load_rules(options.governance_file)
    source = DataSource(
        cursor_factory=service.store.cursor,
        slo_file=options.slo_file,
        governance_file=options.governance_file,
        key_file=options.key_file,
        otlp_url=otlp_url,
    )
    app = create_dash_app(source)
    server = make_server(host, options.dashboard_port or 0, app.server, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="dashboards", daemon=True)
    thread.start()
    return server


def start_rounds(service: IngestService, options: SurfaceOptions, dashboards_url: str) -> Any:
    """The periodic rounds: alert rules (checked now, so a broken file stops start-up) and the
    recording of closed change windows and cohort periods that the dashboards read."""
    from dashboards.alerting.runner import PeriodicRounds, alert_config, analytics_from_files

    rules = options.alert_rules
    runner = PeriodicRounds(
        service.store.cursor,
        None if rules is None else alert_config(rules, options.alert_webhook),
        analytics_from_files(options.slo_file, options.governance_file, options.key_file),
        interval=options.alert_interval,
        dashboards_url=dashboards_url,
    )
    runner.start()
    return runner


async def _serve_all(
    server: uvicorn.Server,
    http_sock: socket.socket,
    service: IngestService,
    settings: IngestSettings,
    announce: Announcer,
) -> None:
    """uvicorn and, when configured, the gRPC server, in one event loop."""
    grpc_server = None
    if settings.grpc_port is not None:
        from ingest.grpc_server import create_grpc_server

        credentials = None
        if settings.tls_cert is not None and settings.tls_key is not None:
            credentials = grpc.ssl_server_credentials(
                [(settings.tls_key.read_bytes(), settings.tls_cert.read_bytes())]
            )
        grpc_server, port = create_grpc_server(
            service, f"{settings.host}:{settings.grpc_port}", credentials=credentials
        )
        if port == 0:
            raise OSError(f"cannot listen for OTLP/gRPC on {settings.host}:{settings.grpc_port}")
        await grpc_server.start()
        host = f"[{settings.host}]" if ":" in settings.host else settings.host
        scheme = "https" if credentials is not None else "http"
        announce("OTLP/gRPC", f"{scheme}://{host}:{port}")
    announce("database", str(settings.db))
    try:
        await server.serve(sockets=[http_sock])
    finally:
        if grpc_server is not None:
            await grpc_server.stop(grace=5)


def serve(
    settings: IngestSettings,
    *,
    surfaces: SurfaceOptions | None = None,
    announce: Announcer | None = None,
) -> int:
    """Run the server until interrupted (SIGINT/SIGTERM); drains the writer before exiting."""
    announce = announce or Announcer()
    problem = settings.exposure_problem()
    if problem:
        raise ExposureError(problem)
    service = IngestService(settings)
    http_sock = bind_socket(settings.host, settings.http_port)
    dash_server: BaseWSGIServer | None = None
    rounds: Any = None
    try:
        service.start()
        app = create_app(service)
        tls = settings.tls_cert is not None
        config = uvicorn.Config(
            app,
            log_level="warning",
            access_log=False,
            lifespan="off",
            ssl_certfile=str(settings.tls_cert) if tls else None,
            ssl_keyfile=str(settings.tls_key) if tls else None,
        )
        server = uvicorn.Server(config)
        otlp_url = url_of(http_sock, tls=tls)
        dashboards_url = ""
        if surfaces is not None and surfaces.dashboard_port is not None:
            dash_server = start_dashboards(service, settings.host, surfaces, otlp_url)
            dashboards_url = f"http://{settings.host}:{dash_server.server_port}"
        if surfaces is not None and (surfaces.alert_rules is not None or dashboards_url):
            rounds = start_rounds(service, surfaces, dashboards_url)

        # SIGTERM stops the server gracefully even when it arrives before uvicorn installs its
        # own handler; and since uvicorn re-raises the signal once it has shut down, this
        # handler (not the default, which kills the process) receives it then, so the writer
        # drains and the database closes below.
        def stop(_sig: int, _frame: object) -> None:
            server.should_exit = True

        previous = signal.signal(signal.SIGTERM, stop)
        announce("OTLP/HTTP", otlp_url)
        if dashboards_url:
            announce("dashboards", dashboards_url + "/")
        try:
            asyncio.run(_serve_all(server, http_sock, service, settings, announce))
        finally:
            signal.signal(signal.SIGTERM, previous)
    finally:
        if rounds is not None:
            rounds.stop()
        if dash_server is not None:
            dash_server.shutdown()
        http_sock.close()
        service.close()
    return 0


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
    except (AnalyticsError, ContractError, ExposureError, TokenFileError) as exc:
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
