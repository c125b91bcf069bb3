"""The server's composition: what `flaglens serve` runs, wired together in one process.

The OTLP receivers (HTTP and gRPC) share one :class:`~ingest.service.IngestService` (the store,
the contracts, the decode workers and the one writer); the read listener (the dashboards and
the read API, :mod:`flaglens.read_listener`) and the periodic round (alerts, recording of
closed windows) run beside them and read through their own cursors; the periodic round writes
through the service's writer. DuckDB lets one process own a database file, so everything
lives here; the note beside the database (:mod:`flaglens.discovery`) tells local readers where
the read API is.

On a DuckLake several such processes share the store, and a reader (``--no-ingest``) serves only
the read listener. Each asks for the store's ``rounds`` lease (:mod:`store.lease`); the one
holding it runs the periodic rounds and the lake's upkeep (:class:`~store.upkeep.LakeUpkeep`),
the others skip them until the holder dies or stops. A lake has no file to leave a note beside,
nor needs one: any process reads it directly. A reader's rounds write through a writer of its
own.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import threading
from collections.abc import Callable

import grpc
import uvicorn

from alerts.rules import AlertConfig, load_alert_config
from analytics.session import Session
from flaglens.discovery import ServerNote, remove_note, write_note
from flaglens.read_listener import ReadListener, start_read_listener
from flaglens.rounds import PeriodicRounds
from flaglens.settings import ServeSettings
from ingest.auth import TokenRing
from ingest.connections import (
    ACCEPT_BACKLOG,
    ConnectionLimits,
    connection_budget,
    limit_accept_errors,
    raise_descriptor_limit,
)
from ingest.http_protocol import ConnectionGuard, guarded_protocol
from ingest.http_server import create_app
from ingest.reload import ReloadFailed
from ingest.service import IngestService, open_store
from ingest.settings import IngestSettings
from store.connection import Store
from store.lease import Lease
from store.upkeep import LakeUpkeep
from store.writer import StoreWriter

log = logging.getLogger("flaglens.serve")


def bind_socket(host: str, port: int) -> socket.socket:
    """Bind the listening socket ourselves so that port 0 resolves before we announce it."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def url_of(sock: socket.socket, *, tls: bool = False, local: bool = False) -> str:
    """The URL of a listening socket; with ``local``, as this machine reaches it (a wildcard
    address becomes loopback)."""
    host, port = sock.getsockname()[:2]
    if local and host in ("0.0.0.0", "::"):
        host = "127.0.0.1" if host == "0.0.0.0" else "::1"
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


def start_reading(
    session: Session,
    service: IngestService | None,
    tokens: TokenRing | None,
    settings: ServeSettings,
    alerts: AlertConfig | None,
    otlp_url: str,
    max_connections: int,
) -> ReadListener:
    """The read listener on ``--dashboard-port``: the Dash app (reading the service's store
    through its own cursors) and the read API, behind the token file's read roles, with the
    OTLP/HTTP listener's timeouts and header limits and at most ``max_connections``. The admin
    API needs the ingest service (none on a ``--no-ingest`` reader)."""
    sock = bind_socket(settings.host, settings.dashboard_port)
    url = url_of(sock, tls=settings.tls_cert is not None)
    dashboards = None
    if not settings.no_dashboards:
        from dashboards.app import create_dash_app
        from dashboards.pages import DataSource

        dashboards = create_dash_app(DataSource(session, otlp_url=otlp_url)).server
    from flaglens.admin import admin_router

    try:
        return start_read_listener(
            sock, url, session, settings, tokens, dashboards=dashboards, alert_rules=alerts,
            api=not settings.no_api, routers=[admin_router(service)] if service else [],
            connections=connection_limits(settings, max_connections),
        )  # fmt: skip
    except BaseException:
        sock.close()
        raise


def start_rounds(
    session: Session,
    writer: StoreWriter,
    alerts: AlertConfig | None,
    settings: ServeSettings,
    dashboards_url: str,
    lease: Lease,
) -> PeriodicRounds:
    """The periodic rounds: alert rules and the recording of closed change windows and cohort
    periods that the dashboards read, written through ``writer`` (while this process holds
    ``lease``)."""
    runner = PeriodicRounds(
        session,
        writer,
        alerts,
        interval=settings.alert_interval,
        dashboards_url=dashboards_url,
        lease=lease,
    )
    runner.start()
    return runner


def leave_note(reading: ReadListener, settings: ServeSettings, *, auth: bool) -> bool:
    """Write the note beside a DuckDB file that tells local readers where its read API is
    (none on a lake, which every process reads directly, or in memory); True if written."""
    db = settings.db_beside
    if settings.no_api or db is None or str(db) == ":memory:":
        return False
    note = ServerNote(
        url=url_of(reading.sock, tls=settings.tls_cert is not None, local=True),
        pid=os.getpid(),
        auth=auth,
        tls_cert=str(settings.tls_cert.resolve()) if settings.tls_cert else None,
    )
    write_note(db, note)
    return True


