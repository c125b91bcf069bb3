"""The bytes the server holds for requests it has not answered yet, and the bound on them.

Every export request is charged, from the moment it is admitted until it is answered, for what
the server holds of it: its body as sent while it is received and waits for a decode worker;
while a worker decodes it, the body and its inflated size besides (the inflated size is read
from the gzip trailer, at most ``max_decompressed_bytes``); once decoded, the Arrow tables
queued for the writer. The receivers admit a request before reading its body (HTTP: by its
``Content-Length``; a chunked body and a gRPC message by the mean size of recent requests,
corrected as the bytes arrive). Past ``max_inflight_bytes`` a new request is refused with 503
and ``Retry-After`` (gRPC: UNAVAILABLE with RetryInfo), which OTLP exporters honour, instead
of the server reading it: this is the OpenTelemetry Collector's ``memory_limiter`` applied
at the door, so the server's memory levels off under any number of concurrent exporters.

When nothing is held, one request is admitted whatever its size, so a request larger than the
bound alone is served rather than refused forever.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from typing import Any

from ingest.errors import Overloaded

DEFAULT_MAX_INFLIGHT_BYTES = 256 * 2**20
# what a request whose size is not known yet is admitted for, before any request was seen
_FIRST_ESTIMATE = 64 * 1024
_GZIP_TRAILER_BYTES = 8


def inflated_size(body: bytes, content_encoding: str | None, limit: int) -> int:
    """What a body will take once inflated: its own size, or for gzip the size its (last)
    member's trailer states, between the body's size and ``limit``. Only an estimate for
    accounting: the inflater itself enforces the limit."""
    if (content_encoding or "").strip().lower() != "gzip" or len(body) < 18:
        return len(body)
    stated = int.from_bytes(body[-4:], "little")  # ISIZE: the input size modulo 2**32
    return max(len(body), min(stated, limit))


@dataclass(frozen=True, slots=True)
class InflightSnapshot:
    held_bytes: int
    peak_bytes: int
    limit_bytes: int
    requests: int
    refused: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "held_bytes": self.held_bytes,
            "peak_bytes": self.peak_bytes,
            "limit_bytes": self.limit_bytes,
            "requests": self.requests,
            "refused": self.refused,
        }


class InflightBytes:
    """The bound on bytes held for unanswered requests (see the module docstring)."""

    def __init__(self, limit: int = DEFAULT_MAX_INFLIGHT_BYTES) -> None:
        self.limit = limit
        self._lock = threading.Lock()
        self._held = 0
        self._peak = 0
        self._requests = 0
        self._refused = 0
        self._mean_body = float(_FIRST_ESTIMATE)
        self._drain_rate = 0.0  # bytes released per second, a moving mean
        self._last_release = time.monotonic()

    def admit(self, nbytes: int | None = None) -> Charge:
        """A charge of ``nbytes`` (None: the mean size of recent bodies) for a new request.

        Raises:
            Overloaded: the bound would be passed; nothing was charged.
        """
        charge = Charge(self)
        charge.grow(self.estimate() if nbytes is None else nbytes, refuse=True)
        with self._lock:
            self._requests += 1
        return charge

    def estimate(self) -> int:
        """What a request of unknown size is charged for at first."""
        return int(self._mean_body)

    def observe_body(self, nbytes: int) -> None:
        """Record the size of a body received, for :meth:`estimate`."""
        with self._lock:
            self._mean_body += (nbytes - self._mean_body) / 16

    def _change(self, delta: int, *, refuse: bool) -> None:
        with self._lock:
            if refuse and delta > 0 and self._held and self._held + delta > self.limit:
                self._refused += 1
                held = self._held
                retry_after = self._retry_after()
                raise Overloaded(
                    retry_after=retry_after,
                    reason=f"the server holds {held / 2**20:.1f} MiB of unanswered requests "
                    f"(the limit, --max-inflight-bytes, is {self.limit / 2**20:.1f} MiB)",
                )
            self._held += delta
            self._peak = max(self._peak, self._held)
            if delta < 0:
                now = time.monotonic()
                elapsed = max(now - self._last_release, 1e-3)
                self._last_release = now
                rate = -delta / elapsed
                self._drain_rate = rate if not self._drain_rate else (
                    0.9 * self._drain_rate + 0.1 * rate
                )  # fmt: skip

    def _retry_after(self) -> float:
        """Seconds until about half of what is held has drained (1 to 30)."""
        if self._drain_rate <= 0:
            return 1.0
        return min(30.0, max(1.0, math.ceil(self._held / 2 / self._drain_rate)))

    def snapshot(self) -> InflightSnapshot:
        with self._lock:
            return InflightSnapshot(
                self._held, self._peak, self.limit, self._requests, self._refused
            )


class Charge:
    """What one request is charged for; resized as it moves on, released once answered."""

    __slots__ = ("_budget", "nbytes")

    def __init__(self, budget: InflightBytes) -> None:
        self._budget = budget
        self.nbytes = 0

    def grow(self, nbytes: int, *, refuse: bool = False) -> None:
        """Charge ``nbytes`` more; with ``refuse``, raise Overloaded (charging nothing) when
        that would pass the bound."""
        if nbytes:
            self._budget._change(nbytes, refuse=refuse)
            self.nbytes += nbytes

    def set(self, nbytes: int) -> None:
        """Charge exactly ``nbytes`` from now on (never refused: the bytes are already held)."""
        delta = nbytes - self.nbytes
        if delta:
            self._budget._change(delta, refuse=False)
            self.nbytes = nbytes

    def release(self) -> None:
        """The request was answered: it holds nothing any more (idempotent)."""
        self.set(0)
