"""Delivery of queued notifications as Alertmanager-compatible webhooks.

Each ``alert_outbox`` row is POSTed as JSON to the receiver URL. A 2xx answer marks it
delivered; anything else (refused connection, timeout, 5xx, 4xx) schedules a retry with
exponential backoff (1 s, 2 s, 4 s, ... capped at 5 minutes). Rows are sent oldest first and a
failure stops the round, so a group's resolved notification never overtakes its firing one.
A row is marked delivered in the same step as its success, so a recovered receiver gets each
notification once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import duckdb
import httpx

log = logging.getLogger(__name__)
BACKOFF_START = timedelta(seconds=1)
BACKOFF_CAP = timedelta(minutes=5)


@dataclass
class DeliveryRound:
    delivered: int = 0
    failed: int = 0
    error: str | None = None


def backoff(attempts: int) -> timedelta:
    """Wait before retry number ``attempts`` (1 = first retry)."""
    wait: timedelta = BACKOFF_START * (2 ** max(0, attempts - 1))
    return min(BACKOFF_CAP, wait)


def deliver_pending(
    cursor_factory: Callable[[], duckdb.DuckDBPyConnection],
    url: str,
    *,
    client: httpx.Client,
    now: datetime | None = None,
) -> DeliveryRound:
    """Send every due notification; returns what happened."""
    now = now or datetime.now(UTC)
    cursor = cursor_factory()
    due = cursor.execute(
        "SELECT id, payload, attempts FROM alert_outbox WHERE delivered_at IS NULL "
        "AND next_attempt_at <= $now ORDER BY id",
        {"now": now},
    ).fetchall()
    result = DeliveryRound()
    for outbox_id, payload, attempts in due:
        try:
            response = client.post(
                url, content=payload, headers={"content-type": "application/json"}
            )
            error = None if response.is_success else f"HTTP {response.status_code}"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
        if error is None:
            cursor.execute(
                "UPDATE alert_outbox SET delivered_at = $now, attempts = attempts + 1 "
                "WHERE id = $id",
                {"now": datetime.now(UTC), "id": outbox_id},
            )
            result.delivered += 1
            continue
        cursor.execute(
            "UPDATE alert_outbox SET attempts = attempts + 1, next_attempt_at = $next, "
            "last_error = $error WHERE id = $id",
            {"next": now + backoff(attempts + 1), "error": error[:500], "id": outbox_id},
        )
        result.failed += 1
        result.error = error
        log.warning("alert webhook %s failed (attempt %d): %s", url, attempts + 1, error)
        break
    return result
