"""Storage writer throughput, in process: prepared requests straight into `StoreWriter`.

Requests of 512 decisions are decoded and checked once up front; then the writer commits them
(group commit, duplicate lookup, typed extraction, WAL, checkpoints) into a fresh database.
The run is repeated with DuckDB's stock 16 MB checkpoint threshold as the baseline, so the
ratio shows what flaglens' larger default buys as the table grows.

    .venv/bin/python benchmarks/writer.py --requests 800
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from payloads import RECORDS_PER_REQUEST, build_template, request_body  # noqa: E402

from analytics.warehouse.store import DEFAULT_CHECKPOINT_THRESHOLD, Store  # noqa: E402
from contracts import load_registry  # noqa: E402
from ingest.limits import Limits  # noqa: E402
from ingest.pipeline import IngestPipeline, RequestMeta  # noqa: E402
from ingest.writer import StoreWriter, WriteBatch  # noqa: E402


def prepared_batches(count: int) -> list[WriteBatch]:
    template = build_template()
    pipeline = IngestPipeline(load_registry(), Limits())
    batches = []
    for n in range(count):
        meta = RequestMeta(
            request_id=n + 1,
            signal="logs",
            transport="http",
            encoding="protobuf",
            compression=None,
            body_bytes=len(template),
            received_at=datetime.now(UTC),
        )
        prepared = pipeline.prepare(
            meta,
            request_body(template, n),
            content_type="application/x-protobuf",
            content_encoding=None,
        )
        batches.append(prepared.batch)
    return batches


def write_rate(batches: list[WriteBatch], checkpoint_threshold: str) -> tuple[float, float]:
    """(rows/s, database MB) for committing every batch with the given threshold."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.duckdb"
        store = Store.open(path, checkpoint_threshold=checkpoint_threshold)
        writer = StoreWriter(
            store, max_group_rows=8192, max_group_delay=0.005, max_pending_rows=1 << 30
        )
        writer.start()
        started = time.perf_counter()
        futures = [writer.submit(batch) for batch in batches]
        for future in futures:
            future.result()
        elapsed = time.perf_counter() - started
        writer.close()
        store.close()
        return len(batches) * RECORDS_PER_REQUEST / elapsed, path.stat().st_size / 1e6


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=800)
    args = parser.parse_args()
    batches = prepared_batches(args.requests)
    rows = args.requests * RECORDS_PER_REQUEST
    base_rate, base_mb = write_rate(batches, "16MB")
    rate, mb = write_rate(batches, DEFAULT_CHECKPOINT_THRESHOLD)
    print(f"{rows:,} decisions in requests of {RECORDS_PER_REQUEST}")
    print(f"baseline (checkpoint 16MB)   {base_rate:10,.0f} rows/s   file {base_mb:6.0f} MB")
    print(
        f"default ({DEFAULT_CHECKPOINT_THRESHOLD:>6})            "
        f"{rate:10,.0f} rows/s   file {mb:6.0f} MB"
    )
    print(f"ratio default/baseline       {rate / base_rate:10.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
