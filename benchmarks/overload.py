"""Overload: memory under growing concurrency with large bodies, and a flood of idle connections.

Part 1 drives a real `flaglens serve` (its defaults) with 8, 32, 96 and 192 concurrent
connections, each sending bodies of about 14 MiB (70 x 512 signed decisions, OTLP/protobuf)
as fast as it is answered, and honouring ``Retry-After`` on a 503 as an exporter does. Each
step reports the answers (200, 503, other), the server's peak RSS (the process alone, and with
its decode workers; sampled every 0.25 s), the RSS over the step's last quarter (does it level
off?), and the peak bytes in flight the server reports in /healthz. Past the in-flight bound
(``--max-inflight-bytes``) requests are refused before their body is read, so the RSS should
level off however many connections there are.

Part 2 opens ``--flood`` idle connections to the OTLP/HTTP port (more than the connection cap)
while four exporters keep sending 512-decision requests, and reports their answers and
latency and the idle connections the server closed to make room.

    .venv/bin/python benchmarks/overload.py                          # full: 60 s per step
    .venv/bin/python benchmarks/overload.py --seconds 10 --flood 3000  # a smoke run
    .venv/bin/python benchmarks/overload.py --transport grpc         # the same over gRPC

Run it on a quiet machine: the load process shares the cores with the server.
"""

from __future__ import annotations

import argparse
import http.client
import json
import resource
import socket
import statistics
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import grpc
import psutil

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from payloads import RECORDS_PER_REQUEST, build_template, request_body  # noqa: E402

from tests.servers import ServerProcess, start_server  # noqa: E402

LOGS_EXPORT = "/opentelemetry.proto.collector.logs.v1.LogsService/Export"
STEPS = (8, 32, 96, 192)
COPIES = 70  # 512-decision requests per large body: ~14 MiB
BODIES = 4  # distinct large bodies, shared by the connections (repeats are dropped as duplicates)


def _large_bodies(template: bytes) -> list[bytes]:
    """Concatenated requests are one request (protobuf merges repeated fields)."""
    return [
        b"".join(request_body(template, b * COPIES + k) for k in range(COPIES))
        for b in range(BODIES)
    ]