class StoreDuties:
    """The store's lease, taken for this process's turn at the shared work, and the lake's
    upkeep that its holder runs (none for a DuckDB file, whose one process holds the lease)."""

    def __init__(self, store: Store, settings: IngestSettings) -> None:
        self.lease = store.lease("rounds", ttl=settings.lease_ttl)
        self.upkeep = (
            LakeUpkeep(
                store,
                self.lease,
                options=settings.lake_options,
                reconcile_interval=settings.lake_reconcile_interval,
            )
            if store.shared
            else None
        )

    def start(self) -> None:
        self.lease.start()
        if self.upkeep is not None:
            self.upkeep.start()

    def stop(self) -> None:
        if self.upkeep is not None:
            self.upkeep.stop()
        self.lease.close()


def listener_caps(settings: IngestSettings, *, reading: bool) -> int:
    """The connection cap of each listener: ``max_connections``, lowered so that the listeners
    together stay inside the file descriptor limit (raised to its hard limit first)."""
    descriptors = raise_descriptor_limit()
    listeners = 1 + (not settings.no_grpc) + reading
    cap = connection_budget(settings.max_connections, listeners, descriptors)
    if cap < settings.max_connections:
        log.warning(
            "max_connections %d lowered to %d per listener: the file descriptor limit is %d "
            "for %d listeners (raise it with ulimit -n)",
            settings.max_connections, cap, descriptors, listeners,
        )  # fmt: skip
    return cap


def connection_limits(settings: IngestSettings, max_connections: int) -> ConnectionLimits:
    """What an HTTP listener allows its connections (:mod:`ingest.connections`)."""
    return ConnectionLimits(
        header_timeout=settings.header_timeout,
        body_timeout=settings.body_timeout,
        max_header_bytes=settings.max_header_bytes,
        max_headers=settings.max_headers,
        max_connections=max_connections,
    )


def http_server(
    service: IngestService, settings: IngestSettings, max_connections: int
) -> uvicorn.Server:
    """The OTLP/HTTP server (uvicorn) with flaglens' connection limits; serve it with
    ``await server.serve(sockets=[...])``."""
    guard = ConnectionGuard(connection_limits(settings, max_connections))
    service.listeners["http"] = guard.stats.as_dict
    tls = settings.tls_cert is not None
    config = uvicorn.Config(
        create_app(service),
        http=guarded_protocol(guard),
        timeout_keep_alive=max(1, round(settings.idle_timeout)),
        backlog=ACCEPT_BACKLOG,
        log_level="warning",
        access_log=False,
        lifespan="off",
        ssl_certfile=str(settings.tls_cert) if tls else None,
        ssl_keyfile=str(settings.tls_key) if tls else None,
    )
    return uvicorn.Server(config)


async def serve_receivers(
    server: uvicorn.Server,
    http_sock: socket.socket,
    service: IngestService,
    settings: IngestSettings,
    announce: Announcer,
    max_connections: int,
) -> None:
    """uvicorn and, when configured, the gRPC server, in one event loop."""
    limit_accept_errors(asyncio.get_running_loop())
    grpc_server = None
    if not settings.no_grpc:
        from ingest.grpc_server import create_grpc_server

        credentials = None
        if settings.tls_cert is not None and settings.tls_key is not None:
            credentials = grpc.ssl_server_credentials(
                [(settings.tls_key.read_bytes(), settings.tls_cert.read_bytes())]
            )
        grpc_server, port = create_grpc_server(
            service,
            f"{settings.host}:{settings.grpc_port}",
            credentials=credentials,
            max_connections=max_connections,
        )
        if port == 0:
            raise OSError(f"cannot listen for OTLP/gRPC on {settings.host}:{settings.grpc_port}")
        await grpc_server.start()
        host = f"[{settings.host}]" if ":" in settings.host else settings.host
        scheme = "https" if credentials is not None else "http"
        announce("OTLP/gRPC", f"{scheme}://{host}:{port}")
    announce("database", service.store.path)
    try:
        await server.serve(sockets=[http_sock])
    finally:
        if grpc_server is not None:
            await grpc_server.stop(grace=5)


