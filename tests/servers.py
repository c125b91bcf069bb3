"""A real `flaglens serve` process for tests: started on free loopback ports, stopped after.

Only tests marked ``@pytest.mark.e2e`` may start one (:func:`require_e2e`); everything else uses
the in-process server of ``tests/inprocess.py``.
"""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parent.parent
_LISTENING = re.compile(r"^flaglens: (?P<what>.+?) listening on (?P<url>\S+)$")


@dataclass
class _CurrentTest:
    """Set by tests/conftest.py before each test's fixtures are set up (outside pytest, e.g. in
    benchmarks/ingest.py, real processes are what is wanted)."""

    nodeid: str = ""
    e2e: bool = True


CURRENT_TEST = _CurrentTest()


def require_e2e(what: str) -> None:
    """Refuse to start a real process for a test that is not marked e2e, so that the fast loop
    (`pytest -m "not e2e"`) stays free of them."""
    if not CURRENT_TEST.e2e:
        raise RuntimeError(
            f"{CURRENT_TEST.nodeid or 'this test'} starts a real process ({what}) but is not "
            "marked @pytest.mark.e2e: mark it, or use the in-process server (tests/inprocess.py)"
        )


@dataclass
class ServerProcess:
    """A running server: its process, the URLs it announced and its output so far."""

    process: subprocess.Popen[str]
    urls: dict[str, str]
    output: list[str] = field(default_factory=list)
    pump: threading.Thread | None = None

    @property
    def http_url(self) -> str:
        return self.urls["OTLP/HTTP"]

    @property
    def api_url(self) -> str:
        """Base URL of the read listener (the API is under /api/v1)."""
        return self.urls["read API"].removesuffix("/api/v1")

    @property
    def grpc_target(self) -> str:
        """host:port of the OTLP/gRPC listener."""
        return self.urls["OTLP/gRPC"].split("://", 1)[1]

    def decode_workers(self, count: int, timeout: float = 30) -> list[psutil.Process]:
        """The server's ``count`` decode workers, once that many run (they start in the
        background; its resource tracker is a child too, but not a worker)."""
        deadline = time.monotonic() + timeout
        while True:
            children = psutil.Process(self.process.pid).children()
            workers = [child for child in children if "spawn_main" in " ".join(child.cmdline())]
            if len(workers) == count:
                return workers
            if time.monotonic() > deadline:
                raise AssertionError(f"expected {count} decode workers, found {len(workers)}")
            time.sleep(0.1)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        """Stop the server (SIGTERM drains the writer; SIGKILL is a crash) and wait for it."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()  # never leak the process, then report the hang
            self.process.wait()
            raise
        if self.pump is not None:
            self.pump.join(timeout)
        # a child that outlived the server (a decode worker) may still hold the pipe open: the
        # pump then stays blocked in a read, and closing the stream under it would block too
        pumping = self.pump is not None and self.pump.is_alive()
        if self.process.stdout is not None and not pumping:
            self.process.stdout.close()
        return code


def _pump(stream: object, lines: queue.Queue[str | None], keep: list[str]) -> None:
    for line in stream:  # type: ignore[attr-defined]
        keep.append(line.rstrip("\n"))
        lines.put(line.rstrip("\n"))
    lines.put(None)


def start_server(
    db: Path,
    *extra: str,
    env: dict[str, str] | None = None,
    wait_for: Sequence[str] = ("OTLP/HTTP",),
    timeout: float = 60,
) -> ServerProcess:
    """Start `flaglens serve --db DB --http-port 0` and wait until it announces its endpoints.

    Dashboards and OTLP/gRPC are off unless ``extra`` asks for them with ``--dashboard-port`` /
    ``--grpc-port``; the read API is on a free port unless ``extra`` says ``--no-api``.
    """
    require_e2e("flaglens serve")
    if "--dashboard-port" not in extra:
        extra = (*extra, "--no-dashboards", "--dashboard-port", "0")
    elif "dashboards" not in wait_for:
        wait_for = (*wait_for, "dashboards")
    if "--no-api" not in extra and "read API" not in wait_for:
        wait_for = (*wait_for, "read API")
    if "--grpc-port" not in extra:
        extra = (*extra, "--no-grpc")
    elif "OTLP/gRPC" not in wait_for:
        wait_for = (*wait_for, "OTLP/gRPC")
    command = [
        sys.executable,
        "-m",
        "flaglens.cli.main",
        "serve",
        "--db",
        str(db),
        "--http-port",
        "0",
        *extra,
    ]
    full_env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    # a server imports ~1,500 modules; where the environment says not to write their bytecode
    # (PYTHONDONTWRITEBYTECODE, as in some containers), every start would compile them all
    # again, seconds of CPU each time: the first server writes it, later ones read it
    if env is None or "PYTHONDONTWRITEBYTECODE" not in env:
        full_env.pop("PYTHONDONTWRITEBYTECODE", None)
    process = subprocess.Popen(
        command, cwd=REPO, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    lines: queue.Queue[str | None] = queue.Queue()
    server = ServerProcess(process, {})
    server.pump = threading.Thread(
        target=_pump, args=(process.stdout, lines, server.output), daemon=True
    )
    server.pump.start()
    deadline = time.monotonic() + timeout
    while not all(name in server.urls for name in wait_for):
        try:
            line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
        except queue.Empty:
            line = None
        if line is None:
            server.stop(signal.SIGKILL)
            raise RuntimeError("flaglens serve did not start:\n" + "\n".join(server.output))
        match = _LISTENING.match(line)
        if match:
            server.urls[match.group("what")] = match.group("url")
    return server


@contextmanager
def running_server(
    db: Path, *extra: str, env: dict[str, str] | None = None
) -> Iterator[ServerProcess]:
    """A server for the duration of a with-block; stopped (gracefully) at the end."""
    server = start_server(db, *extra, env=env)
    try:
        yield server
    finally:
        server.stop()
