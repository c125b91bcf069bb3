from typing import Any

def canonical_logs(
    body: bytes,
    max_records: int,
    max_attributes: int,
    max_string_bytes: int,
    max_depth: int,
    max_key_bytes: int,
    /,
) -> list[dict[str, Any]] | None: ...