class Sampler(threading.Thread):
    """Samples the server's RSS (alone and with its children) every 0.25 s."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.process = psutil.Process(pid)
        self.samples: list[tuple[float, int, int]] = []
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            try:
                own = self.process.memory_info().rss
                children = sum(c.memory_info().rss for c in self.process.children(recursive=True))
            except psutil.Error:
                return
            self.samples.append((time.monotonic(), own, own + children))
            time.sleep(0.25)

    def between(self, start: float, end: float) -> list[tuple[float, int, int]]:
        return [s for s in self.samples if start <= s[0] <= end]


def _http_sender(url: str, bodies: list[bytes], deadline: float, answers: Counter[str],
                 lock: threading.Lock) -> None:  # fmt: skip
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)
    n = 0
    while time.monotonic() < deadline:
        body = bodies[n % len(bodies)]
        n += 1
        try:
            connection.request("POST", "/v1/logs", body=body,
                               headers={"Content-Type": "application/x-protobuf"})  # fmt: skip
            response = connection.getresponse()
            response.read()
            status, retry = str(response.status), response.getheader("Retry-After")
            if response.getheader("Connection", "").lower() == "close":
                connection.close()
        except (OSError, http.client.HTTPException) as exc:
            status, retry = type(exc).__name__, "1"
            connection.close()
            connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)
        with lock:
            answers[status] += 1
        if retry:
            time.sleep(min(float(retry), max(0.0, deadline - time.monotonic())))
    connection.close()


def _grpc_sender(target: str, bodies: list[bytes], deadline: float, answers: Counter[str],
                 lock: threading.Lock) -> None:  # fmt: skip
    options = [("grpc.max_send_message_length", 64 << 20)]
    with grpc.insecure_channel(target, options=options) as channel:
        export = channel.unary_unary(LOGS_EXPORT)
        n = 0
        while time.monotonic() < deadline:
            body = bodies[n % len(bodies)]
            n += 1
            delay = 0.0
            try:
                export(body, timeout=120)
                status = "OK"
            except grpc.RpcError as exc:
                status = exc.code().name  # type: ignore[attr-defined]
                delay = 1.0 if status == "UNAVAILABLE" else 0.0
            with lock:
                answers[status] += 1
            if delay:
                time.sleep(min(delay, max(0.0, deadline - time.monotonic())))


def _healthz(server: ServerProcess) -> dict[str, Any]:
    with urllib.request.urlopen(f"{server.http_url}/healthz", timeout=30) as response:
        return dict(json.loads(response.read()))


def memory_steps(
    server: ServerProcess, transport: str, seconds: float, steps: tuple[int, ...] = STEPS
) -> list[dict[str, Any]]:
    template = build_template()
    bodies = _large_bodies(template)
    print(f"bodies: {len(bodies[0]) / 2**20:.1f} MiB, {COPIES * RECORDS_PER_REQUEST:,} "
          f"decisions each; {seconds:.0f} s per step; transport {transport}")  # fmt: skip
    sampler = Sampler(server.process.pid)
    sampler.start()
    results = []
    for connections in steps:
        answers: Counter[str] = Counter()
        lock = threading.Lock()
        start = time.monotonic()
        deadline = start + seconds
        if transport == "http":
            args: tuple[Any, ...] = (server.http_url, bodies, deadline, answers, lock)
            target = _http_sender
        else:
            args = (server.grpc_target, bodies, deadline, answers, lock)
            target = _grpc_sender
        threads = [threading.Thread(target=target, args=args, daemon=True)
                   for _ in range(connections)]  # fmt: skip
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(seconds + 180)
        end = time.monotonic()
        window = sampler.between(start, end)
        tail = [s for s in window if s[0] >= start + 0.75 * (end - start)]
        inflight = _healthz(server)["inflight"]
        row = {
            "connections": connections,
            "answers": dict(answers),
            "peak_rss_mib": max(s[1] for s in window) / 2**20,
            "peak_rss_with_workers_mib": max(s[2] for s in window) / 2**20,
            "last_quarter_rss_mib": statistics.mean(s[1] for s in tail) / 2**20 if tail else 0.0,
            "inflight_peak_mib": inflight["peak_bytes"] / 2**20,
            "inflight_limit_mib": inflight["limit_bytes"] / 2**20,
        }
        results.append(row)
        print(
            f"{connections:4d} connections: answers {dict(answers)}; RSS peak "
            f"{row['peak_rss_mib']:,.0f} MiB (with workers {row['peak_rss_with_workers_mib']:,.0f}"
            f"), last quarter {row['last_quarter_rss_mib']:,.0f} MiB; in flight peak "
            f"{row['inflight_peak_mib']:,.0f} of {row['inflight_limit_mib']:,.0f} MiB",
            flush=True,
        )
    sampler.stopped.set()
    return results


def idle_flood(server: ServerProcess, flood: int, seconds: float) -> dict[str, Any]:
    """Hold ``flood`` idle connections open while four exporters send; returns what they got."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, flood + 256)), hard))
    parts = urllib.parse.urlsplit(server.http_url)
    template = build_template()
    held: list[socket.socket] = []
    stop = threading.Event()

    def hold() -> None:  # keep the flood up: reopen what the server closes
        while not stop.is_set():
            while len(held) < flood and not stop.is_set():
                try:
                    held.append(socket.create_connection((parts.hostname, parts.port), timeout=5))
                except OSError:
                    time.sleep(0.05)
            for sock in list(held):
                sock.setblocking(False)
                try:
                    if sock.recv(1) == b"":
                        held.remove(sock)
                        sock.close()
                except BlockingIOError:
                    pass
                except OSError:
                    held.remove(sock)
                    sock.close()
            time.sleep(0.2)

    holder = threading.Thread(target=hold, daemon=True)
    holder.start()
    while len(held) < flood * 0.9:
        time.sleep(0.1)
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def export(worker: int) -> None:
        n = worker * 1_000_000
        while time.monotonic() < deadline:
            body = request_body(template, n)
            n += 1
            started = time.monotonic()
            try:
                connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
                connection.request("POST", "/v1/logs", body=body,
                                   headers={"Content-Type": "application/x-protobuf"})  # fmt: skip
                status = str(connection.getresponse().status)
                connection.close()
            except (OSError, http.client.HTTPException) as exc:
                status = type(exc).__name__
            with lock:
                statuses[status] += 1
                latencies.append(time.monotonic() - started)

    exporters = [threading.Thread(target=export, args=(w,)) for w in range(4)]
    for thread in exporters:
        thread.start()
    for thread in exporters:
        thread.join()
    connections = _healthz(server)["connections"]["http"]
    stop.set()
    holder.join(10)
    for sock in held:
        sock.close()
    latencies.sort()
    result = {
        "idle_connections_held": flood,
        "exports": dict(statuses),
        "p50_ms": 1000 * latencies[len(latencies) // 2] if latencies else None,
        "p99_ms": 1000 * latencies[int(len(latencies) * 0.99)] if latencies else None,
        "server_connections": connections,
    }
    print(f"idle flood of {flood}: exports {dict(statuses)}, p50 {result['p50_ms']:.0f} ms, "
          f"p99 {result['p99_ms']:.0f} ms; server {connections}", flush=True)  # fmt: skip
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60, help="per step (default 60)")
    parser.add_argument("--transport", choices=("http", "grpc"), default="http")
    parser.add_argument("--flood", type=int, default=3000, help="idle connections (0: skip)")
    parser.add_argument(
        "--steps",
        default=",".join(map(str, STEPS)),
        help="concurrent connections per step (default 8,32,96,192)",
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        server = start_server(Path(folder) / "bench.duckdb", "--grpc-port", "0")
        try:
            results: dict[str, Any] = {
                "steps": memory_steps(
                    server,
                    args.transport,
                    args.seconds,
                    tuple(int(n) for n in args.steps.split(",")),
                )
            }
            if args.flood:
                results["flood"] = idle_flood(server, args.flood, args.seconds)
        finally:
            server.stop()
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
