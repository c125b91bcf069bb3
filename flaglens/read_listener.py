"""The read listener of `flaglens serve`: the dashboards and the read API on one port.

Humans and tools read here; exporters write to the OTLP ports. The listener is a uvicorn server
on a thread of its own (its own event loop, so a slow page or a long export never holds up the
OTLP receiver's loop), serving :func:`api.create_read_app`: ``/api/v1`` and the Dash app, both
behind the token file's read roles when ``--auth-file`` is set and over TLS when
``--tls-cert`` is. It answers at most ``MAX_CONNECTIONS`` requests at once (503 beyond), and
its connections have the OTLP/HTTP listener's timeouts, header limits and connection cap
(:mod:`ingest.connections`), so idle or slow readers cannot exhaust it.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

import uvicorn
from fastapi import APIRouter

from alerts.rules import AlertConfig
from analytics.session import Session
from api import ApiLimits, ReadAccess, Verdict, create_api, create_read_app
from flaglens.settings import ServeSettings
from ingest.auth import TokenRing
from ingest.connections import (
    ACCEPT_BACKLOG,
    ConnectionLimits,
    ConnectionStats,
    limit_accept_errors,
)
from ingest.errors import Unauthenticated
from ingest.http_protocol import ConnectionGuard, guarded_protocol

MAX_CONNECTIONS = 256
_SHUTDOWN_GRACE = 5


def read_access(tokens: TokenRing) -> ReadAccess:
    """The read listener's check of a token against the token file's roles."""

    def check(token: str | None) -> Verdict:
        if token is None:
            return Verdict.refused(
                401,
                "no token: send 'Authorization: Bearer <read token>', or the token as the "
                "password of basic auth",
            )
        try:
            grant = tokens.grant_of(token)
        except Unauthenticated:
            return Verdict.refused(401, "unknown token")
        if not grant.may_read:
            return Verdict.refused(
                403,
                f"token {grant.name!r} has role {grant.role!r}, which may not read; readers "
                "need a read token (`flaglens auth token --role read`)",
            )
        return Verdict(grant.name)

    return check


def api_limits(settings: ServeSettings) -> ApiLimits:
    return ApiLimits(
        query_timeout=settings.api_query_timeout,
        max_concurrent=settings.api_max_queries,
        export_max_rows=settings.api_export_max_rows,
        nice=settings.api_nice,
    )


@dataclass
class ReadListener:
    """A running read listener; :meth:`stop` ends it."""

    server: uvicorn.Server
    thread: threading.Thread
    sock: socket.socket
    url: str
    connections: ConnectionStats

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(_SHUTDOWN_GRACE + 5)


def start_read_listener(
    sock: socket.socket,
    url: str,
    session: Session,
    settings: ServeSettings,
    tokens: TokenRing | None,
    *,
    dashboards: object | None,
    alert_rules: AlertConfig | None,
    api: bool = True,
    connections: ConnectionLimits | None = None,
    routers: Sequence[APIRouter] = (),
) -> ReadListener:
    """Serve the API (unless ``api`` is false) and ``dashboards`` (a WSGI app, unless None) on
    ``sock``, its connections under ``connections`` (default: :class:`ConnectionLimits`'s);
    ``routers`` are more API endpoints (the server's admin ones)."""
    read_api = None
    limits = api_limits(settings)
    if api:
        read_api = create_api(
            session, limits, alert_rules=alert_rules, dashboards_url=url, routers=routers
        )
    app = create_read_app(
        read_api,
        dashboards,
        access=read_access(tokens) if tokens is not None else None,
        nice=limits.nice,
    )
    tls = settings.tls_cert is not None
    guard = ConnectionGuard(connections or ConnectionLimits())
    config = uvicorn.Config(
        app,
        http=guarded_protocol(guard),
        backlog=ACCEPT_BACKLOG,
        log_level="warning",
        access_log=False,
        lifespan="off",
        limit_concurrency=MAX_CONNECTIONS,
        timeout_graceful_shutdown=_SHUTDOWN_GRACE,
        ssl_certfile=str(settings.tls_cert) if tls else None,
        ssl_keyfile=str(settings.tls_key) if tls else None,
    )
    server = uvicorn.Server(config)

    async def run() -> None:
        limit_accept_errors(asyncio.get_running_loop())
        await server.serve(sockets=[sock])

    thread = threading.Thread(
        target=lambda: asyncio.run(run()),
        name="read-listener",
        daemon=True,
    )
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.01)
    if not server.started:
        server.should_exit = True
        raise OSError(f"the read listener did not start on {url}")
    return ReadListener(server, thread, sock, url, guard.stats)
