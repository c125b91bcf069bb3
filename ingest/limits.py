"""Limits on what one request and one record may hold.

Request-level limits (body size, inflated size, record count) refuse the whole request with 413.
Record-level limits (attribute count, key and value length, nesting depth) reject only the record
that breaks them: it is quarantined with the reason and counted in the partial success.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Limits:
    """Every limit, with the default the server uses."""

    max_body_bytes: int = 16 * 2**20
    """Largest request body as sent (compressed), in bytes."""
    max_decompressed_bytes: int = 64 * 2**20
    """Largest body after gzip inflation; a gzip bomb is stopped here."""
    max_records_per_request: int = 100_000
    """Most log records, spans or metric data points in one request."""
    max_attributes_per_record: int = 256
    """Most attributes (resource + record) on one record."""
    max_attribute_value_bytes: int = 64 * 1024
    """Longest string attribute value, in bytes of UTF-8."""
    max_attribute_key_bytes: int = 1024
    """Longest attribute key (resource, record or inside a kvlist value), in bytes of UTF-8."""
    max_value_depth: int = 8
    """Deepest nesting of array/kvlist attribute values (a flat value is depth 1)."""
