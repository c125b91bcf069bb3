"""``/api/v1/contracts/preview``: what proposed contracts would have done to stored traffic.

The caller sends the proposed contract files (the CLI reads them from a directory); the server
checks the stored and quarantined records of the range against them and writes nothing, so a
read token is enough.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool

from analytics.contract_preview import DEFAULT_EXAMPLES, preview_contracts
from api import params
from api.errors import BadRequest
from api.guard import QueryGuard
from contracts import build_registry

# a contract set is a few dozen small files; the shipped one is ~20 KB
MAX_CONTRACTS_BYTES = 4 << 20
_MAX_EXAMPLES = 100


async def read_body(request: Request, limit: int, what: str) -> bytes:
    """The request body, refused (400) past ``limit`` bytes."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BadRequest(f"{what} are over {limit:,} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def contract_files(body: bytes) -> list[tuple[str, Any]]:
    """``{"schemas": [{"path": ..., "schema": {...}}, ...]}`` → (path, schema) pairs."""
    try:
        document = json.loads(body)
        files = [(str(entry["path"]), entry["schema"]) for entry in document["schemas"]]
    except (ValueError, KeyError, TypeError) as exc:
        raise BadRequest(
            'send the proposed contracts as {"schemas": [{"path": "<file>", "schema": {...}}]} '
            f"(application/json): {exc}"
        ) from exc
    if not files:
        raise BadRequest("the proposed contract set is empty")
    return files


def router(guard: QueryGuard) -> APIRouter:
    routes = APIRouter(prefix="/api/v1/contracts", tags=["contracts"])

    @routes.post(
        "/preview",
        summary="Re-check stored and quarantined records against proposed contracts",
        description="Per service and contract: how many accepted records of the range the "
        "proposed contracts would reject (with the first examples and their JSON pointers) and "
        "how many quarantined ones would pass. Body: "
        '`{"schemas": [{"path": "<file>", "schema": {...}}]}`. Writes nothing.',
    )
    async def preview(
        request: Request,
        start: Annotated[str | None, Query(alias="from")] = None,
        end: Annotated[str | None, Query(alias="to")] = None,
        service: str | None = None,
        examples: int = DEFAULT_EXAMPLES,
    ) -> dict[str, Any]:
        params.only(request, (*params.WINDOW_PARAMS, "service", "examples"))
        window = params.window(start, end)
        if not 0 <= examples <= _MAX_EXAMPLES:
            raise BadRequest(f"examples {examples} is not between 0 and {_MAX_EXAMPLES}")
        files = contract_files(await read_body(request, MAX_CONTRACTS_BYTES, "the contracts sent"))
        registry = await run_in_threadpool(build_registry, files)
        return await run_in_threadpool(
            guard.run,
            lambda session: preview_contracts(
                session.cursor(), registry, window, service=service, examples=examples
            ).as_dict(),
        )

    return routes
