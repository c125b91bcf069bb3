"""A longer fuzz run of the OTLP decoders than CI's (same properties as tests/ingest/test_fuzz.py).

    .venv/bin/python benchmarks/fuzz_decoders.py --examples 100000

Prints the number of bodies tried per second; any exception other than IngestError fails the
run with the body that caused it (hypothesis shrinks it first).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from tests.ingest.fuzzing import bodies, prepare_any  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--examples", type=int, default=20_000)
    args = parser.parse_args()
    count = 0

    @settings(max_examples=args.examples, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(case=bodies, signal=st.sampled_from(("logs", "traces")))
    def run(case: tuple[str, bytes, str | None], signal: str) -> None:
        nonlocal count
        count += 1
        prepare_any(case[0], case[1], case[2], signal)

    started = time.perf_counter()
    run()
    elapsed = time.perf_counter() - started
    print(f"{count:,} bodies in {elapsed:.0f} s ({count / elapsed:,.0f}/s): no escape")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
