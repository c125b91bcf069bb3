"""``/api/v1/exports``: the stored rows of one table over a time range and filters, streamed.

The rows are counted first: an export past the cap is refused (413) before a byte is sent,
unless ``limit=`` asks for its first rows. Then they stream in batches as NDJSON, CSV, Arrow IPC
or Parquet (``format=``, else the ``Accept`` header), each batch read under the query time
limit, the read slot held until the last byte is sent.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import ExitStack
from typing import Annotated, Any

import pyarrow as pa
from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import StreamingResponse
from starlette.types import Message, Receive, Scope, Send

from analytics.errors import AnalyticsError
from analytics.exports import EXPORT_TABLES, ExportQuery, count_rows, export_reader
from api import params
from api.errors import BadRequest, ExportTooLarge, NotAcceptable, NotFound
from api.formats import MEDIA_TYPES, SHAPES, SUFFIXES, encode, negotiate
from api.guard import QueryGuard, Watch, timed


class ExportResponse(StreamingResponse):
    """Streams ``chunks`` (read in a worker thread, one at a time) and then calls ``release``,
    however the response ends: sent, client gone, or failed. When the client goes, ``interrupt``
    stops the query at once (the batch being read would otherwise finish first)."""

    def __init__(
        self,
        chunks: Iterator[bytes],
        release: Callable[[], None],
        interrupt: Callable[[], None],
        **kwargs: Any,
    ) -> None:
        self._chunks = chunks
        self._release = release
        self._interrupt = interrupt
        super().__init__(self._stream(), **kwargs)

    async def _stream(self) -> AsyncIterator[bytes]:
        while True:
            chunk = await run_in_threadpool(next, self._chunks, None)
            if chunk is None:
                return
            yield chunk

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def watched() -> Message:
            message = await receive()
            if message["type"] == "http.disconnect":
                self._interrupt()
            return message

        try:
            await super().__call__(scope, watched, send)
        finally:
            self._release()


def _batches(
    reader: pa.RecordBatchReader, watch: Watch, seconds: float
) -> Iterator[pa.RecordBatch]:
    while True:
        try:
            batch = timed(watch, seconds, reader.read_next_batch)
        except StopIteration:
            return
        yield batch


def router(guard: QueryGuard) -> APIRouter:
    routes = APIRouter(prefix="/api/v1/exports", tags=["exports"])

    @routes.get("", summary="The tables exports read, and the filters each takes")
    def tables(request: Request) -> dict[str, Any]:
        params.only(request, ())
        return {
            "exports": {
                name: {"filters": ["from", "to", *spec.filters]}
                for name, spec in EXPORT_TABLES.items()
            },
            "formats": {fmt: media for fmt, media in MEDIA_TYPES.items()},
            "max_rows": guard.limits.export_max_rows,
        }

    @routes.get(
        "/{table}",
        summary="Stream the rows of one table",
        description="Rows in the order they were stored. `format` (ndjson, csv, arrow, "
        "parquet) or the `Accept` header picks the format (NDJSON when neither says). "
        "Refused with 413 when more rows match than the server's cap, unless `limit` asks "
        "for the first rows. Filters: see GET /api/v1/exports.",
        response_class=StreamingResponse,
        responses={200: {"content": {media: {} for media in MEDIA_TYPES.values()}}},
    )
    def export(
        request: Request,
        table: str,
        start: Annotated[str | None, Query(alias="from")] = None,
        end: Annotated[str | None, Query(alias="to")] = None,
        limit: Annotated[int | None, Query(description="send at most this many rows")] = None,
        format: Annotated[str | None, Query(description="ndjson, csv, arrow or parquet")] = None,
    ) -> StreamingResponse:
        spec = EXPORT_TABLES.get(table)
        if spec is None:
            raise NotFound(f"no export {table!r}; exports are: {', '.join(EXPORT_TABLES)}")
        params.only(request, (*params.WINDOW_PARAMS, "limit", "format", *spec.filters))
        filters = {k: v for k, v in request.query_params.items() if k in spec.filters}
        try:
            query = ExportQuery(table, params.window(start, end), filters)
            fmt = negotiate(format, request.headers.get("accept"))
        except AnalyticsError as exc:
            raise BadRequest(str(exc)) from exc
        except ValueError as exc:
            if format:
                raise BadRequest(str(exc)) from exc
            raise NotAcceptable(str(exc)) from exc
        cap = guard.limits.export_max_rows
        if limit is not None and not 1 <= limit <= cap:
            raise BadRequest(f"limit {limit} is not between 1 and the export cap {cap:,}")
        timeout = guard.limits.query_timeout
        with ExitStack() as stack:
            watch = stack.enter_context(guard.slot())
            rows = timed(watch, timeout, lambda: count_rows(watch.cursor(), query))
            if limit is None and rows > cap:
                raise ExportTooLarge(table, rows, cap)
            sent = min(rows, limit or cap)
            reader = timed(
                watch, timeout,
                lambda: export_reader(watch.cursor(), query, limit=sent, shape=SHAPES[fmt],
                                      batch_rows=guard.limits.export_batch_rows),
            )  # fmt: skip
            chunks = encode(fmt, reader.schema, _batches(reader, watch, timeout))
            release = stack.pop_all().close
        return ExportResponse(
            chunks,
            release,
            watch.interrupt,
            media_type=MEDIA_TYPES[fmt],
            headers={
                "X-Flaglens-Rows": str(sent),
                "Content-Disposition": f'attachment; filename="{table}{SUFFIXES[fmt]}"',
            },
        )

    return routes
