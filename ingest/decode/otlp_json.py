"""OTLP/JSON bodies → Export*ServiceRequest messages.

OTLP/JSON differs from the protobuf JSON mapping in one way that matters: trace and span ids are
hex strings, not base64. They are converted before the standard parser runs; unknown fields are
ignored, as the specification requires.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import orjson
from google.protobuf import json_format

from ingest.decode.depth import prune_json
from ingest.decode.otlp_proto import REQUEST_TYPES
from ingest.errors import MalformedRequest

_ID_FIELDS = frozenset(
    {"traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id"}
)


def _hex_ids_to_base64(node: Any) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in _ID_FIELDS and isinstance(value, str):
                try:
                    node[key] = base64.b64encode(bytes.fromhex(value)).decode()
                except ValueError as exc:
                    raise MalformedRequest("json", f"{key} {value[:40]!r} is not hex") from exc
            else:
                _hex_ids_to_base64(value)
    elif isinstance(node, list):
        for item in node:
            _hex_ids_to_base64(item)


def decode_json(signal: str, body: bytes, max_value_depth: int | None = None) -> Any:
    """Parse an OTLP/JSON body into the request message of its signal.

    With ``max_value_depth``, attribute values nested deeper are cut at that depth before
    parsing (:mod:`ingest.decode.depth`), so their records are quarantined rather than the
    request refused by the parser's own nesting limit.
    """
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise MalformedRequest("json", f"not valid JSON ({exc})") from exc
    if not isinstance(document, dict):
        raise MalformedRequest("json", f"expected a JSON object, got {type(document).__name__}")
    message = REQUEST_TYPES[signal]()
    try:
        if max_value_depth is not None:
            prune_json(document, max_value_depth)
        _hex_ids_to_base64(document)
        json_format.ParseDict(document, message, ignore_unknown_fields=True)
    except RecursionError as exc:
        raise MalformedRequest("json", "values are nested too deeply") from exc
    except (json_format.ParseError, binascii.Error, TypeError, ValueError) as exc:
        raise MalformedRequest("json", str(exc)) from exc
    return message
