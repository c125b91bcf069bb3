"""OTLP request bodies → messages → canonical records, and the answers sent back."""

from __future__ import annotations

from typing import Any, Protocol

from ingest.decode.canonical import CanonicalRecord, SpanRow, canonical_logs, canonical_traces
from ingest.decode.compression import decompress
from ingest.decode.otlp_json import decode_json
from ingest.decode.otlp_proto import decode_protobuf
from ingest.decode.responses import encode_export_response, encode_status, export_response
from ingest.errors import UnsupportedMediaType
from ingest.limits import Limits

try:
    from ingest.decode._logs_pb import canonical_logs as compiled_logs
except ImportError:  # pragma: no cover - installed where no C compiler was found
    compiled_logs = None  # type: ignore[assignment]  # every request takes the Python path
"""The compiled protobuf logs decoder, or None when the extension could not be built."""


class Decoder(Protocol):
    """Parses a (decompressed) body of a signal into its request message."""

    def __call__(self, signal: str, body: bytes, max_value_depth: int | None = None) -> Any: ...


# media type → parser of a (decompressed) body for a signal
DECODERS: dict[str, Decoder] = {
    "application/x-protobuf": decode_protobuf,
    "application/json": decode_json,
}
SUPPORTED_MEDIA_TYPES = tuple(DECODERS)


def media_type(content_type: str | None) -> str:
    """The bare, lower-case media type of a Content-Type header value."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def decode_request(
    signal: str, body: bytes, *, content_type: str, content_encoding: str | None, limits: Limits
) -> Any:
    """Decompress and parse one export request body.

    Raises:
        UnsupportedMediaType, UnsupportedEncoding, PayloadTooLarge, MalformedRequest.
    """
    decoder = DECODERS.get(media_type(content_type))
    if decoder is None:
        raise UnsupportedMediaType(content_type or None, SUPPORTED_MEDIA_TYPES)
    return decoder(signal, decompress(body, content_encoding, limits), limits.max_value_depth)


def decode_logs(
    body: bytes, *, content_type: str, content_encoding: str | None, limits: Limits
) -> list[CanonicalRecord]:
    """Decompress and parse an ExportLogsServiceRequest body straight to canonical records.

    Protobuf bodies go through the compiled decoder (:mod:`ingest.decode._logs_pb`); when it
    declines (a malformed body, a record over a limit, a rare protobuf feature), or for JSON,
    the body is parsed into a message and converted by :func:`canonical_logs`, which gives the
    exact error or per-record problem.

    Raises:
        UnsupportedMediaType, UnsupportedEncoding, PayloadTooLarge, MalformedRequest.
    """
    decoder = DECODERS.get(media_type(content_type))
    if decoder is None:
        raise UnsupportedMediaType(content_type or None, SUPPORTED_MEDIA_TYPES)
    raw = decompress(body, content_encoding, limits)
    if decoder is decode_protobuf and compiled_logs is not None:
        records = compiled_logs(
            raw,
            limits.max_records_per_request,
            limits.max_attributes_per_record,
            limits.max_attribute_value_bytes,
            limits.max_value_depth,
            limits.max_attribute_key_bytes,
        )
        if records is not None:
            return [CanonicalRecord(record) for record in records]
    return canonical_logs(decoder("logs", raw, limits.max_value_depth), limits)


__all__ = [
    "DECODERS",
    "SUPPORTED_MEDIA_TYPES",
    "CanonicalRecord",
    "SpanRow",
    "canonical_logs",
    "canonical_traces",
    "decode_logs",
    "decode_request",
    "encode_export_response",
    "encode_status",
    "export_response",
    "media_type",
]
