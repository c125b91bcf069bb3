"""How much the read API does at once, for how long, and how many rows it sends.

The values come from the server's settings (``--api-*`` flags); these are their defaults.
"""

from __future__ import annotations

from dataclasses import dataclass

from analytics.exports import DEFAULT_BATCH_ROWS


@dataclass(frozen=True, slots=True)
class ApiLimits:
    query_timeout: float = 10.0
    """Seconds one query (an analysis, a report, one export batch) may run before it is
    interrupted and answered 503."""
    max_concurrent: int = 2
    """Reads that run at once; the rest wait for a slot."""
    slot_wait: float = 5.0
    """Seconds a read waits for a slot before it is answered 503 busy."""
    export_max_rows: int = 1_000_000
    """Most rows one export sends."""
    export_batch_rows: int = DEFAULT_BATCH_ROWS
    """Rows per streamed batch (an Arrow record batch, a Parquet row group)."""
    page_max: int = 1000
    """Most records one page of quarantine or alert history holds."""
    nice: int = 10
    """Nice value of the threads that run reads (0: the same priority as ingest)."""
