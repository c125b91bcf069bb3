"""The administrative endpoints of `flaglens serve`, under ``/api/v1/admin`` on the read listener.

They change what the server does, so they take an ``admin`` token (with auth on; without a
token file the server listens on loopback only, as for everything else):

- ``POST /api/v1/admin/contracts/reload``: load, lint and swap in the contracts (as SIGHUP).
- ``POST /api/v1/admin/quarantine/replay``: release the quarantined records that pass the
  loaded contracts, through the server's own writer.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from analytics.errors import AnalyticsError
from analytics.windows import parse_instant
from api import token_of
from api.errors import ApiError, BadRequest, Forbidden, Unauthenticated
from ingest.auth import TokenRing
from ingest.errors import Unauthenticated as UnknownToken
from ingest.reload import ReloadFailed
from ingest.replay import ReplayError, ReplaySelection, replay_quarantine
from ingest.service import IngestService

ADMIN_PREFIX = "/api/v1/admin"
_MAX_BODY = 64 << 10
_REPLAY_FIELDS = frozenset({"contract", "service", "since", "dry_run"})


class ReloadRefused(ApiError):
    """The new contracts did not load; the old ones stay."""

    status = 422
    code = "reload_failed"


def _admin(tokens: TokenRing | None, request: Request) -> str:
    """The admin token's name ('local' without auth); 401/403 otherwise."""
    if tokens is None:
        return "local"
    token = token_of(request.headers.get("authorization"))
    try:
        grant = tokens.grant_of(token or "")
    except UnknownToken as exc:
        raise Unauthenticated(f"{exc}: send an admin token") from exc
    if grant.role != "admin":
        raise Forbidden(
            f"token {grant.name!r} has role {grant.role!r}; the admin endpoints need an admin "
            "token (`flaglens auth token --role admin`)",
        )  # fmt: skip
    return grant.name


async def _json_body(request: Request) -> dict[str, Any]:
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > _MAX_BODY:
            raise BadRequest(f"the body is over {_MAX_BODY:,} bytes")
    if not body.strip():
        return {}
    try:
        document = json.loads(body)
    except ValueError as exc:
        raise BadRequest(f"the body is not JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise BadRequest("the body must be a JSON object")
    return document


def replay_selection(document: dict[str, Any]) -> tuple[ReplaySelection, bool]:
    """The replay a body asks for: ``{"contract", "service", "since", "dry_run"}``.

    Raises:
        ReplayError: a field that is not one of those, or of the wrong type.
    """
    unknown = sorted(set(document) - _REPLAY_FIELDS)
    if unknown:
        raise ReplayError(
            f"unknown field(s) {', '.join(unknown)}; a replay takes "
            f"{', '.join(sorted(_REPLAY_FIELDS))}"
        )
    for name in ("contract", "service", "since"):
        if document.get(name) is not None and not isinstance(document[name], str):
            raise ReplayError(f"{name} must be a string, got {document[name]!r}")
    dry_run = document.get("dry_run", False)
    if not isinstance(dry_run, bool):
        raise ReplayError(f"dry_run must be true or false, got {dry_run!r}")
    since: datetime | None = None
    if document.get("since"):
        try:
            since = parse_instant(document["since"])
        except AnalyticsError as exc:
            raise ReplayError(f"since: {exc}") from exc
    selection = ReplaySelection.parse(document.get("contract"), document.get("service"), since)
    return selection, dry_run


def admin_router(service: IngestService) -> APIRouter:
    routes = APIRouter(prefix=ADMIN_PREFIX, tags=["admin"])
    tokens = service.tokens

    @routes.post(
        "/contracts/reload",
        summary="Reload the contracts (as SIGHUP does)",
        description="Loads and lints the server's contracts directory and swaps it in; on "
        "failure the old contracts stay and the answer (422) and /healthz say why.",
    )
    async def reload(request: Request) -> dict[str, Any]:
        who = _admin(tokens, request)
        try:
            status = await run_in_threadpool(service.reloader.reload, f"admin endpoint ({who})")
        except ReloadFailed as exc:
            raise ReloadRefused(str(exc)) from exc
        return status.as_dict()

    @routes.post(
        "/quarantine/replay",
        summary="Release quarantined records that pass the loaded contracts",
        description='Body (JSON, every field optional): `{"contract": "NAME[@VERSION]", '
        '"service": "...", "since": "<instant>", "dry_run": false}`. The server\'s writer '
        "writes the released records; the counts come back.",
    )
    async def replay(request: Request) -> dict[str, Any]:
        who = _admin(tokens, request)
        try:
            selection, dry_run = replay_selection(await _json_body(request))
            result = await run_in_threadpool(
                lambda: replay_quarantine(
                    service.store, service.writer, service.registry, selection,
                    dry_run=dry_run, released_by=who,
                )
            )  # fmt: skip
        except ReplayError as exc:
            raise BadRequest(str(exc)) from exc
        return result.as_dict()

    return routes
