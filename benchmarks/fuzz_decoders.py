"""A longer fuzz run of the OTLP decoders than CI's (same properties as tests/ingest/test_fuzz.py).

    .venv/bin/python benchmarks/fuzz_decoders.py --examples 100000

Every body (random, mutated, grafted or with extreme field values; logs, traces and metrics) goes
through decoding, canonical mapping, limits and contracts, and what comes out is committed to a
scratch DuckDB file through the real writer. Prints the number of bodies tried per second; any
exception other than IngestError, a rejected record missing from the quarantine, or a failed
commit fails the run with the body that caused it (hypothesis shrinks it first).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from hypothesis import HealthCheck, given, settings  # noqa: E402

from analytics.warehouse.store import Store  # noqa: E402
from ingest.writer import StoreWriter  # noqa: E402
from tests.ingest.fuzzing import Case, cases, check_case  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--examples", type=int, default=20_000)
    args = parser.parse_args()
    count = 0
    with tempfile.TemporaryDirectory() as scratch:
        store = Store.open(Path(scratch) / "fuzz.duckdb")
        writer = StoreWriter(store, max_group_delay=0)
        writer.start()

        @settings(max_examples=args.examples, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))  # fmt: skip
        @given(case=cases)
        def run(case: Case) -> None:
            nonlocal count
            count += 1
            check_case(case, writer)

        started = time.perf_counter()
        try:
            run()
        finally:
            writer.close()
            store.close()
        elapsed = time.perf_counter() - started
    print(f"{count:,} bodies in {elapsed:.0f} s ({count / elapsed:,.0f}/s): no escape")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
