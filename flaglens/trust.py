"""The certificates an HTTP client of flaglens trusts by default, built once per process.

httpx builds an SSL context with certifi's authorities for every client it creates unless it is
given one; that costs ~50 ms of CPU per client (more on a busy machine), whether or not the
client ever speaks TLS. The CLI's read backend and the periodic rounds' webhook client take this
one instead; an :class:`ssl.SSLContext` may serve many clients and threads.
"""

from __future__ import annotations

import functools
import ssl

import httpx


@functools.cache
def system_trust() -> ssl.SSLContext:
    """httpx's default trust (``verify=True``): certifi's authorities, or ``SSL_CERT_FILE`` /
    ``SSL_CERT_DIR`` when set."""
    return httpx.create_ssl_context()
