"""DuckLake against the embedded DuckDB file, all in one run, reported as ratios.

1. Ingest: one server on a DuckDB file, one server on a lake, two servers on one lake (the load
   split between them), each for ``--seconds`` with N OTLP/HTTP connections sending requests of
   512 decisions (benchmarks/payloads.py). Each lake setup runs twice: with the lease holder's
   upkeep every ``--upkeep-interval`` seconds, and without upkeep. Reported: accepted decisions/s,
   CPU per accepted record (the servers and their decode workers, and PostgreSQL), and at the
   end the data files, their bytes and the catalog's bytes.
2. Dashboard queries: a DuckDB file of ``--decisions`` decisions (benchmarks/analytics.py's
   store), copied into a lake (``flaglens store copy``) and maintained once; every query of the
   dashboards timed on both, as lake / file.
3. Parquet written by the decode workers: ``--parquet-rows`` decision rows, as the decode workers
   make them, committed through the one writer (Arrow into the lake) against written as Parquet
   by worker processes in parallel and registered with the catalog (``ducklake_add_data_files``)
   by one process. Reported: rows/s and CPU per row of each.

PostgreSQL is a throwaway cluster (initdb into a temporary directory, fsync on as in
production), stopped after.

    .venv/bin/python benchmarks/lake.py                              # the full run (~1 h)
    .venv/bin/python benchmarks/lake.py --seconds 20 --decisions 300000 --parquet-rows 200000
"""

from __future__ import annotations

import argparse
import functools
import http.client
import importlib.util
import os
import statistics
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pyarrow as pa
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from payloads import RECORDS_PER_REQUEST, build_template, request_body  # noqa: E402

from store.batch import WriteBatch  # noqa: E402
from store.connection import Store  # noqa: E402
from store.lake import LakeOptions, run_upkeep  # noqa: E402
from store.status import store_status  # noqa: E402
from store.transfer import copy_file_into  # noqa: E402
from store.writer import StoreWriter  # noqa: E402
from tests.postgres import Cluster, cluster  # noqa: E402
from tests.servers import ServerProcess, start_server  # noqa: E402

NEVER = 10**9  # an upkeep interval that never comes


