"""`flaglens serve`: the OTLP receivers, with the dashboards and the alert evaluator beside them.

Everything runs in one process because DuckDB lets one process own a database file: the writer
appends, the dashboards and alerts read through their own cursors.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import uvicorn

from ingest.app import create_app
from ingest.service import IngestService
from ingest.settings import IngestSettings

log = logging.getLogger("flaglens.serve")

# flags → IngestSettings fields; unset flags fall back to FLAGLENS_* variables, then defaults
_FLAG_FIELDS = (
    "db",
    "host",
    "http_port",
    "contracts_dir",
    "max_body_bytes",
    "writer_max_pending_rows",
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
    """The flags `serve` and `demo` share."""
    parser.add_argument("--db", type=Path, help="DuckDB file (default ./flaglens.duckdb)")
    parser.add_argument("--host", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--http-port", type=int, help="OTLP/HTTP port (default 4318; 0 = any free)")
    parser.add_argument("--contracts-dir", type=Path, help="contract files (default: built-in)")
    parser.add_argument("--max-body-bytes", type=int, help="largest request body, as sent")
    parser.add_argument(
        "--writer-max-pending-rows",
        type=int,
        help="rows queued for the writer before exporters are told to retry (503)",
    )


def settings_from_args(args: argparse.Namespace) -> IngestSettings:
    """Flags override FLAGLENS_* environment variables, which override the defaults."""
    overrides = {
        name: getattr(args, name) for name in _FLAG_FIELDS if getattr(args, name, None) is not None
    }
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


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class Announcer:
    """Prints one line per listening endpoint, so scripts and tests can find the ports."""

    def __init__(self, out: Callable[[str], None] | None = None) -> None:
        self._out = out or (lambda line: print(line, flush=True))

    def __call__(self, what: str, url: str) -> None:
        self._out(f"flaglens: {what} listening on {url}")


def serve(settings: IngestSettings, *, announce: Announcer | None = None) -> int:
    """Run the server until interrupted (SIGINT/SIGTERM); drains the writer before exiting."""
    announce = announce or Announcer()
    service = IngestService(settings)
    http_sock = bind_socket(settings.host, settings.http_port)
    try:
        service.start()
        app = create_app(service)
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
        server = uvicorn.Server(config)
        announce("OTLP/HTTP", url_of(http_sock))
        announce("database", str(settings.db))
        asyncio.run(server.serve(sockets=[http_sock]))
    finally:
        http_sock.close()
        service.close()
    return 0


def _run(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    settings = settings_from_args(args)
    try:
        return serve(settings)
    except KeyboardInterrupt:
        return 0
    except OSError as exc:
        print(
            f"flaglens serve: cannot listen on {settings.host}:{settings.http_port}: {exc}",
            file=sys.stderr,
        )
        return 2
