"""The real receivers (uvicorn with flaglens' connection limits, and gRPC) on loopback sockets,
in a thread of the test process: real requests and raw sockets, without starting a server
process. Decoding runs on a thread (``decode_workers=0``)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from flaglens.server import Announcer, bind_socket, http_server, serve_receivers, url_of
from ingest.service import IngestService
from ingest.settings import IngestSettings


@dataclass
class LiveReceivers:
    service: IngestService
    http_url: str
    grpc_target: str | None

    @property
    def http_address(self) -> tuple[str, int]:
        host, port = self.http_url.rsplit("//", 1)[1].rsplit(":", 1)
        return host, int(port)

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        """Rows of a query on the live store, once the writer has settled (its queue empty and
        nothing committed for 100 ms)."""
        deadline = time.monotonic() + 10
        seen = -1
        while time.monotonic() < deadline:
            stats = self.service.writer.stats()
            if not stats.pending_batches and stats.batches_committed == seen:
                break
            seen = stats.batches_committed
            time.sleep(0.1)
        cursor = self.service.store.cursor()
        try:
            return cursor.execute(sql).fetchall()
        finally:
            cursor.close()


@contextmanager
def live_receivers(db: Path, *, grpc: bool = True, **settings: Any) -> Iterator[LiveReceivers]:
    """Receivers over a new store at ``db`` with the given settings, stopped after the block."""
    values: dict[str, Any] = {"decode_workers": 0, **settings}
    config = IngestSettings(db=db, http_port=0, grpc_port=0, no_grpc=not grpc, **values)
    service = IngestService(config)
    service.start()
    sock = bind_socket("127.0.0.1", 0)
    server = http_server(service, config, config.max_connections)
    urls: dict[str, str] = {}
    announced = threading.Event()

    def note(line: str) -> None:
        what, _, url = line.removeprefix("flaglens: ").partition(" listening on ")
        urls[what] = url
        announced.set()

    def run() -> None:
        asyncio.run(
            serve_receivers(server, sock, service, config, Announcer(note), config.max_connections)
        )

    thread = threading.Thread(target=run, name="live-receivers", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not (server.started and announced.is_set()) and time.monotonic() < deadline:
        time.sleep(0.01)
    if not server.started:
        raise RuntimeError("the receivers did not start")
    grpc_target = urls["OTLP/gRPC"].split("://", 1)[1] if grpc else None
    try:
        yield LiveReceivers(service, url_of(sock), grpc_target)
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()
        service.close()


def stored(db: Path, sql: str) -> list[tuple[Any, ...]]:
    """Rows of a query on a store that is closed."""
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql).fetchall()