def _bench_analytics() -> Any:
    """benchmarks/analytics.py (its module name would shadow the analytics package)."""
    spec = importlib.util.spec_from_file_location(
        "bench_analytics", REPO / "benchmarks" / "analytics.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# -- 1. ingest ----------------------------------------------------------------------------------


@dataclass
class IngestRun:
    name: str
    accepted: int = 0
    seconds: float = 0.0
    errors: int = 0
    server_cpu: float = 0.0
    postgres_cpu: float = 0.0
    p99_ms: float = 0.0
    files: int = 0
    data_bytes: int = 0
    catalog_bytes: int = 0

    @property
    def rate(self) -> float:
        return self.accepted / self.seconds if self.seconds else 0.0


def _tree_cpu(pids: Sequence[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            process = psutil.Process(pid)
            for p in (process, *process.children(recursive=True)):
                times = p.cpu_times()
                total += times.user + times.system + times.children_user + times.children_system
        except psutil.NoSuchProcess:
            continue
    return total


def _postmaster(pg: Cluster) -> int:
    return int((pg.directory / "data" / "postmaster.pid").read_text().split()[0])


def run_load(
    urls: Sequence[str], template: bytes, seconds: float, connections: int
) -> tuple[int, list[float], int]:
    """Send from ``connections`` threads for ``seconds``, connection i to urls[i % n]."""
    latencies: list[float] = []
    accepted = errors = 0
    counter = iter(range(1 << 62))
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def worker(url: str) -> None:
        nonlocal accepted, errors
        parsed = urllib.parse.urlsplit(url)
        host = parsed.hostname or "127.0.0.1"
        connection = http.client.HTTPConnection(host, parsed.port, timeout=120)
        headers = {"content-type": "application/x-protobuf"}
        while time.monotonic() < deadline:
            with lock:
                n = next(counter)
            started = time.perf_counter()
            connection.request("POST", "/v1/logs", body=request_body(template, n), headers=headers)
            response = connection.getresponse()
            response.read()
            with lock:
                if response.status == 200:
                    accepted += RECORDS_PER_REQUEST
                    latencies.append(time.perf_counter() - started)
                else:
                    errors += 1
            if response.status == 503:
                time.sleep(float(response.getheader("retry-after") or "1"))
        connection.close()

    threads = [
        threading.Thread(target=worker, args=(urls[i % len(urls)],)) for i in range(connections)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return accepted, latencies, errors


def ingest_run(
    name: str,
    pg: Cluster,
    directory: Path,
    *,
    servers: int,
    lake: bool,
    upkeep: float,
    args: argparse.Namespace,
    template: bytes,
) -> IngestRun:
    run = IngestRun(name)
    db = directory / f"{name}.duckdb"
    url, data_path = pg.lake_url(f"bench_{uuid.uuid4().hex[:8]}"), str(directory / f"{name}-data")
    where = ["--store", url, "--data-path", data_path] if lake else []
    extra = [*where, "--no-alerts", "--lake-upkeep-interval", str(upkeep)]
    started: list[ServerProcess] = []
    try:
        for _ in range(servers):
            started.append(start_server(db, *extra))
        pids = [server.process.pid for server in started]
        postmaster = _postmaster(pg)
        cpu_before = _tree_cpu(pids), _tree_cpu([postmaster])
        at = time.perf_counter()
        accepted, latencies, errors = run_load(
            [s.http_url for s in started], template, args.seconds, args.connections
        )
        run.seconds = time.perf_counter() - at
        run.server_cpu = _tree_cpu(pids) - cpu_before[0]
        run.postgres_cpu = _tree_cpu([postmaster]) - cpu_before[1]
        run.accepted, run.errors = accepted, errors
        run.p99_ms = (
            statistics.quantiles(latencies, n=100)[98] * 1000 if len(latencies) > 100 else 0.0
        )
    finally:
        for server in started:
            server.stop()
    if lake:
        with Store.open(url, data_path=data_path, read_only=True) as store:
            status = store_status(store)["lake"]
        run.files, run.data_bytes = status["data_files"], status["data_bytes"]
        run.catalog_bytes = status["catalog_bytes"]
    else:
        run.files, run.data_bytes = 1, db.stat().st_size
    return run


def ingest(pg: Cluster, directory: Path, args: argparse.Namespace) -> list[IngestRun]:
    template = build_template()
    setups = [
        ("1 file", 1, False, NEVER),
        ("1 lake, upkeep", 1, True, args.upkeep_interval),
        ("1 lake, no upkeep", 1, True, NEVER),
        ("2 lake, upkeep", 2, True, args.upkeep_interval),
        ("2 lake, no upkeep", 2, True, NEVER),
    ]
    runs = []
    for name, servers, lake, upkeep in setups:
        print(f"ingest: {name} for {args.seconds:.0f} s ...", flush=True)
        slug = name.replace(" ", "-").replace(",", "")
        runs.append(ingest_run(slug, pg, directory, servers=servers, lake=lake, upkeep=upkeep,
                               args=args, template=template))  # fmt: skip
        runs[-1].name = name
    base = runs[0]
    print(
        f"\n{'setup':<20} {'accepted/s':>11} {'x file':>7} {'p99 ms':>8} {'errors':>7} "
        f"{'server µs':>10} {'pg µs':>7} {'files':>7} {'data MiB':>9} {'catalog MiB':>12}"
    )
    for run in runs:
        per = 1e6 / run.accepted if run.accepted else 0.0
        print(
            f"{run.name:<20} {run.rate:11,.0f} {run.rate / base.rate:7.2f} {run.p99_ms:8.0f} "
            f"{run.errors:7d} {run.server_cpu * per:10.1f} {run.postgres_cpu * per:7.1f} "
            f"{run.files:7,d} {run.data_bytes / 2**20:9.1f} {run.catalog_bytes / 2**20:12.1f}"
        )
    return runs


# -- 2. dashboard queries ----------------------------------------------------------------------


def _full_scan(store: Store) -> object:
    query = "SELECT count(*), count(DISTINCT subject_id) FROM decisions"
    return store.cursor().execute(query).fetchall()


def dashboard_queries(pg: Cluster, directory: Path, args: argparse.Namespace) -> None:
    bench = _bench_analytics()
    path = args.db or directory / "queries.duckdb"
    native = Store.open(path)
    if native.cursor().execute("SELECT count(*) FROM decisions").fetchone() == (0,):
        at = time.perf_counter()
        bench.build(native, args.decisions)
        print(f"queries: built {args.decisions:,} decisions in {time.perf_counter() - at:.0f} s")
    native.close()
    lake = Store.open(pg.fresh_lake_url(), data_path=directory / "queries-data")
    at = time.perf_counter()
    copied = copy_file_into(path, lake)
    print(f"queries: copied {sum(copied.values()):,} rows into the lake in "
          f"{time.perf_counter() - at:.0f} s")  # fmt: skip
    report = run_upkeep(lake.cursor(), lake.catalog, LakeOptions())
    status = store_status(lake)["lake"]
    size = path.stat().st_size / 2**20
    print(f"queries: upkeep {report.seconds:.0f} s; lake {status['data_files']} files, "
          f"{status['data_bytes'] / 2**20:.0f} MiB; file {size:.0f} MiB")  # fmt: skip
    native = Store.open(path)  # read-write: some queries forget recorded facts first
    stores = {"file": native, "lake": lake}
    timings: dict[str, dict[str, float]] = {"file": {}, "lake": {}}
    # each query is timed on the file and then on the lake, so that whatever else the machine
    # does at that moment weighs on both sides of its ratio
    with StoreWriter(native) as file_writer, StoreWriter(lake) as lake_writer:
        writers = {"file": file_writer, "lake": lake_writer}  # the recording writes through them
        plans = {
            kind: {
                "baseline: full scan of decisions": functools.partial(_full_scan, store),
                **bench.queries(store, writers[kind]),
            }
            for kind, store in stores.items()
        }
        for name in plans["file"]:
            for kind in stores:
                timings[kind][name] = bench.timed(plans[kind][name], args.repeat)
    print(f"\n{'query':<48} {'file ms':>9} {'lake ms':>9} {'lake/file':>10}")
    ratios = []
    for name, ms in timings["file"].items():
        lake_ms = timings["lake"][name]
        ratios.append(lake_ms / ms)
        print(f"{name:<48} {ms:9.1f} {lake_ms:9.1f} {lake_ms / ms:10.2f}")
    print(f"{'geometric mean':<48} {'':>9} {'':>9} {statistics.geometric_mean(ratios):10.2f}")
    native.close()
    lake.close()


# -- 3. Parquet from the decode workers ---------------------------------------------------------


def _decision_batches(rows: int) -> list[WriteBatch]:
    """Requests of 512 full decision rows, as the decode workers make them."""
    import orjson

    from contracts import load_registry
    from ingest.limits import Limits
    from ingest.pipeline import IngestPipeline
    from tests.factories import decision_attributes, otlp_json_logs, prepare_http

    pipeline = IngestPipeline(load_registry(), Limits())
    body = orjson.dumps(otlp_json_logs([decision_attributes() for _ in range(512)]))
    template = prepare_http(pipeline, 1, "logs", body, "application/json").batch
    table = template.tables["decisions"]
    batches = []
    for n in range(rows // 512):
        ids = pa.array([f"pq-{n}-{i}" for i in range(table.num_rows)])
        tables = {"decisions": table.set_column(table.schema.get_field_index("decision_id"),
                                                "decision_id", ids)}  # fmt: skip
        batches.append(WriteBatch(ledger=template.ledger, tables=tables))
    return batches


def _write_parquet(table: pa.Table, path: str) -> tuple[str, float]:
    """In a worker: write one file; returns it and the CPU seconds the worker spent."""
    started = time.process_time()
    pq.write_table(table, path, compression="snappy", row_group_size=122_880)
    return path, time.process_time() - started


def parquet_from_workers(pg: Cluster, directory: Path, args: argparse.Namespace) -> None:
    batches = _decision_batches(args.parquet_rows)
    rows = sum(b.rows for b in batches)
    me = psutil.Process()

    def cpu() -> float:
        t = me.cpu_times()
        return t.user + t.system

    # (a) through the one writer: Arrow appended into the lake, committed in groups
    lake = Store.open(pg.fresh_lake_url(), data_path=directory / "pq-writer")
    writer = StoreWriter(lake, max_group_delay=0)
    at, cpu_at = time.perf_counter(), cpu()
    with writer:
        for i in range(0, len(batches), 64):  # the writer's queue holds at most 2 groups
            futures = [writer.submit(b) for b in batches[i : i + 64]]
            for future in futures:
                future.result(600)
    writer_seconds, writer_cpu = time.perf_counter() - at, cpu() - cpu_at
    lake.close()

    # (b) Parquet written by worker processes, registered with the catalog by this one
    lake = Store.open(pg.fresh_lake_url(), data_path=directory / "pq-workers")
    target = Path(str(lake.location.data_path)) / "main" / "decisions"
    target.mkdir(parents=True, exist_ok=True)
    group = 32  # 16,384 rows a file, as the writer's groups
    cursor = lake.cursor()
    stamp = pa.scalar(int(time.time() * 1e6), pa.timestamp("us", tz="UTC"))
    at, cpu_at = time.perf_counter(), cpu()
    with ProcessPoolExecutor(args.parquet_workers) as pool:
        jobs = []
        for i in range(0, len(batches), group):
            table = pa.concat_tables([b.tables["decisions"] for b in batches[i : i + group]])
            table = table.append_column("ingested_at", pa.array([stamp] * table.num_rows))
            path = str(target / f"w-{uuid.uuid4()}.parquet")
            jobs.append(pool.submit(_write_parquet, table, path))
        worker_cpu = register_cpu = 0.0
        for job in jobs:
            path, spent = job.result()
            worker_cpu += spent
            before = cpu()
            cursor.execute(
                "CALL ducklake_add_data_files('flaglens', 'decisions', $file)", {"file": path}
            )
            register_cpu += cpu() - before
    # what this process spent besides registering is handing the rows to the workers, which
    # decode workers would not need (they hold the rows already)
    workers_seconds, handing_cpu = time.perf_counter() - at, cpu() - cpu_at - register_cpu
    row = cursor.execute("SELECT count(*) FROM decisions").fetchone()
    stored = int(row[0]) if row else 0
    lake.close()
    print(f"\nParquet from the decode workers ({rows:,} decision rows, {stored:,} registered):")
    print(f"  one writer (Arrow into the lake)      {rows / writer_seconds:10,.0f} rows/s, "
          f"{writer_cpu * 1e6 / rows:6.1f} CPU µs a row in the server")  # fmt: skip
    label = f"{args.parquet_workers} workers write, one registers"
    print(f"  {label:<37} {rows / workers_seconds:10,.0f} rows/s, "
          f"{register_cpu * 1e6 / rows:6.1f} CPU µs a row in the server registering "
          f"(+{worker_cpu * 1e6 / rows:.1f} in the workers writing, "
          f"+{handing_cpu * 1e6 / rows:.1f} handing rows to them)")  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=600, help="ingest per setup")
    parser.add_argument("--connections", type=int, default=128)
    parser.add_argument("--upkeep-interval", type=float, default=60)
    parser.add_argument("--decisions", type=int, default=10_000_000, help="dashboard queries")
    parser.add_argument("--db", type=Path, help="reuse this DuckDB file for the queries")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--parquet-rows", type=int, default=2_000_000)
    parser.add_argument("--parquet-workers", type=int, default=min(os.cpu_count() or 1, 4))
    parser.add_argument(
        "--only", choices=("ingest", "queries", "parquet"), action="append", help="parts to run"
    )
    args = parser.parse_args()
    parts = args.only or ["ingest", "queries", "parquet"]
    with tempfile.TemporaryDirectory() as tmp, cluster(durable=True) as pg:
        directory = Path(tmp)
        if "ingest" in parts:
            ingest(pg, directory, args)
        if "queries" in parts:
            dashboard_queries(pg, directory, args)
        if "parquet" in parts:
            parquet_from_workers(pg, directory, args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
