"""Content-Encoding: identity or gzip, inflated with a hard bound so a gzip bomb stops early."""

from __future__ import annotations

import zlib

from ingest.errors import MalformedRequest, PayloadTooLarge, UnsupportedEncoding
from ingest.limits import Limits

_CHUNK = 1 << 20
# A gzip body may be several members one after another (RFC 1952 2.2; Go's reader and OPA's
# uploads read them as one stream). Each member costs a new inflater: bound their number.
MAX_GZIP_MEMBERS = 64


def decompress(body: bytes, content_encoding: str | None, limits: Limits) -> bytes:
    """The body as the sender encoded it before compression.

    Inflates in 1 MiB steps and stops one byte past ``limits.max_decompressed_bytes``, so a
    small body that would inflate to gigabytes costs at most the limit in memory. Concatenated
    gzip members are inflated in turn (at most :data:`MAX_GZIP_MEMBERS`); bytes after the last
    member that do not start another one are an error, never silently dropped.
    """
    encoding = (content_encoding or "identity").strip().lower()
    if encoding in ("identity", ""):
        return body
    if encoding != "gzip":
        raise UnsupportedEncoding(content_encoding or "")
    limit = limits.max_decompressed_bytes
    parts: list[bytes] = []
    size = 0
    pending = body
    members = 0
    while True:
        members += 1
        if members > MAX_GZIP_MEMBERS:
            raise MalformedRequest("gzip", f"more than {MAX_GZIP_MEMBERS} gzip members")
        inflater = zlib.decompressobj(wbits=31)  # 31: gzip header and trailer
        try:
            while True:
                part = inflater.decompress(pending, min(_CHUNK, limit + 1 - size))
                size += len(part)
                parts.append(part)
                if size > limit:
                    raise PayloadTooLarge(limit=limit, received=size, stage="decompressed")
                pending = inflater.unconsumed_tail
                if not pending:
                    break
            tail = inflater.flush()
        except zlib.error as exc:
            raise MalformedRequest("gzip", f"corrupt gzip stream ({exc})") from exc
        size += len(tail)
        if size > limit:
            raise PayloadTooLarge(limit=limit, received=size, stage="decompressed")
        if not inflater.eof:
            raise MalformedRequest("gzip", "gzip stream is truncated")
        parts.append(tail)
        pending = inflater.unused_data
        if not pending:
            return b"".join(parts)
        if not pending.startswith(b"\x1f\x8b"):
            raise MalformedRequest(
                "gzip", f"{len(pending)} bytes after the gzip stream are not another gzip member"
            )
