"""A longer fuzz run of the OTLP decoders than CI's (same properties as tests/ingest/test_fuzz.py).

    .venv/bin/python benchmarks/fuzz_decoders.py --examples 100000
    .venv/bin/python benchmarks/fuzz_decoders.py --examples 0 --compiled-seconds 60
    .venv/bin/python benchmarks/fuzz_decoders.py --examples 0 --logs-pb-examples 2000

Every body (random, mutated, grafted or with extreme field values; logs, traces and metrics) goes
through decoding, canonical mapping, limits and contracts, and what comes out is committed to a
scratch DuckDB file through the real writer. Prints the number of bodies tried per second; any
exception other than IngestError, a rejected record missing from the quarantine, or a failed
commit fails the run with the body that caused it (hypothesis shrinks it first).

``--compiled-seconds N`` then spends N seconds on the compiled logs decoder alone: randomly
damaged copies of the ingest benchmark's body (bytes overwritten, the tail cut off) with random
limits go straight into it; it must not crash, and whenever it returns records instead of
declining, the Python path must give the very same records.

``--logs-pb-examples N`` runs the three properties of tests/ingest/test_logs_pb.py (well-formed
requests take the compiled path; it declines exactly the requests over a limit; it never
disagrees on damaged bytes) with N examples each instead of the suite's few.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from hypothesis import HealthCheck, given, settings  # noqa: E402

from ingest.limits import Limits  # noqa: E402
from store.connection import Store  # noqa: E402
from store.writer import StoreWriter  # noqa: E402
from tests.ingest.fuzzing import Case, cases, check_case  # noqa: E402
from tests.ingest.test_logs_pb import (  # noqa: E402
    any_limits,
    as_seen,
    compiled,
    declines_exactly_over_a_limit,
    mutated,
    never_disagrees_on_damaged_bytes,
    python_path,
    requests,
    tight_limits,
    well_formed_take_the_compiled_path,
)


def fuzz_compiled(seconds: float, seed: int = 7) -> tuple[int, int]:
    """(bodies tried, bodies the compiled decoder declined); raises on a disagreement."""
    from payloads import build_template

    template = build_template()
    rng = random.Random(seed)
    tried = declined = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        body = bytearray(template[: rng.randrange(len(template) + 1)])
        if rng.random() < 0.8:
            body = bytearray(template)
        for _ in range(rng.randrange(1, 6)):
            if body:
                body[rng.randrange(len(body))] = rng.randrange(256)
        limits = Limits(
            max_records_per_request=rng.randrange(1000),
            max_attributes_per_record=rng.randrange(40),
            max_attribute_value_bytes=rng.randrange(100),
            max_value_depth=rng.randrange(1, 12),
        )
        raw = bytes(body)
        fast = compiled(raw, limits)
        tried += 1
        if fast is None:
            declined += 1
            continue
        expected = python_path(raw, limits)
        if isinstance(expected, list) and not any(i.limit_violations for i in expected):
            if as_seen(fast) == as_seen([i.record for i in expected]):
                continue
        raise AssertionError(f"the compiled decoder disagrees on {raw!r} with {limits}")
    return tried, declined


def logs_pb_properties(examples: int) -> None:
    """tests/ingest/test_logs_pb.py's properties with ``examples`` examples each."""
    longer = settings(max_examples=examples, deadline=None, database=None,
                      suppress_health_check=list(HealthCheck))  # fmt: skip
    for name, prop in [
        ("well-formed requests", given(raw=requests())(well_formed_take_the_compiled_path)),
        ("over a limit", given(raw=requests(), limits=tight_limits)(declines_exactly_over_a_limit)),
        (
            "damaged bytes",
            given(raw=mutated(), limits=any_limits)(never_disagrees_on_damaged_bytes),
        ),
    ]:
        started = time.perf_counter()
        longer(prop)()
        print(f"compiled logs decoder, {name}: {examples:,} examples in "
              f"{time.perf_counter() - started:.0f} s, none differed")  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--examples", type=int, default=20_000)
    parser.add_argument("--compiled-seconds", type=float, default=0)
    parser.add_argument("--logs-pb-examples", type=int, default=0)
    args = parser.parse_args()
    if args.logs_pb_examples:
        logs_pb_properties(args.logs_pb_examples)
    if args.compiled_seconds:
        tried, declined = fuzz_compiled(args.compiled_seconds)
        print(f"compiled decoder: {tried:,} damaged bodies, {declined:,} declined, none differed")
    if not args.examples:
        return 0
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
