"""The OTLP/HTTP connections: uvicorn's httptools protocol under a :class:`ConnectionGuard`.

What the guard enforces, and why uvicorn alone does not, is described in
:mod:`ingest.connections`. The protocol hooks uvicorn's parser callbacks (``on_url``,
``on_header``, ``on_headers_complete``, ``on_message_complete``) and its per-request cycle;
``tests/ingest/test_connections.py`` drives each limit over raw sockets, so an uvicorn release
that moves them fails there first.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from ingest.connections import ConnectionLimits, ConnectionStats


@dataclass
class ConnectionGuard:
    """What the connections of one listener share: their limits, the open set and counters."""

    limits: ConnectionLimits
    stats: ConnectionStats = field(default_factory=ConnectionStats)
    # open connections in the order they were opened (dicts keep insertion order)
    _open: dict[GuardedHttpProtocol, None] = field(default_factory=dict)

    def opened(self, connection: GuardedHttpProtocol) -> bool:
        """Register a new connection; False when it must be refused (every other one busy)."""
        self.stats.opened += 1
        if len(self._open) >= self.limits.max_connections:
            victim = self._longest_idle()
            if victim is None:
                self.stats.refused_busy += 1
                return False
            self.stats.evicted_idle += 1
            victim.close_idle()
            self._open.pop(victim, None)
        self._open[connection] = None
        self.stats.open = len(self._open)
        return True

    def closed(self, connection: GuardedHttpProtocol) -> None:
        self._open.pop(connection, None)
        self.stats.open = len(self._open)

    def _longest_idle(self) -> GuardedHttpProtocol | None:
        silent: GuardedHttpProtocol | None = None
        waiting: GuardedHttpProtocol | None = None
        for connection in self._open:
            state = connection.idle_state()
            if state == "silent" and (silent is None or connection.idle_since < silent.idle_since):
                silent = connection
            elif state == "keep-alive" and (
                waiting is None or connection.idle_since < waiting.idle_since
            ):
                waiting = connection
        return silent or waiting


_REASONS = {408: b"Request Timeout", 431: b"Request Header Fields Too Large",
            503: b"Service Unavailable"}  # fmt: skip


def _plain_response(status: int, message: str, *, retry_after: int | None = None) -> bytes:
    body = message.encode()
    head = [
        b"HTTP/1.1 %d %s" % (status, _REASONS[status]),
        b"content-type: text/plain; charset=utf-8",
        b"content-length: %d" % len(body),
        b"connection: close",
    ]
    if retry_after is not None:
        head.append(b"retry-after: %d" % retry_after)
    return b"\r\n".join(head) + b"\r\n\r\n" + body


class _HeadersRefused(Exception):
    """Raised from a parser callback to stop parsing a head over a limit."""


class GuardedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol under a :class:`ConnectionGuard` (module docstring)."""

    guard: ClassVar[ConnectionGuard]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_head = True  # between requests or inside a request line and headers
        self._head_received = 0  # bytes received while in the head (an upper bound)
        self._head_size = 0  # bytes of request line and headers parsed so far
        self._header_count = 0
        self._sent_bytes = False  # anything received on this connection yet
        self._refusal: tuple[int, str] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._registered = False
        self.idle_since = time.monotonic()

    # -- the connection -------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if not self.guard.opened(self):
            self.transport.write(
                _plain_response(
                    503, "too many connections are busy; retry shortly\n", retry_after=1
                )
            )
            self.transport.close()
            return
        self._registered = True
        self._arm(self.guard.limits.header_timeout, self._header_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if self._registered:
            self.guard.closed(self)
            self._registered = False
        super().connection_lost(exc)

    def idle_state(self) -> str | None:
        """'silent' (never sent a byte), 'keep-alive' (between requests) or None (busy)."""
        if self.transport is None or self.transport.is_closing():
            return None
        if not self._sent_bytes:
            return "silent"
        if (
            self._in_head
            and not self._head_received
            and (self.cycle is None or self.cycle.response_complete)
        ):
            return "keep-alive"
        return None

    def close_idle(self) -> None:
        """Close this idle connection to make room for a new one."""
        self._registered = False  # the guard has already forgotten it
        self._disarm()
        if not self.transport.is_closing():
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        self._sent_bytes = True
        if self._in_head:
            if not self._head_received and self._timer is None:
                self._arm(self.guard.limits.header_timeout, self._header_timeout)
            self._head_received += len(data)
        super().data_received(data)
        if (
            self._in_head
            and self._refusal is None
            and self._head_received > self.guard.limits.max_header_bytes
            and not self.transport.is_closing()
        ):
            # more bytes than the limit allows and the head is still unfinished: refuse it
            # before holding more of it
            self._refuse_head(
                f"request line and headers are over {self.guard.limits.max_header_bytes} bytes"
            )

    # -- parser callbacks -------------------------------------------------------------------

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_size = 0
        self._header_count = 0

    def on_url(self, url: bytes) -> None:
        self._head_size += len(url)
        self._check_head()
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_size += len(name) + len(value) + 4
        self._header_count += 1
        self._check_head()
        super().on_header(name, value)

    def _check_head(self) -> None:
        limits = self.guard.limits
        if self._header_count > limits.max_headers:
            self._refusal = (431, f"more than {limits.max_headers} header fields")
        elif self._head_size > limits.max_header_bytes:
            self._refusal = (431, f"request line and headers are over {limits.max_header_bytes} "
                             "bytes")  # fmt: skip
        if self._refusal is not None:
            raise _HeadersRefused

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._head_received = 0
        self._disarm()
        super().on_headers_complete()
        if not self.transport.is_closing():
            self._arm(self.guard.limits.body_timeout, self._body_timeout)

    def on_message_complete(self) -> None:
        self._disarm()
        self._in_head = True
        self._head_received = 0
        super().on_message_complete()

    def on_response_complete(self) -> None:
        self.idle_since = time.monotonic()
        super().on_response_complete()

    # -- refusals -------------------------------------------------------------------------

    def send_400_response(self, msg: str) -> None:
        # uvicorn answers every parser error 400; a head refused by a limit is 431
        if self._refusal is not None:
            self._refuse_head(self._refusal[1])
        else:
            super().send_400_response(msg)

    def _refuse_head(self, problem: str) -> None:
        self.guard.stats.headers_too_large += 1
        self._close_with(431, f"{problem}; send fewer or smaller headers\n")

    def _close_with(self, status: int, message: str) -> None:
        self._disarm()
        if not self.transport.is_closing():
            self.transport.write(_plain_response(status, message))
            self.transport.close()

    def _header_timeout(self) -> None:
        self._timer = None
        if self.transport.is_closing():
            return
        self.guard.stats.header_timeouts += 1
        if self._head_received:
            self._close_with(
                408, f"request headers not received within {self.guard.limits.header_timeout:g} s\n"
            )
        else:
            self.transport.close()  # a connection that never sent a request

    def _body_timeout(self) -> None:
        self._timer = None
        if self.transport.is_closing():
            return
        self.guard.stats.body_timeouts += 1
        cycle = self.cycle
        if cycle is not None and not cycle.response_started:
            cycle.disconnected = True  # the app's receive() now says the client is gone
            cycle.message_event.set()
            self.transport.write(
                _plain_response(
                    408,
                    f"request body not received within {self.guard.limits.body_timeout:g} s\n",
                )
            )
        self.transport.close()

    def _arm(self, seconds: float, callback: Any) -> None:
        self._disarm()
        self._timer = self.loop.call_later(seconds, callback)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


def guarded_protocol(guard: ConnectionGuard) -> type[GuardedHttpProtocol]:
    """A protocol class for uvicorn's ``Config(http=...)`` whose connections share ``guard``."""
    return type("GuardedHttpProtocol", (GuardedHttpProtocol,), {"guard": guard})
