"""Ingest throughput: a load process sends OTLP/HTTP protobuf to a real `flaglens serve`.

Each request carries 512 feature_flag.evaluation log records with unique decision ids, stamped
with the current time (both are patched into one pre-encoded template, so the load generator
costs little CPU; see payloads.py). Reports accepted events/s, request latency p50/p99, the
server's peak RSS (sampled every 0.5 s, with the RSS after the first 10 s and the peak of each
fifth of the run, so growth shows), the CPU each side spent per accepted record (server, decode
workers, load process), and in the same run the ceiling: decode + canonical mapping + contract
check alone, in this process, on the same bodies (and the compiled decoder against the Python
path it stands in for). The machine's speed varies from day to day (up to 4x here); three
yardsticks measured in the same run on the same records, before and after the load (the faster
reading counts), put the run in the terms of the brief's reference machine: protobuf parsing
(~880k records/s there), Python jsonschema (~21k events/s) and jsonschema-rs (~1.4M events/s).

    .venv/bin/python benchmarks/ingest.py --seconds 30                   # 8 exporters
    .venv/bin/python benchmarks/ingest.py --seconds 30 --connections 128  # enough to fill 2 cores
    .venv/bin/python benchmarks/ingest.py --seconds 300 --connections 128 # 5-minute memory check

With 8 or 32 exporters, each waiting for its answer before it sends again, part of the time
every request is either in the writer's commit or waiting for it, and the decode workers idle;
128 keep both busy. The writer line shows its commits: groups of 16,384 rows or more are
written to the file once (see store.writer).
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path
from typing import Any

import jsonschema
import psutil
import referencing
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from payloads import RECORDS_PER_REQUEST, build_template, request_body  # noqa: E402

from contracts import load_registry, normalize_legacy  # noqa: E402
from ingest.decode import canonical_logs, decode_logs  # noqa: E402
from ingest.decode.otlp_proto import decode_protobuf  # noqa: E402
from ingest.limits import Limits  # noqa: E402
from tests.servers import start_server  # noqa: E402


def decode_ceiling(template: bytes, seconds: float = 5.0) -> float:
    """Records/s of decode + canonical mapping + contract check alone, on one core.

    The decode is the server's own (`decode_logs`: the compiled decoder for protobuf).
    """
    registry = load_registry()
    limits = Limits()
    done = 0
    start = time.perf_counter()
    n = 0
    while time.perf_counter() - start < seconds:
        body = request_body(template, n)
        n += 1
        items = decode_logs(
            body, content_type="application/x-protobuf", content_encoding=None, limits=limits
        )
        for item in items:
            normalize_legacy(item.record)
        registry.check_batch([item.record for item in items])
        done += len(items)
    return done / (time.perf_counter() - start)


def decoder_rates(template: bytes, seconds: float = 3.0) -> tuple[float, float]:
    """Records/s of turning bodies into canonical records: compiled decoder, Python path."""
    limits = Limits()
    rates = []
    for decode in (
        lambda body: decode_logs(
            body, content_type="application/x-protobuf", content_encoding=None, limits=limits
        ),
        lambda body: canonical_logs(decode_protobuf("logs", body), limits),
    ):
        done = n = 0
        start = time.perf_counter()
        while time.perf_counter() - start < seconds:
            done += len(decode(request_body(template, n)))
            n += 1
        rates.append(done / (time.perf_counter() - start))
    return rates[0], rates[1]


# The brief's figures for this machine kind (records or events/s, one core): protobuf parsing,
# Python jsonschema and jsonschema-rs validation. Each, measured in the same run on the same
# records, turns the run into the reference machine's terms; they disagree (the brief's events
# were presumably smaller than these decisions), and protobuf parsing is the least flattering.
REFERENCE_PARSE_RATE = 880_000
REFERENCE_JSONSCHEMA_RATE = 21_000
REFERENCE_JSONSCHEMA_RS_RATE = 1_400_000


def parse_rate(template: bytes, seconds: float = 3.0) -> float:
    """Records/s of plain protobuf parsing (upb) of the same bodies, on one core."""
    done = 0
    start = time.perf_counter()
    n = 0
    while time.perf_counter() - start < seconds:
        request = ExportLogsServiceRequest.FromString(request_body(template, n))
        n += 1
        done += sum(len(s.log_records) for r in request.resource_logs for s in r.scope_logs)
    return done / (time.perf_counter() - start)


def validation_rates(template: bytes, seconds: float = 2.0) -> tuple[float, float]:
    """Events/s of validating the same decisions against their contracts on one core: Python
    `jsonschema` (Draft 2020-12, the contracts' $refs resolved by `referencing`) and
    jsonschema-rs (the server's validators)."""
    registry = load_registry()
    resources = referencing.Registry().with_resources(
        (c.uri, referencing.Resource.from_contents(c.schema)) for c in registry.contracts
    )
    by_key = {(c.name, c.version): c for c in registry.contracts}
    python_validators: dict[tuple[str, str], Any] = {}
    pairs = []
    items = decode_logs(
        request_body(template, 0),
        content_type="application/x-protobuf",
        content_encoding=None,
        limits=Limits(),
    )
    for item in items:
        normalize_legacy(item.record)
        verdict = registry.check(item.record)
        key = (str(verdict.contract_id), str(verdict.contract_version))
        if key not in python_validators:
            python_validators[key] = jsonschema.Draft202012Validator(
                by_key[key].schema, registry=resources
            )
        pairs.append((python_validators[key], by_key[key].validator, item.record))
    rates = []
    for pick in (0, 1):
        done = 0
        start = time.perf_counter()
        while time.perf_counter() - start < seconds:
            for pair in pairs:
                if not pair[pick].is_valid(pair[2]):
                    raise AssertionError("a benchmark decision broke its contract")
            done += len(pairs)
        rates.append(done / (time.perf_counter() - start))
    return rates[0], rates[1]


def _cpu_seconds(proc: psutil.Process) -> tuple[float, float, float]:
    """CPU seconds so far of the server process, of its decode workers, and of this process."""

    def used(p: psutil.Process) -> float:
        times = p.cpu_times()
        return times.user + times.system

    workers = 0.0
    for child in proc.children(recursive=True):
        try:
            workers += used(child)
        except psutil.NoSuchProcess:
            pass
    return used(proc), workers, used(psutil.Process())


def _tree_rss(proc: psutil.Process) -> tuple[int, int]:
    """RSS of the server and its decode workers together, and of the server process alone."""
    own = proc.memory_info().rss
    total = own
    for child in proc.children(recursive=True):
        try:
            total += child.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total, own


def run_load(
    url: str, template: bytes, seconds: float, connections: int
) -> tuple[int, list[float], int]:
    """Send from several threads for `seconds`; returns (accepted events, latencies, errors)."""
    latencies: list[float] = []
    accepted = 0
    errors = 0
    counter = iter(range(1 << 62))
    lock = threading.Lock()
    deadline = time.monotonic() + seconds
    parsed = urllib.parse.urlsplit(url)
    host, port = parsed.hostname or "127.0.0.1", parsed.port or 80

    def worker() -> None:
        # plain http.client on a kept-alive connection: the load process should cost the shared
        # cores as little as it can (1.6 µs of CPU per record sent; httpx took 5.6-7.5)
        nonlocal accepted, errors
        connection = http.client.HTTPConnection(host, port, timeout=60)
        headers = {"content-type": "application/x-protobuf"}
        while time.monotonic() < deadline:
            with lock:
                n = next(counter)
            body = request_body(template, n)
            t0 = time.perf_counter()
            connection.request("POST", "/v1/logs", body=body, headers=headers)
            response = connection.getresponse()
            response.read()
            elapsed = time.perf_counter() - t0
            with lock:
                if response.status == 200:
                    accepted += RECORDS_PER_REQUEST
                    latencies.append(elapsed)
                else:
                    errors += 1
            if response.status == 503:
                time.sleep(float(response.getheader("retry-after") or "1"))
        connection.close()

    threads = [threading.Thread(target=worker) for _ in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return accepted, latencies, errors


def _writer_stats(url: str) -> dict[str, Any]:
    """The server's writer counters, from its /healthz."""
    parsed = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=30)
    try:
        connection.request("GET", "/healthz")
        stats: dict[str, Any] = json.loads(connection.getresponse().read())["writer"]
    finally:
        connection.close()
    return stats


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument(
        "--decode-workers", type=int, help="the server's --decode-workers (default: its own)"
    )
    parser.add_argument("--memory-limit", help="the server's --memory-limit (default: its own)")
    args = parser.parse_args()

    template = build_template()
    ceiling = decode_ceiling(template)
    compiled, python_path = decoder_rates(template)
    parsing = parse_rate(template)
    validating = validation_rates(template)
    with tempfile.TemporaryDirectory() as tmp:
        extra: tuple[str, ...] = ()
        if args.decode_workers is not None:
            extra += ("--decode-workers", str(args.decode_workers))
        if args.memory_limit is not None:
            extra += ("--memory-limit", args.memory_limit)
        server = start_server(Path(tmp) / "bench.duckdb", *extra)
        proc = psutil.Process(server.process.pid)
        rss: list[tuple[float, int, int]] = []
        sampling = threading.Event()

        def sample() -> None:
            t0 = time.monotonic()
            while not sampling.is_set():
                rss.append((time.monotonic() - t0, *_tree_rss(proc)))
                sampling.wait(0.5)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        cpu_before = _cpu_seconds(proc)
        started = time.perf_counter()
        accepted, latencies, errors = run_load(
            server.http_url, template, args.seconds, args.connections
        )
        elapsed = time.perf_counter() - started
        cpu_after = _cpu_seconds(proc)
        sampling.set()
        writer = _writer_stats(server.http_url)
        server.stop()
    # the faster of the two readings, before and after the load, is the less disturbed one
    parsing = max(parsing, parse_rate(template))
    again = validation_rates(template)
    python_rate, rs_rate = (max(a, b) for a, b in zip(validating, again, strict=True))
    latencies.sort()
    p50 = statistics.median(latencies) * 1000 if latencies else float("nan")
    p99 = latencies[int(len(latencies) * 0.99) - 1] * 1000 if latencies else float("nan")
    peak = max(r for _, r, _ in rss) / 2**20
    after_warmup = next((r for t, r, _ in rss if t >= 10), rss[-1][1]) / 2**20
    server_peak = max(own for _, _, own in rss) / 2**20
    rate = accepted / elapsed
    workers = "default" if args.decode_workers is None else args.decode_workers
    print(
        f"requests of {RECORDS_PER_REQUEST} decisions, "
        f"{args.connections} connections, {elapsed:.0f} s, decode workers: {workers}, "
        f"memory limit: {args.memory_limit or 'default'}"
    )
    print(f"accepted events/s        {rate:12,.0f}")
    print(f"request latency p50/p99  {p50:8.1f} / {p99:.1f} ms")
    print(f"non-200 answers          {errors:12d}")
    print(
        f"server RSS peak          {peak:10.0f} MiB (with its workers) "
        f"(at 10 s: {after_warmup:.0f} MiB, end: {rss[-1][1] / 2**20:.0f} MiB; "
        f"server process alone: peak {server_peak:.0f}, end {rss[-1][2] / 2**20:.0f} MiB)"
    )
    fifths = [
        max((r for t, r, _ in rss if i * elapsed / 5 <= t < (i + 1) * elapsed / 5), default=0)
        for i in range(5)
    ]
    print(
        "RSS by fifth of the run     "
        + " / ".join(f"{r / 2**20:.0f}" for r in fifths)
        + " MiB (peak of each, with workers: flat once the first fifth has warmed up)"
    )
    if accepted:
        server_us, workers_us, load_us = (
            (after - before) / accepted * 1e6
            for before, after in zip(cpu_before, cpu_after, strict=True)
        )
        print(
            f"CPU per accepted record  server {server_us:.1f} µs, decode workers "
            f"{workers_us:.1f} µs, load process {load_us:.1f} µs "
            f"({(server_us + workers_us + load_us) * rate / 1e6:.2f} of the cores busy)"
        )
    commits = writer["commits"] or 1
    print(
        f"writer                   {writer['commits']:12,d} commits, "
        f"{sum(writer['rows_committed'].values()) / commits:,.0f} rows and "
        f"{writer['mean_commit_ms']:.0f} ms each on average"
    )
    print(f"ceiling: decode+check    {ceiling:12,.0f} records/s on one core")
    print(f"ratio accepted/ceiling   {rate / ceiling:12.2f}")
    print(
        f"decode to canonical      {compiled:12,.0f} records/s compiled vs {python_path:,.0f} "
        f"Python path ({compiled / python_path:.1f}x)"
    )
    print("machine yardsticks       this run vs the brief's machine, and accepted/s in its terms")
    for name, measured, reference in (
        ("protobuf parsing", parsing, REFERENCE_PARSE_RATE),
        ("jsonschema (Python)", python_rate, REFERENCE_JSONSCHEMA_RATE),
        ("jsonschema-rs", rs_rate, REFERENCE_JSONSCHEMA_RS_RATE),
    ):
        scale = reference / measured
        print(
            f"  {name:22} {measured:12,.0f} vs {reference:,}/s: "
            f"{rate * scale:,.0f} accepted/s (x{scale:.2f})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
