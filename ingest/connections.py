"""Connection limits of the listeners: timeouts, header limits and a connection cap.

uvicorn closes a keep-alive connection that stays idle after a response (``idle_timeout``) but
times nothing else: a connection that never sends a request, or sends its headers or body a
byte at a time, stays open for ever, and httptools holds an unfinished header whatever its
size. :class:`~ingest.http_protocol.GuardedHttpProtocol` is uvicorn's httptools protocol with
what it lacks:

- a request's line and headers must arrive within ``header_timeout`` of the connection being
  made or of the request's first byte: past it the connection is closed (with 408 when part of
  a request had arrived);
- its body within ``body_timeout`` of its headers: past it, 408 and close (the ASGI app sees
  the client gone);
- at most ``max_header_bytes`` of request line and headers and ``max_headers`` header fields:
  past either, 431 and close, before more of the header is held;
- at most ``max_connections`` open connections: at the cap a new connection closes the one
  that has been idle longest (one that never sent a byte first, then a keep-alive one), and
  when every connection is busy the new one is answered 503 and closed. A flood of idle
  connections therefore cannot lock exporters out: each new exporter connection replaces an
  idle one.

The gRPC listener gets what gRPC itself offers (:func:`ingest.grpc_server.grpc_options`): the
same cap (gRPC refuses connections past it rather than closing idle ones), the header timeout
as its handshake timeout, ``grpc_idle_timeout`` for connections without calls, the header size
as its metadata limit.

The cap is lowered to fit the process's file descriptor limit (:func:`connection_budget`),
and the event loop logs a failing ``accept()`` once per interval rather than a traceback per
attempt (:func:`limit_accept_errors`).
"""

from __future__ import annotations

import asyncio
import logging
import resource
import time
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

DEFAULT_HEADER_TIMEOUT = 10.0
DEFAULT_BODY_TIMEOUT = 60.0
DEFAULT_IDLE_TIMEOUT = 15.0
DEFAULT_GRPC_IDLE_TIMEOUT = 120.0
DEFAULT_MAX_HEADER_BYTES = 32 * 1024
DEFAULT_MAX_HEADERS = 100
DEFAULT_MAX_CONNECTIONS = 1024
ACCEPT_ERROR_LOG_INTERVAL = 60.0
# descriptors kept for everything but client connections: the database and its WAL, the
# decode workers' pipes, the dashboards' reads, log files
_RESERVED_DESCRIPTORS = 64
ACCEPT_BACKLOG = 64
"""The HTTP listener's listen() backlog, which is also how many connections asyncio accepts
in one turn of the event loop: at the cap, those and the idle connections they replace (whose
sockets close in the next turn) hold descriptors besides the cap, so twice this is kept free."""


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    """What one listener allows its connections (see the module docstring)."""

    header_timeout: float = DEFAULT_HEADER_TIMEOUT
    body_timeout: float = DEFAULT_BODY_TIMEOUT
    max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES
    max_headers: int = DEFAULT_MAX_HEADERS
    max_connections: int = DEFAULT_MAX_CONNECTIONS


def raise_descriptor_limit() -> int:
    """Raise this process's soft file descriptor limit to its hard limit; returns it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = max(soft, 1 << 20)
    if soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):  # not allowed here: keep what there is
            pass
    return soft


def connection_budget(wanted: int, listeners: int, descriptors: int | None = None) -> int:
    """The connection cap per listener that ``descriptors`` (default: the soft limit) allows
    when ``listeners`` share it, at most ``wanted``: a quarter (at least 64) is kept for the
    rest of the server and for one turn's accepts (:data:`ACCEPT_BACKLOG`) besides."""
    if descriptors is None:
        descriptors = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    reserved = max(_RESERVED_DESCRIPTORS, descriptors // 4) + 2 * ACCEPT_BACKLOG
    return max(1, min(wanted, (descriptors - reserved) // max(1, listeners)))


@dataclass
class ConnectionStats:
    """Counters of one listener, for /healthz."""

    open: int = 0
    opened: int = 0
    evicted_idle: int = 0
    refused_busy: int = 0
    header_timeouts: int = 0
    body_timeouts: int = 0
    headers_too_large: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "open": self.open,
            "opened": self.opened,
            "evicted_idle": self.evicted_idle,
            "refused_busy": self.refused_busy,
            "header_timeouts": self.header_timeouts,
            "body_timeouts": self.body_timeouts,
            "headers_too_large": self.headers_too_large,
        }


class _AcceptErrorLimiter:
    """An event loop exception handler that logs failing ``accept()`` calls once per interval
    (asyncio retries the accept every second; each failure would log a traceback)."""

    def __init__(self, interval: float, previous: Any) -> None:
        self.interval = interval
        self.previous = previous
        self.suppressed = 0
        self._last = -float("inf")

    def __call__(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        message = str(context.get("message", ""))
        if "accept" not in message:
            if self.previous is not None:
                self.previous(loop, context)
            else:
                loop.default_exception_handler(context)
            return
        now = time.monotonic()
        if now - self._last < self.interval:
            self.suppressed += 1
            return
        self._last = now
        error = context.get("exception")
        log.error(
            "cannot accept connections: %s (%d more failures since the last report; raise the "
            "file descriptor limit or lower --max-connections)",
            error if error is not None else message,
            self.suppressed,
        )
        self.suppressed = 0


def limit_accept_errors(
    loop: asyncio.AbstractEventLoop, interval: float = ACCEPT_ERROR_LOG_INTERVAL
) -> None:
    """Make ``loop`` log failing accepts once per ``interval`` seconds, not once per attempt."""
    loop.set_exception_handler(_AcceptErrorLimiter(interval, loop.get_exception_handler()))
