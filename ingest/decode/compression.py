"""Content-Encoding: identity or gzip, inflated with a hard bound so a gzip bomb stops early.

A gzip body may hold several members one after the other (RFC 1952 2.2; what ``cat a.gz b.gz``
makes, and how OPA's uploads and Go's reader treat a stream): every member is inflated and their
contents joined, as ``gzip -d`` and Python's ``gzip.decompress`` do, up to
:data:`MAX_GZIP_MEMBERS`. Anything after the last member that is not another member (trailing
garbage, zero padding) makes the body malformed: a body is either read whole or refused.
"""

from __future__ import annotations

import zlib

from ingest.errors import MalformedRequest, PayloadTooLarge, UnsupportedEncoding
from ingest.limits import Limits

_CHUNK = 1 << 20
_GZIP_MAGIC = b"\x1f\x8b"
# Each member costs a new inflater: bound their number.
MAX_GZIP_MEMBERS = 64


def decompress(body: bytes, content_encoding: str | None, limits: Limits) -> bytes:
    """The body as the sender encoded it before compression.

    Inflates in 1 MiB steps and stops one byte past ``limits.max_decompressed_bytes`` (counted
    over all members), so a small body that would inflate to gigabytes costs at most the limit
    in memory.

    Raises:
        UnsupportedEncoding: not gzip or identity.
        MalformedRequest: a corrupt or truncated member, more than :data:`MAX_GZIP_MEMBERS`
            members, or bytes after the last member.
        PayloadTooLarge: the inflated body passes the limit.
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
            raise MalformedRequest(
                "gzip",
                f"more than {MAX_GZIP_MEMBERS} gzip members; compress the body as one member "
                f"(or at most {MAX_GZIP_MEMBERS})",
            )
        size, pending = _inflate_member(pending, parts, size, limit, members)
        if not pending:
            return b"".join(parts)
        if not pending.startswith(_GZIP_MAGIC):
            raise MalformedRequest(
                "gzip",
                f"{len(pending)} bytes after gzip member {members} are not another gzip member "
                f"(starting {pending[:8].hex()}); send the compressed body alone",
            )


def _inflate_member(
    data: bytes, parts: list[bytes], size: int, limit: int, number: int
) -> tuple[int, bytes]:
    """Inflate the gzip member at the start of ``data`` into ``parts``; returns the new total
    size and the bytes after the member."""
    inflater = zlib.decompressobj(wbits=31)  # 31: gzip header and trailer
    pending = data
    try:
        while True:
            part = inflater.decompress(pending, min(_CHUNK, limit + 1 - size))
            size += len(part)
            parts.append(part)
            if size > limit:
                raise PayloadTooLarge(limit=limit, received=size, stage="decompressed")
            pending = inflater.unconsumed_tail
            if not pending or inflater.eof:
                break
        tail = inflater.flush()
    except zlib.error as exc:
        raise MalformedRequest("gzip", f"corrupt gzip member {number} ({exc})") from exc
    size += len(tail)
    if size > limit:
        raise PayloadTooLarge(limit=limit, received=size, stage="decompressed")
    if not inflater.eof:
        raise MalformedRequest("gzip", f"gzip member {number} is truncated")
    parts.append(tail)
    return size, inflater.unused_data
