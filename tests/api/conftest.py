"""The read API in process, over the sample week opened read-only (no server, no sockets)."""

from __future__ import annotations

import asyncio
import atexit
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from analytics.session import AnalyticsConfig, Session
from api import ApiLimits, create_api
from store.connection import Store

WEEK = {"from": "2026-11-16T00:00Z", "to": "2026-11-23T00:00Z"}


# One event loop for the main thread's requests: a loop per request costs anyio a new worker
# thread per request (the API runs its reads on worker threads), ~40% of a small read.
_MAIN_LOOP = asyncio.Runner()
atexit.register(_MAIN_LOOP.close)


def _run(send: Any) -> httpx.Response:
    if threading.current_thread() is threading.main_thread():
        response: httpx.Response = _MAIN_LOOP.run(send())
        return response
    return asyncio.run(send())  # other threads (concurrent readers) each their own loop


class AsgiClient:
    """Requests to an ASGI app through httpx's ASGI transport."""

    def __init__(self, app: Any, headers: dict[str, str] | None = None) -> None:
        self.app = app
        self.headers = headers or {}

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        async def send() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://reader", headers=self.headers
            ) as client:
                response = await client.request(method, url, **kwargs)
                await response.aread()
                return response

        return _run(send)

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", url, **kwargs)


@pytest.fixture(scope="session")
def week_session(sample_week) -> Iterator[Session]:
    store = Store.open(sample_week.db, read_only=True)
    try:
        yield Session(store.cursor, AnalyticsConfig(key_file=sample_week.keys, db=sample_week.db))
    finally:
        store.close()


# The limits of the tests' API, unless a test sets its own: the reads at the test's priority and
# a time limit that a shared, busy machine does not reach (the default 10 s at nice 10 answered
# the weekly report 503 at a load of 12 on 2 cores). tests/api/test_guard.py tests the limits.
TEST_LIMITS: dict[str, Any] = {"query_timeout": 120.0, "nice": 0}


@pytest.fixture(scope="session")
def api(week_session) -> AsgiClient:
    return api_with(week_session)


def api_with(session: Session, **limits: Any) -> AsgiClient:
    """The API over ``session`` with other limits."""
    return AsgiClient(create_api(session, ApiLimits(**(TEST_LIMITS | limits))))
