"""``/api/v1/alerts``: the alert states and history the server keeps, and dry runs.

The server owns alert state: only its periodic round evaluates and records. A dry run evaluates
rules (the server's, or a rules file sent in the body) against the stored states and says what
an evaluation would change, writing nothing.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool

from alerts.evaluator import Evaluator
from alerts.rules import AlertConfig, load_alert_config
from alerts.state import STATES, alert_history, alert_states
from analytics.analyses import json_ready
from analytics.errors import AnalyticsError
from analytics.windows import parse_instant
from api import params
from api.errors import BadRequest
from api.guard import QueryGuard
from api.routes.quarantine import next_page

_RULES_SENT = "the alert rules sent"
# the largest rules file a dry run takes (the built-in one is ~2 KB)
MAX_RULES_BYTES = 1 << 20


def router(guard: QueryGuard, rules: AlertConfig, *, dashboards_url: str = "") -> APIRouter:
    routes = APIRouter(prefix="/api/v1/alerts", tags=["alerts"])

    @routes.get("", summary="Every alert instance and its state, firing first")
    def states(
        request: Request,
        state: Annotated[str | None, Query(description=", ".join(STATES))] = None,
        rule: str | None = None,
    ) -> list[dict[str, Any]]:
        params.only(request, ("state", "rule"))
        if state is not None and state not in STATES:
            raise BadRequest(f"state {state!r} is not one of {', '.join(STATES)}")
        rows = guard.run(lambda session: alert_states(session.cursor(), state=state, rule=rule))
        return list(json_ready(rows))

    @routes.get("/history", summary="State transitions, newest first")
    def history(
        request: Request,
        start: Annotated[str | None, Query(alias="from")] = None,
        end: Annotated[str | None, Query(alias="to")] = None,
        rule: str | None = None,
        limit: int | None = None,
        offset: int | None = None,
    ) -> dict[str, Any]:
        params.only(request, (*params.WINDOW_PARAMS, "rule", "limit", "offset"))
        window = params.window(start, end)
        size, first = params.page(limit, offset, guard.limits.page_max)
        rows = guard.run(
            lambda session: alert_history(
                session.cursor(), window, rule=rule, limit=size, offset=first
            )
        )
        return {"transitions": json_ready(rows), "next": next_page(request, first, size, len(rows))}

    @routes.post(
        "/dry-run",
        summary="What an evaluation would do now, writing nothing",
        description="Evaluates the server's alert rules, or the rules file (TOML) sent as the "
        "body, at `at` (default now) against the stored alert states: the transitions and "
        "notifications an evaluation would record and queue. Nothing is written.",
        openapi_extra={
            "requestBody": {
                "required": False,
                "content": {"application/toml": {"schema": {"type": "string"}}},
            }
        },
    )
    async def dry_run(
        request: Request,
        at: Annotated[str | None, Query(description="ISO-8601 instant, now, now-1h")] = None,
    ) -> dict[str, Any]:
        params.only(request, ("at",))
        body = await _read_rules(request)
        try:
            when = parse_instant(at) if at else None
            config = load_alert_config(_RULES_SENT, text=body.decode("utf-8")) if body else rules
        except (AnalyticsError, UnicodeDecodeError) as exc:
            raise BadRequest(f"{exc}") from exc

        return await run_in_threadpool(
            guard.run,
            lambda session: (
                Evaluator(session, config, dashboards_url=dashboards_url)
                .evaluate(when, dry_run=True)
                .as_dict()
            ),
        )

    return routes


async def _read_rules(request: Request) -> bytes:
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_RULES_BYTES:
            raise BadRequest(f"the alert rules sent are over {MAX_RULES_BYTES:,} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
