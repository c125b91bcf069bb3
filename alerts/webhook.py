"""Delivery of queued notifications as Alertmanager-compatible webhooks.

Each ``alert_outbox`` row is POSTed as JSON to the receiver URL. A 2xx answer marks it
delivered; anything else (refused connection, timeout, 5xx, 4xx) schedules a retry with
exponential backoff (1 s, 2 s, 4 s, ... capped at 5 minutes). Rows are sent oldest first and a
failure stops the round, so a group's resolved notification never overtakes its firing one.
A row is marked delivered as soon as the receiver has answered 2xx, before the next row is
sent, so a recovered receiver gets each notification once. The rows due are read on a reader
cursor and the POSTs go out from the caller's thread; each outcome is written as a write
function of the store's writer (see :mod:`store.write_fns`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import duckdb
import httpx

from store.write_fns import WriteFn
from store.writer import StoreWriter

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


def _delivered(outbox_id: int, at: datetime) -> WriteFn[None]:
    def write(cursor: duckdb.DuckDBPyConnection) -> None:
        cursor.execute(
            "UPDATE alert_outbox SET delivered_at = $at, attempts = attempts + 1 "
            "WHERE id = $id AND delivered_at IS NULL",
            {"at": at, "id": outbox_id},
        )

    return write


def _retry_later(outbox_id: int, at: datetime, error: str) -> WriteFn[None]:
    def write(cursor: duckdb.DuckDBPyConnection) -> None:
        cursor.execute(
            "UPDATE alert_outbox SET attempts = attempts + 1, next_attempt_at = $at, "
            "last_error = $error WHERE id = $id AND delivered_at IS NULL",
            {"at": at, "error": error[:500], "id": outbox_id},
        )

    return write


def deliver_pending(
    cursor: duckdb.DuckDBPyConnection,
    writer: StoreWriter,
    url: str,
    *,
    client: httpx.Client,
    now: datetime | None = None,
) -> DeliveryRound:
    """Send every due notification (read on ``cursor``, a reader's), recording each outcome
    through ``writer``; returns what happened.

    Raises:
        StoreError: an outcome could not be recorded (the round stops there; a notification
            delivered but not marked is sent again next round).
    """
    now = now or datetime.now(UTC)
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
            writer.execute_write_fn(_delivered(outbox_id, datetime.now(UTC))).result()
            result.delivered += 1
            continue
        retry_at = now + backoff(attempts + 1)
        writer.execute_write_fn(_retry_later(outbox_id, retry_at, error)).result()
        result.failed += 1
        result.error = error
        log.warning("alert webhook %s failed (attempt %d): %s", url, attempts + 1, error)
        break
    return result
