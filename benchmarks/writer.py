"""Storage writer throughput, in process: prepared requests straight into `StoreWriter`.

Requests of 512 decisions are decoded and checked once up front; then the writer commits them
(group commit, duplicate lookup, WAL, checkpoints, the final one on close included) into a
fresh database, all queued at once as under full load. Three configurations in the same run:
DuckDB's stock settings (16 MB checkpoint threshold, 122,880-row row groups) as the baseline,
flaglens' checkpoint threshold alone, and flaglens' defaults (that threshold and 16,384-row
row groups, which the writer's groups fill so that DuckDB writes them to the file once).

    .venv/bin/python benchmarks/writer.py --requests 800
    .venv/bin/python benchmarks/writer.py --requests 800 --threads 1  # as --duckdb-threads 1
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

from contracts import load_registry  # noqa: E402
from ingest.limits import Limits  # noqa: E402
from ingest.pipeline import IngestPipeline, RequestMeta  # noqa: E402
from store.batch import WriteBatch  # noqa: E402
from store.connection import (  # noqa: E402
    DEFAULT_CHECKPOINT_THRESHOLD,
    DUCKDB_ROW_GROUP_SIZE,
    ROW_GROUP_SIZE,
    Store,
)
from store.writer import StoreWriter  # noqa: E402


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


def write_rate(
    batches: list[WriteBatch], checkpoint_threshold: str, row_group_size: int, threads: int | None
) -> tuple[float, float, float]:
    """(rows/s, CPU µs a row, database MB) for committing every batch and closing the store."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.duckdb"
        store = Store.open(
            path,
            checkpoint_threshold=checkpoint_threshold,
            row_group_size=row_group_size,
            threads=threads,
        )
        writer = StoreWriter(store, max_pending_rows=1 << 30)
        started, cpu = time.perf_counter(), time.process_time()
        futures = [writer.submit(batch) for batch in batches]
        writer.start()
        for future in futures:
            future.result()
        writer.close()
        store.close()
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        rows = len(batches) * RECORDS_PER_REQUEST
        return rows / elapsed, cpu / rows * 1e6, path.stat().st_size / 1e6


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=800)
    parser.add_argument("--threads", type=int, help="DuckDB threads (default: DuckDB's own)")
    args = parser.parse_args()
    batches = prepared_batches(args.requests)
    print(f"{args.requests * RECORDS_PER_REQUEST:,} decisions in requests of {RECORDS_PER_REQUEST}")
    configurations = {
        "baseline: DuckDB's own settings": ("16MB", DUCKDB_ROW_GROUP_SIZE),
        f"checkpoint at {DEFAULT_CHECKPOINT_THRESHOLD}": (
            DEFAULT_CHECKPOINT_THRESHOLD,
            DUCKDB_ROW_GROUP_SIZE,
        ),
        f"and row groups of {ROW_GROUP_SIZE:,} (default)": (
            DEFAULT_CHECKPOINT_THRESHOLD,
            ROW_GROUP_SIZE,
        ),
    }
    print(f"{'':<40} {'rows/s':>10} {'CPU µs/row':>11} {'file MB':>8} {'x baseline':>11}")
    base_rate = 0.0
    for name, (threshold, row_group_size) in configurations.items():
        rate, cpu_us, mb = write_rate(batches, threshold, row_group_size, args.threads)
        base_rate = base_rate or rate
        print(f"{name:<40} {rate:10,.0f} {cpu_us:11.1f} {mb:8.0f} {rate / base_rate:11.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
