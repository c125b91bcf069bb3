"""Reads beside ingest: a real `flaglens serve` on the sample week, the ingest load alone, then
the same load with readers hammering the read API, in the same run.

The server holds the sample week (loaded by `flaglens demo --load-only`, or a copy of
``--db``) and runs with its defaults, alert rounds included. After ``--settle`` seconds (its
first periodic round records the facts of closed changes and cohort periods, which the
analyses then read; a week loaded less than an hour ago is not closed yet, so change impact
and cohorts are computed live: pass ``--db`` of an older load for the production case), each
round runs the ingest benchmark's load (requests of 512 decisions stamped now, see
payloads.py) for ``--seconds`` alone and for ``--seconds`` while ``--readers`` threads loop
over the read API without pause: every analysis over the sample week's 7 days, an hour of
decisions as Arrow and the week's policy changes as Parquet. Rounds alternate which phase
comes first (ABBA), after a warm-up of the load. Reports accepted decisions/s in both phases
and their ratio (the target: readers keep at least 80 % of ingest), and per analysis the answer
time p50/p95 while ingest runs (the target: p95 under 1 s), with every non-200 answer counted
(503 busy / timeout are the read API protecting ingest).

    .venv/bin/python benchmarks/read_api.py --seconds 60 --rounds 2
    .venv/bin/python benchmarks/read_api.py --seconds 10 --db flaglens-demo/flaglens.duckdb
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from payloads import build_template  # noqa: E402

from analytics.analyses import ANALYSES  # noqa: E402
from tests.servers import start_server  # noqa: E402

# benchmarks/ingest.py's load generator (the module's name would shadow the ingest package)
_spec = importlib.util.spec_from_file_location("ingest_benchmark", REPO / "benchmarks/ingest.py")
assert _spec is not None and _spec.loader is not None
ingest_benchmark = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ingest_benchmark)

WEEK = {"from": "2026-11-16T00:00:00Z", "to": "2026-11-23T00:00:00Z"}
READS: dict[str, tuple[str, dict[str, str]]] = {
    **{name: (f"/api/v1/analyses/{name}", WEEK) for name in ANALYSES},
    "export decisions 1h arrow": (
        "/api/v1/exports/decisions",
        {"from": "2026-11-20T12:00:00Z", "to": "2026-11-20T13:00:00Z", "format": "arrow"},
    ),
    "export policy_changes parquet": (
        "/api/v1/exports/policy_changes", WEEK | {"format": "parquet"}
    ),
}  # fmt: skip


def load_week(directory: Path) -> Path:
    """The sample week, loaded through OTLP by `flaglens demo --load-only`."""
    command = [
        sys.executable, "-m", "flaglens.cli.main", "demo", "--load-only", "--no-progress",
        "--dir", str(directory), "--http-port", "0", "--grpc-port", "0", "--dashboard-port", "0",
        "--seed", "7", "--end", WEEK["to"],
    ]  # fmt: skip
    subprocess.run(command, cwd=REPO, check=True, capture_output=True, timeout=1800)
    return directory / "flaglens.duckdb"


def hammer(
    base: str, stop: threading.Event, times: dict[str, list[float]], failures: dict[str, int]
) -> None:
    """Loop over READS until ``stop``; each answer's seconds under its read's name."""
    lock = threading.Lock()
    with httpx.Client(base_url=base, timeout=120) as client:
        while not stop.is_set():
            for name, (path, params) in READS.items():
                if stop.is_set():
                    return
                started = time.perf_counter()
                response = client.get(path, params=params)
                elapsed = time.perf_counter() - started
                with lock:
                    if response.status_code == 200:
                        times[name].append(elapsed)
                    else:
                        failures[f"{name}: {response.status_code}"] += 1


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=60, help="each phase of each round")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--connections", type=int, default=32, help="ingest exporters")
    parser.add_argument("--readers", type=int, default=2, help="reader threads")
    parser.add_argument("--db", type=Path, help="a loaded sample week to copy (default: load one)")
    parser.add_argument("--settle", type=float, default=30, help="seconds for the first round")
    parser.add_argument("--warmup", type=float, default=5, help="seconds of load not counted")
    args = parser.parse_args()

    template = build_template()
    with tempfile.TemporaryDirectory() as tmp:
        if args.db is not None:
            db = Path(tmp) / "week.duckdb"
            shutil.copy(args.db, db)
        else:
            print("loading the sample week through OTLP ...", flush=True)
            db = load_week(Path(tmp) / "week")
        server = start_server(db)
        base = server.api_url
        alone: list[float] = []
        beside: list[float] = []
        times: dict[str, list[float]] = defaultdict(list)
        failures: dict[str, int] = defaultdict(int)
        errors = [0, 0]

        def phase(with_readers: bool) -> None:
            stop = threading.Event()
            readers = [
                threading.Thread(target=hammer, args=(base, stop, times, failures))
                for _ in range(args.readers if with_readers else 0)
            ]
            for reader in readers:
                reader.start()
            accepted, _latencies, failed = ingest_benchmark.run_load(
                server.http_url, template, args.seconds, args.connections
            )
            stop.set()
            for reader in readers:
                reader.join()
            (beside if with_readers else alone).append(accepted / args.seconds)
            errors[with_readers] += failed

        try:
            time.sleep(args.settle)
            ingest_benchmark.run_load(server.http_url, template, args.warmup, args.connections)
            for n in range(args.rounds):
                for with_readers in (False, True) if n % 2 == 0 else (True, False):
                    phase(with_readers)
        finally:
            server.stop(timeout=300)  # the final checkpoint of what the load wrote
    rate_alone, rate_beside = statistics.mean(alone), statistics.mean(beside)
    print(
        f"{args.rounds} round(s) of {args.seconds:.0f} s + {args.seconds:.0f} s, "
        f"{args.connections} exporters, {args.readers} readers (the server's default 2 slots)"
    )
    print(
        f"ingest alone             {rate_alone:12,.0f} accepted decisions/s "
        f"({' / '.join(f'{r:,.0f}' for r in alone)}; non-200: {errors[0]})"
    )
    print(
        f"ingest with readers      {rate_beside:12,.0f} accepted decisions/s "
        f"({' / '.join(f'{r:,.0f}' for r in beside)}; non-200: {errors[1]})"
    )
    print(f"kept                     {rate_beside / rate_alone:12.0%} (target: at least 80 %)")
    print("read answers while ingest runs (sample week, 7 days)   n    p50 ms   p95 ms")
    for name in READS:
        values = times.get(name, [])
        if values:
            print(
                f"  {name:50} {len(values):5d} {statistics.median(values) * 1000:9.0f} "
                f"{_percentile(values, 0.95) * 1000:8.0f}"
            )
        else:
            print(f"  {name:50}     0")
    for what, count in sorted(failures.items()):
        print(f"  refused: {what} x{count}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
