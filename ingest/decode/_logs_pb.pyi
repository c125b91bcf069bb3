from typing import Any

def canonical_logs(
    body: bytes, max_records: int, max_attributes: int, max_string_bytes: int, max_depth: int, /
) -> list[dict[str, Any]] | None: ...