class Server:
    """One `flaglens serve`, composed: built here (files checked, store opened, HTTP port bound),
    then :meth:`run` serves until :meth:`stop` is called, from any thread.

    With ``--no-ingest`` it is a reader: the store and the read listener with a turn at the
    shared work (the rounds lease), no receivers and no ingest writer.

    :func:`serve` runs it under its SIGTERM handler; the tests run it on a thread of their own
    process (``tests/inprocess.py``), so that both exercise the same composition.
    """

    def __init__(self, settings: ServeSettings, *, announce: Announcer | None = None) -> None:
        self.settings = settings
        self.announce = announce or Announcer()
        problem = settings.exposure_problem()
        if problem:
            raise ExposureError(problem)
        self.analytics = settings.analytics_config(settings.db_beside)
        # a broken configuration file stops start-up, not the first page view or round
        self.analytics.check()
        self.alerts: AlertConfig | None = None
        if not settings.no_alerts:
            self.alerts = load_alert_config(settings.rules_file, webhook=settings.alert_webhook)
        self._stopping = threading.Event()
        self.reads = not (settings.no_dashboards and settings.no_api)
        self.service: IngestService | None = None
        self.http_sock: socket.socket | None = None
        self._uvicorn: uvicorn.Server | None = None
        self.otlp_url = ""
        if settings.no_ingest:
            self.store = open_store(settings)
            self.tokens = TokenRing.load(settings.auth_file) if settings.auth_file else None
            self.cap = listener_caps(settings, reading=self.reads)
            return
        self.service = IngestService(settings)
        self.store = self.service.store
        self.tokens = self.service.tokens
        try:
            self.http_sock = bind_socket(settings.host, settings.http_port)
        except BaseException:
            self.service.close()
            raise
        self.otlp_url = url_of(self.http_sock, tls=settings.tls_cert is not None)
        # the connection cap of each listener, within the file descriptor limit
        self.cap = listener_caps(settings, reading=self.reads)
        self._uvicorn = http_server(self.service, settings, self.cap)

    def stop(self) -> None:
        """Ask :meth:`run` to return: the receivers stop, then the writer drains."""
        self._stopping.set()
        if self._uvicorn is not None:
            self._uvicorn.should_exit = True

    def run(self) -> None:
        """Serve until :meth:`stop`; drains the writer and closes the store before returning."""
        settings = self.settings
        service = self.service
        reading: ReadListener | None = None
        noted = False
        rounds: PeriodicRounds | None = None
        duties: StoreDuties | None = None
        # a reader's rounds write through a writer of its own (the service's, otherwise)
        writer = service.writer if service is not None else StoreWriter(self.store)
        try:
            if service is not None:
                service.start()
            else:
                writer.start()
            duties = StoreDuties(self.store, settings)
            duties.start()
            dashboards_url = ""
            session = Session(self.store.cursor, self.analytics)
            if self.reads:
                reading = start_reading(
                    session, service, self.tokens, settings, self.alerts, self.otlp_url, self.cap
                )
                if service is not None:
                    service.listeners["read"] = reading.connections.as_dict
                if not settings.no_dashboards:
                    dashboards_url = reading.url
                noted = leave_note(reading, settings, auth=self.tokens is not None)
            if self.alerts is not None or dashboards_url:
                rounds = start_rounds(
                    session, writer, self.alerts, settings, dashboards_url, duties.lease
                )
            if self.http_sock is not None:
                self.announce("OTLP/HTTP", self.otlp_url)
            if reading is not None:
                if not settings.no_dashboards:
                    self.announce("dashboards", reading.url + "/")
                if not settings.no_api:
                    self.announce("read API", reading.url + "/api/v1")
            if service is None:
                self.announce("database", self.store.path)
                self._stopping.wait()
            else:
                assert self._uvicorn is not None and self.http_sock is not None
                asyncio.run(
                    serve_receivers(
                        self._uvicorn, self.http_sock, service, settings, self.announce, self.cap
                    )
                )
        finally:
            if noted and settings.db_beside is not None:
                remove_note(settings.db_beside, os.getpid())
            if rounds is not None:
                rounds.stop()
            if duties is not None:
                duties.stop()
            if reading is not None:
                reading.stop()
            if self.http_sock is not None:
                self.http_sock.close()
            if service is not None:
                service.close()
            else:
                writer.close()
                self.store.close()


def reload_in_background(service: IngestService) -> None:
    """Reload the contracts off the signal handler (the main thread runs the OTLP event loop,
    which must go on serving while new decode workers start)."""

    def run() -> None:
        try:
            service.reloader.reload("SIGHUP")
        except ReloadFailed:
            pass  # logged, and shown in /healthz, by the reloader

    threading.Thread(target=run, name="contract-reload", daemon=True).start()


def serve(settings: ServeSettings, *, announce: Announcer | None = None) -> int:
    """Run the server until interrupted (SIGINT/SIGTERM); drains the writer before exiting.
    SIGHUP reloads the contracts (:mod:`ingest.reload`)."""
    server = Server(settings, announce=announce)

    # SIGTERM stops the server gracefully even when it arrives before uvicorn installs its own
    # handler; and since uvicorn re-raises the signal once it has shut down, this handler (not
    # the default, which kills the process) receives it then, so the writer drains and the
    # database closes.
    def stop(_sig: int, _frame: object) -> None:
        server.stop()

    def reload(_sig: int, _frame: object) -> None:
        if server.service is not None:  # a --no-ingest reader has no contracts to reload
            reload_in_background(server.service)

    # a reader (no uvicorn) takes SIGINT as SIGTERM
    signals = (signal.SIGTERM, signal.SIGINT) if settings.no_ingest else (signal.SIGTERM,)
    previous = {sig: signal.signal(sig, stop) for sig in signals}
    previous[signal.SIGHUP] = signal.signal(signal.SIGHUP, reload)
    try:
        server.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0
