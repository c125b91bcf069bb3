"""Attribute values nested past the depth limit, cut short so the parsers can read the request.

An ``AnyValue`` holding an array or key-value list holding another ``AnyValue`` ... is two
protobuf messages per level, and both parsers refuse a message nested past 100 levels (upb
on the wire, ``json_format`` in OTLP/JSON): a request with one attribute value nested 50 deep
would be refused as a whole, although the record limit (``max_value_depth``) says that record
alone is to be quarantined. When a body does not parse, it is read again here and every array
or key-value list inside an ``AnyValue`` at the limit depth is emptied (the value keeps its
kind): the request then parses, the record's converter still finds an array or list at the
limit depth and rejects the record with the usual reason, and its neighbours are stored.

Only bodies that failed to parse come here, so the cost (a walk over the body in Python) is
paid by the hostile ones.
"""

from __future__ import annotations

from typing import Any

from google.protobuf.descriptor import Descriptor

_ANY_VALUE = "opentelemetry.proto.common.v1.AnyValue"
# AnyValue fields whose message holds further AnyValues: array_value, kvlist_value
_NESTED_FIELDS = frozenset({5, 6})
_JSON_NESTED_KEYS = frozenset({"arrayValue", "array_value", "kvlistValue", "kvlist_value"})
_WT_VARINT, _WT_I64, _WT_LEN, _WT_I32 = 0, 1, 2, 5


class _Malformed(Exception):
    """The wire bytes are not a protobuf message: the original parse error stands."""


def _varint(data: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if at >= len(data) or shift > 63:
            raise _Malformed
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, at
        shift += 7


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _reaches_any_value(descriptor: Descriptor, seen: set[str] | None = None) -> bool:
    """Whether a message of this type can hold an AnyValue (only those are walked)."""
    if descriptor.full_name == _ANY_VALUE:
        return True
    seen = seen if seen is not None else set()
    if descriptor.full_name in seen:
        return False
    seen.add(descriptor.full_name)
    return any(
        f.message_type is not None and _reaches_any_value(f.message_type, seen)
        for f in descriptor.fields
    )


class _WirePruner:
    """Copies a message, emptying arrays and lists of AnyValues at ``max_depth``."""

    def __init__(self, max_depth: int) -> None:
        self.max_depth = max_depth
        self.changed = False
        self._walk: dict[str, bool] = {}

    def _walks(self, descriptor: Descriptor) -> bool:
        known = self._walk.get(descriptor.full_name)
        if known is None:
            known = self._walk[descriptor.full_name] = _reaches_any_value(descriptor)
        return known

    def message(self, data: bytes, descriptor: Descriptor, depth: int) -> bytes:
        """``data`` re-encoded; ``depth`` counts the AnyValues around it (itself included)."""
        out = bytearray()
        at = 0
        is_any_value = descriptor.full_name == _ANY_VALUE
        while at < len(data):
            start = at
            tag, at = _varint(data, at)
            number, wire_type = tag >> 3, tag & 7
            if wire_type == _WT_VARINT:
                _, at = _varint(data, at)
            elif wire_type == _WT_I64:
                at += 8
            elif wire_type == _WT_I32:
                at += 4
            elif wire_type == _WT_LEN:
                length, body_at = _varint(data, at)
                end = body_at + length
                if end > len(data):
                    raise _Malformed
                field = descriptor.fields_by_number.get(number)
                inner = field.message_type if field is not None else None
                if inner is not None:
                    payload = data[body_at:end]
                    if is_any_value and number in _NESTED_FIELDS and depth >= self.max_depth:
                        self.changed = True
                        # an empty array or list: the value keeps its kind
                        out += _encode_varint(tag) + b"\x00"
                        at = end
                        continue
                    if self._walks(inner):
                        inner_depth = depth + (inner.full_name == _ANY_VALUE)
                        payload = self.message(payload, inner, inner_depth)
                        out += _encode_varint(tag) + _encode_varint(len(payload)) + payload
                        at = end
                        continue
                at = end
            else:
                raise _Malformed
            if at > len(data):
                raise _Malformed
            out += data[start:at]
        return bytes(out)


def prune_wire(body: bytes, descriptor: Descriptor, max_depth: int) -> bytes | None:
    """The body with values past ``max_depth`` emptied, or None when nothing was cut (or the
    bytes are not a protobuf message at all)."""
    pruner = _WirePruner(max_depth)
    try:
        pruned = pruner.message(body, descriptor, 0)
    except (_Malformed, RecursionError):
        return None
    return pruned if pruner.changed else None


def prune_json(document: Any, max_depth: int) -> bool:
    """Empty, in place, every OTLP/JSON array or kvlist value at ``max_depth``; True if any.

    Raises:
        RecursionError: the document is nested too deeply outside attribute values.
    """
    return _prune_json(document, max_depth, 0)


def _prune_json(node: Any, max_depth: int, depth: int) -> bool:
    changed = False
    if isinstance(node, dict):
        nested = _JSON_NESTED_KEYS.intersection(node)
        if nested:
            depth += 1  # this object is an AnyValue
            if depth >= max_depth:
                for key in nested:
                    node[key] = {}
                return True
        for value in node.values():
            changed |= _prune_json(value, max_depth, depth)
    elif isinstance(node, list):
        for item in node:
            changed |= _prune_json(item, max_depth, depth)
    return changed
