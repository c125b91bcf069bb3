"""Content-Encoding: identity or gzip, inflated with a hard bound so a gzip bomb stops early."""

from __future__ import annotations

import zlib

from ingest.errors import MalformedRequest, PayloadTooLarge, UnsupportedEncoding
from ingest.limits import Limits

_CHUNK = 1 << 20


def decompress(body: bytes, content_encoding: str | None, limits: Limits) -> bytes:
    """The body as the sender encoded it before compression.

    Inflates in 1 MiB steps and stops one byte past ``limits.max_decompressed_bytes``, so a
    small body that would inflate to gigabytes costs at most the limit in memory.
    """
    encoding = (content_encoding or "identity").strip().lower()
    if encoding in ("identity", ""):
        return body
    if encoding != "gzip":
        raise UnsupportedEncoding(content_encoding or "")
    limit = limits.max_decompressed_bytes
    inflater = zlib.decompressobj(wbits=31)  # 31: gzip header and trailer
    parts: list[bytes] = []
    size = 0
    pending = body
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
    return b"".join(parts)
