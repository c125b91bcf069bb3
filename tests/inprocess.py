"""`flaglens serve` inside the test process: the server's own composition on a thread.

:class:`flaglens.server.Server` is what `flaglens serve` runs; here it runs on a thread of the
test process, on free loopback ports, with the decoding on a thread too (``decode_workers=0``).
The receivers listen on real sockets, so raw HTTP, gRPC channels and stock exporters all reach
it, and the test reads the store once the server has stopped (DuckDB lets one process own the
file; the server is in this one, so ``server.service.store`` is readable while it runs).

Real processes (`tests/servers.py`) are for what needs one: kill -9, SIGTERM, decode workers,
stock exporters against a real `flaglens serve`, the browser.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flaglens.server import Announcer, Server
from flaglens.settings import ServeSettings
from ingest.service import IngestService


class _Urls(Announcer):
    """Keeps what the server announces, and wakes whoever waits for it."""

    def __init__(self) -> None:
        self.urls: dict[str, str] = {}
        self.changed = threading.Condition()
        super().__init__(self._line)

    def _line(self, line: str) -> None:
        what, _, url = line.removeprefix("flaglens: ").partition(" listening on ")
        with self.changed:
            self.urls[what] = url
            self.changed.notify_all()


@dataclass
class InProcessServer:
    """A running in-process server: its settings, its service and the URLs it announced."""

    server: Server
    thread: threading.Thread
    announced: _Urls
    errors: list[BaseException] = field(default_factory=list)

    @property
    def settings(self) -> ServeSettings:
        return self.server.settings

    @property
    def service(self) -> IngestService:
        assert self.server.service is not None, "a --no-ingest server has no ingest service"
        return self.server.service

    @property
    def db(self) -> Path:
        return self.settings.db

    @property
    def urls(self) -> dict[str, str]:
        return self.announced.urls

    @property
    def http_url(self) -> str:
        return self.server.otlp_url

    @property
    def api_url(self) -> str:
        """Base URL of the read listener (the API is under /api/v1)."""
        return self.urls["read API"].removesuffix("/api/v1")

    @property
    def grpc_target(self) -> str:
        """host:port of the OTLP/gRPC listener."""
        return self.urls["OTLP/gRPC"].split("://", 1)[1]

    def stop(self, timeout: float = 30) -> None:
        """Stop the receivers and drain the writer (as SIGTERM does); the store is closed after.

        Raises whatever made the server's thread fail, so that no error passes silently.
        """
        self.server.stop()
        self.thread.join(timeout)
        if self.thread.is_alive():
            raise RuntimeError(f"the in-process server did not stop within {timeout} s")
        if self.errors:
            raise self.errors[0]


def start_inprocess(
    db: Path,
    *,
    grpc: bool = False,
    dashboards: bool = False,
    api: bool = False,
    alerts: bool = False,
    timeout: float = 30,
    **settings: Any,
) -> InProcessServer:
    """Start a server on ``db``: OTLP/HTTP on a free port, OTLP/gRPC too when ``grpc``, the
    dashboards (on a free port) when ``dashboards``, the read API (on that port, with the note
    beside the database that local readers follow) when ``api``, the alert rounds when
    ``alerts``.

    ``settings`` are :class:`ServeSettings` fields, as the flags of `flaglens serve` name them
    (``max_body_bytes=1 << 20``, ``auth_file=...``, ``alert_rules=...``); ``decode_workers``
    is 0 unless given. The environment is read as `flaglens serve` reads it (FLAGLENS_*).
    """
    fields: dict[str, Any] = {
        "http_port": 0, "grpc_port": 0, "no_grpc": not grpc, "dashboard_port": 0,
        "no_dashboards": not dashboards, "no_api": not api, "no_alerts": not alerts,
        "decode_workers": 0,
    } | settings  # fmt: skip
    announced = _Urls()
    server = Server(ServeSettings(db=db, **fields), announce=announced)
    running = InProcessServer(server, threading.Thread(), announced)

    def run() -> None:
        try:
            server.run()
        except BaseException as exc:  # handed to the test by stop() or the wait below
            running.errors.append(exc)
            with announced.changed:
                announced.changed.notify_all()

    running.thread = threading.Thread(target=run, name="flaglens-serve", daemon=True)
    running.thread.start()
    wanted = {"OTLP/HTTP", "database"} | ({"dashboards"} if dashboards else set())
    wanted |= {"read API"} if api else set()
    with announced.changed:
        ready = announced.changed.wait_for(
            lambda: wanted <= announced.urls.keys() or bool(running.errors), timeout
        )
    if running.errors or not ready:
        running.stop()
        raise RuntimeError(f"the in-process server did not start; it announced {announced.urls}")
    return running


@contextmanager
def inprocess_server(db: Path, **options: Any) -> Iterator[InProcessServer]:
    """:func:`start_inprocess` for the duration of a with-block, stopped at its end."""
    server = start_inprocess(db, **options)
    try:
        yield server
    finally:
        server.stop()
