"""Durable acknowledgement: a server killed hard loses no record it had acknowledged and leaves
no decode worker behind; one stopped with SIGTERM drains before it exits."""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import duckdb
import httpx
import psutil
import pytest

from tests.factories import decision_attributes, otlp_json_logs
from tests.servers import ServerProcess, start_server

pytestmark = pytest.mark.e2e


def _sender(url: str, acked: list[str], stop: threading.Event) -> None:
    """Send 20-decision requests until told to stop or the server dies; keep acknowledged ids."""
    with httpx.Client(timeout=10) as client:
        while not stop.is_set():
            batch = [decision_attributes() for _ in range(20)]
            body = json.dumps(otlp_json_logs(batch)).encode()
            try:
                response = client.post(
                    f"{url}/v1/logs", content=body, headers={"content-type": "application/json"}
                )
            except httpx.HTTPError:
                return
            if response.status_code == 200:
                acked.extend(attrs["decision.id"] for attrs in batch)


@contextmanager
def _under_load(server: ServerProcess) -> Iterator[list[str]]:
    """Three senders posting to ``server`` until the block ends; yields the acknowledged ids
    once 600 are in, and joins the senders after the block (which stops the server)."""
    acked: list[str] = []
    stop = threading.Event()
    senders = [
        threading.Thread(target=_sender, args=(server.http_url, acked, stop)) for _ in range(3)
    ]
    for thread in senders:
        thread.start()
    try:
        while len(acked) < 600:
            threading.Event().wait(0.05)
        yield acked
    finally:
        stop.set()
        for thread in senders:
            thread.join(30)


def test_kill_9_loses_nothing_acknowledged_and_the_restarted_server_drains_on_sigterm(tmp_path):
    """Killed hard while exporters send: its decode workers exit, and the server started again
    on the file (which replays the write-ahead log) has every decision acknowledged before the
    crash. SIGTERM to that server, under load too: it drains and exits 0 promptly (the
    hardening's timeouts and connection guard must not hold it up), and every acknowledged
    decision of both is stored once. (One restart serves both halves: a server of its own for
    the SIGTERM would cost another start.)"""
    db = tmp_path / "f.duckdb"
    server = start_server(db, "--decode-workers", "2")
    with _under_load(server) as acked_before_crash:
        workers = server.decode_workers(2)
        server.stop(signal.SIGKILL)
    _, alive = psutil.wait_procs(workers, timeout=10)
    assert not alive, f"decode workers outlived their server: {[p.pid for p in alive]}"
    restarted = start_server(db)  # reopening replays the write-ahead log
    with _under_load(restarted) as acked_after_restart:
        started = time.monotonic()
        code = restarted.stop(signal.SIGTERM)
        took = time.monotonic() - started
    con = duckdb.connect(str(db), read_only=True)
    stored = [row[0] for row in con.sql("select decision_id from decisions").fetchall()]
    assert len(acked_before_crash) >= 600
    assert set(acked_before_crash) <= set(stored)
    assert code == 0
    assert took < 20  # 1.5 s on an idle machine; the shared one is slower
    assert set(acked_after_restart) <= set(stored)
    assert len(stored) == len(set(stored))
