"""The bytes the server holds for requests it has not answered yet, and the bound on them.

Every export request is charged, from the moment it is admitted until it is answered, for what
the server holds of it: its body as sent while it is received and waits for a decode worker;
while a worker decodes it, the body and its inflated size besides (the inflated size is read
from the gzip trailer, at most ``max_decompressed_bytes``); once decoded, the body and the
Arrow tables queued for the writer. Since a request comes to hold several times its body, it
is admitted for what recent requests came to hold per byte of body (a moving mean), and
charged that much or what it holds, whichever is more. The receivers admit a request before
reading its body (HTTP: by its ``Content-Length``, or a chunked body as its chunks arrive; a
gRPC message, whose size is known only once gRPC has read it, as the largest of the recent
bodies). Past ``max_inflight_bytes`` a new
request is refused with 503 and ``Retry-After`` (gRPC: UNAVAILABLE with RetryInfo), which
OTLP exporters honour, instead of the server reading it: this is the OpenTelemetry
Collector's ``memory_limiter`` applied at the door, so the server's memory levels off under
any number of concurrent exporters.

When nothing is held, one request is admitted whatever its size, so a request larger than the
bound alone is served rather than refused forever.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from ingest.errors import Overloaded

DEFAULT_MAX_INFLIGHT_BYTES = 256 * 2**20
# how many recent bodies the size of a body not known yet is taken from (their largest)
_RECENT_BODIES = 64
# bytes held per byte of body, before any request was answered: an OTLP/protobuf decision is
# ~400 bytes as sent and ~1 KB as Arrow rows, held beside the body until the commit
_FIRST_EXPANSION = 4.0
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

    def __init__(
        self, limit: int = DEFAULT_MAX_INFLIGHT_BYTES, largest_body: int = 16 * 2**20
    ) -> None:
        self.limit = limit
        self.largest_body = largest_body
        self._lock = threading.Lock()
        self._held = 0
        self._peak = 0
        self._requests = 0
        self._refused = 0
        self._recent_bodies: deque[int] = deque(maxlen=_RECENT_BODIES)
        self._expansion = _FIRST_EXPANSION
        self._drain_rate = 0.0  # bytes released per second, a moving mean
        self._last_release = time.monotonic()

    def admit(self, body_bytes: int | None = None) -> Charge:
        """A charge for a new request whose body is ``body_bytes`` long, reserving what such a
        request has come to hold. A body whose size is not known yet is taken to be as large
        as the largest of the recent ones (before any, as ``largest_body``), so that a burst of
        calls is not admitted all at once for less than their messages hold.

        Raises:
            Overloaded: the bound would be passed; nothing was charged.
        """
        charge = Charge(self)
        if body_bytes is None:
            with self._lock:
                body_bytes = max(self._recent_bodies, default=self.largest_body)
        charge.reserve_body(body_bytes)
        with self._lock:
            self._requests += 1
        return charge

    @property
    def expansion(self) -> float:
        """Bytes a request has come to hold per byte of its body (a moving mean)."""
        return self._expansion

    def _change(self, delta: int, *, refuse: bool) -> None:
        with self._lock:
            if refuse and delta > 0 and self._held and self._held + delta > self.limit:
                self._refused += 1
                held = self._held
                retry_after = self._retry_after()
                raise Overloaded(
                    retry_after=retry_after,
                    reason=f"the server holds {held / 2**20:.1f} MiB for unanswered requests "
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

    def _observe(self, body_bytes: int) -> None:
        """A body was read whole: its size counts for those not known yet."""
        with self._lock:
            self._recent_bodies.append(body_bytes)

    def _settled(self, body_bytes: int, peak_bytes: int) -> None:
        """A request is answered: learn how much a body comes to hold."""
        if body_bytes <= 0 or peak_bytes <= 0:
            return
        with self._lock:
            ratio = peak_bytes / body_bytes
            self._expansion += (ratio - self._expansion) / 16

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
    """What one request is charged for (see the module docstring): at least what it reserved
    when admitted, or what it holds when that is more; released once it is answered."""

    __slots__ = ("_budget", "_held", "_observed", "_peak", "body_bytes", "nbytes", "reserved")

    def __init__(self, budget: InflightBytes) -> None:
        self._budget = budget
        self.body_bytes = 0  # of the body, as far as known
        self.reserved = 0  # what the body is expected to come to
        self._held = 0  # what the request holds now, as last told
        self._peak = 0
        self._observed = False
        self.nbytes = 0  # charged: max(reserved, held)

    def reserve_body(self, body_bytes: int) -> None:
        """The body is (at least) ``body_bytes`` long: reserve what such a body comes to.

        Raises:
            Overloaded: that would pass the bound; the charge is unchanged.
        """
        if body_bytes <= self.body_bytes and self.nbytes:
            return
        reserved = max(self.reserved, int(body_bytes * self._budget.expansion))
        self._charge(max(reserved, self._held), refuse=True)
        self.body_bytes = max(self.body_bytes, body_bytes)
        self.reserved = reserved

    def hold(self, nbytes: int) -> None:
        """The request holds ``nbytes`` now (never refused: they are held already); its body
        has been read whole."""
        if not self._observed and self.body_bytes:
            self._budget._observe(self.body_bytes)
            self._observed = True
        self._held = nbytes
        self._peak = max(self._peak, nbytes)
        self._charge(max(self.reserved, nbytes), refuse=False)

    def release(self) -> None:
        """The request was answered: it holds nothing any more (idempotent)."""
        if self.nbytes:
            self._budget._settled(self.body_bytes, self._peak)
        self.reserved = self._held = 0
        self._charge(0, refuse=False)

    def _charge(self, nbytes: int, *, refuse: bool) -> None:
        delta = nbytes - self.nbytes
        if delta:
            self._budget._change(delta, refuse=refuse)
            self.nbytes = nbytes
