"""Export formats: Arrow record batches → the bytes of one format, chunk by chunk.

Each encoder takes the batches as they come from DuckDB and yields bytes as soon as a batch is
written (a Parquet row group, an Arrow IPC message, CSV or NDJSON lines), so an export streams
with one batch in memory. The same encoders write `flaglens export` files, so an export read
through the API and one written from a stopped database are the same bytes.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Iterator
from typing import Literal, get_args

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from analytics.exports import Shape

Format = Literal["ndjson", "csv", "arrow", "parquet"]
FORMATS: tuple[Format, ...] = get_args(Format)
MEDIA_TYPES: dict[Format, str] = {
    "ndjson": "application/x-ndjson",
    "csv": "text/csv; charset=utf-8",
    "arrow": "application/vnd.apache.arrow.stream",
    "parquet": "application/vnd.apache.parquet",
}
# the rows' projection each format needs (analytics.exports.Shape)
SHAPES: dict[Format, Shape] = {"ndjson": "json", "csv": "flat", "arrow": "typed",
                               "parquet": "typed"}  # fmt: skip
SUFFIXES: dict[Format, str] = {"ndjson": ".ndjson", "csv": ".csv", "arrow": ".arrow",
                               "parquet": ".parquet"}  # fmt: skip


class _Chunks(io.RawIOBase):
    """A write-only file that keeps what was written until it is drained."""

    def __init__(self) -> None:
        super().__init__()
        self._parts: list[bytes] = []
        self._position = 0

    def writable(self) -> bool:
        return True

    def write(self, data: object) -> int:
        chunk = bytes(data)  # type: ignore[call-overload]
        self._parts.append(chunk)
        self._position += len(chunk)
        return len(chunk)

    def tell(self) -> int:
        return self._position

    def drain(self) -> bytes:
        data, self._parts = b"".join(self._parts), []
        return data


Writer = Callable[[io.RawIOBase, pa.Schema], object]


def _writer_format(
    open_writer: Writer, write: Callable[[object, pa.RecordBatch], None]
) -> Callable[[pa.Schema, Iterable[pa.RecordBatch]], Iterator[bytes]]:
    def encode(schema: pa.Schema, batches: Iterable[pa.RecordBatch]) -> Iterator[bytes]:
        sink = _Chunks()
        writer = open_writer(sink, schema)
        for batch in batches:
            write(writer, batch)
            chunk = sink.drain()
            if chunk:
                yield chunk
        writer.close()  # type: ignore[attr-defined]
        chunk = sink.drain()
        if chunk:
            yield chunk

    return encode


def _ndjson(schema: pa.Schema, batches: Iterable[pa.RecordBatch]) -> Iterator[bytes]:
    for batch in batches:
        lines = batch.column(0).to_pylist()
        if lines:
            yield ("\n".join(lines) + "\n").encode()


ENCODERS: dict[Format, Callable[[pa.Schema, Iterable[pa.RecordBatch]], Iterator[bytes]]] = {
    "ndjson": _ndjson,
    "csv": _writer_format(pa_csv.CSVWriter, lambda w, b: w.write_batch(b)),  # type: ignore[attr-defined]
    "arrow": _writer_format(pa.ipc.new_stream, lambda w, b: w.write_batch(b)),  # type: ignore[attr-defined]
    "parquet": _writer_format(pq.ParquetWriter, lambda w, b: w.write_batch(b)),  # type: ignore[attr-defined]
}


def encode(fmt: Format, schema: pa.Schema, batches: Iterable[pa.RecordBatch]) -> Iterator[bytes]:
    """The bytes of ``batches`` in ``fmt``, a chunk per batch (plus header and footer)."""
    return ENCODERS[fmt](schema, batches)


def negotiate(explicit: str | None, accept: str | None) -> Format:
    """The export format: ``format=`` when given, else the first ``Accept`` media type the API
    writes; NDJSON when neither says. Raises ValueError naming what is supported."""
    if explicit:
        if explicit not in FORMATS:
            raise ValueError(f"format {explicit!r} is not one of {', '.join(FORMATS)}")
        return explicit
    if not accept:
        return "ndjson"
    by_media = {media.split(";")[0]: fmt for fmt, media in MEDIA_TYPES.items()}
    by_media["application/json"] = "ndjson"
    wildcard = False
    for part in accept.split(","):
        media = part.split(";")[0].strip().lower()
        if media in by_media:
            return by_media[media]
        wildcard = wildcard or media in ("*/*", "application/*")
    if wildcard:
        return "ndjson"
    raise ValueError(
        f"Accept {accept!r} names no format exports are written in; accept one of "
        f"{', '.join(m.split(';')[0] for m in MEDIA_TYPES.values())} or pass format="
    )
