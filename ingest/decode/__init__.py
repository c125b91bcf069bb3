"""OTLP request bodies → messages → canonical records, and the answers sent back."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ingest.decode.canonical import CanonicalRecord, SpanRow, canonical_logs, canonical_traces
from ingest.decode.compression import decompress
from ingest.decode.otlp_json import decode_json
from ingest.decode.otlp_proto import decode_protobuf
from ingest.decode.responses import encode_export_response, encode_status, export_response
from ingest.errors import UnsupportedMediaType
from ingest.limits import Limits

# media type → parser of a (decompressed) body for a signal
DECODERS: dict[str, Callable[[str, bytes], Any]] = {
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
    return decoder(signal, decompress(body, content_encoding, limits))


__all__ = [
    "DECODERS",
    "SUPPORTED_MEDIA_TYPES",
    "CanonicalRecord",
    "SpanRow",
    "canonical_logs",
    "canonical_traces",
    "decode_request",
    "encode_export_response",
    "encode_status",
    "export_response",
    "media_type",
]
