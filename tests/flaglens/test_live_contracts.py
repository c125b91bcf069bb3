"""Contracts changed under a running server: reload by the admin endpoint and by SIGHUP under
ingest load, and quarantine replay through the server's writer (real processes)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import duckdb
import httpx
import pytest

from ingest.auth import token_hash
from tests.contracts.copies import PRIVACY, copy_contracts, privacy_allowing_breaks
from tests.factories import otlp_json_logs, privacy_decision_attributes
from tests.servers import REPO, start_server

pytestmark = pytest.mark.e2e

INGEST, ADMIN, READ = "ingest-secret", "admin-secret", "read-secret"


def token_file(path):
    path.write_text(
        f'[[token]]\nname = "exporter"\nsha256 = "{token_hash(INGEST)}"\nservices = ["*"]\n'
        f'[[token]]\nname = "ops"\nsha256 = "{token_hash(ADMIN)}"\nrole = "admin"\n'
        f'[[token]]\nname = "grafana"\nsha256 = "{token_hash(READ)}"\nrole = "read"\n'
    )
    return path


def post_logs(client, url, records, token=INGEST):
    response = client.post(
        f"{url}/v1/logs", content=json.dumps(otlp_json_logs(records)),
        headers={"content-type": "application/json", "authorization": f"Bearer {token}"},
    )  # fmt: skip
    return response


def unknown(**extra):
    return privacy_decision_attributes(**{"privacy.consent.state": "unknown", **extra})


def replay_cli(db, *args):
    done = subprocess.run(
        [sys.executable, "-m", "flaglens.cli.main", "quarantine", "replay", "--db", str(db),
         "--token", ADMIN, "--format", "json", *args],
        cwd=REPO, capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "replaying through it" in done.stderr
    return json.loads(done.stdout)


def test_replay_beside_a_live_server_releases_what_passes_once(tmp_path):
    """Quarantined under 1.1.0; reloaded with 1.2.0 by the admin endpoint; the CLI's replay goes
    through the server, releases the three 'unknown' consents once, not the missing purpose."""
    directory = copy_contracts(tmp_path)
    db = tmp_path / "live.duckdb"
    # decoding on a thread of the server: the replay is the server's writer's work, and the
    # SIGHUP test below covers the decode workers' reload
    server = start_server(db, "--contracts-dir", str(directory), "--decode-workers", "0",
                          "--auth-file", str(token_file(tmp_path / "tokens.toml")))  # fmt: skip
    try:
        with httpx.Client(timeout=60) as client:
            records = [unknown(), unknown(), unknown(),
                       privacy_decision_attributes(**{"privacy.purpose": None}),
                       privacy_decision_attributes(), privacy_decision_attributes()]  # fmt: skip
            answer = post_logs(client, server.http_url, records).json()
            assert answer["partialSuccess"]["rejectedLogRecords"] == "4"
            privacy_allowing_breaks(directory)
            reload_url = f"{server.api_url}/api/v1/admin/contracts/reload"
            refused = client.post(reload_url, headers={"authorization": f"Bearer {READ}"})
            assert refused.status_code == 403
            reloaded = client.post(reload_url, headers={"authorization": f"Bearer {ADMIN}"})
            assert reloaded.status_code == 200, reloaded.text
            assert f"{PRIVACY}@1.2.0" in reloaded.json()["contracts"]
            # the preview and the dry run change nothing: both at once, each in its process
            with ThreadPoolExecutor(2) as pool:
                previewing = pool.submit(
                    subprocess.run,
                    [sys.executable, "-m", "flaglens.cli.main", "contracts", "preview",
                     str(directory), "--db", str(db), "--token", READ, "--since", "1d",
                     "--from", "2025-01-01", "--format", "json"],
                    cwd=REPO, capture_output=True, text=True, timeout=300,
                    env={**os.environ, "PYTHONPATH": str(REPO)},
                )  # fmt: skip
                dry = replay_cli(db, "--dry-run")
                preview = previewing.result()
            assert preview.returncode == 0, preview.stderr
            assert "through its API" in preview.stderr
            previewed = json.loads(preview.stdout)
            assert (previewed["would_pass"], previewed["quarantined_checked"]) == (3, 4)
            assert (dry["released"], dry["request_id"]) == (3, 0)
            first = replay_cli(db, "--contract", PRIVACY)
            assert (first["checked"], first["released"], first["still_rejected"]) == (4, 3, 1)
            # the server goes on taking exports while and after it replays
            assert post_logs(client, server.http_url, [unknown()]).status_code == 200
            second = replay_cli(db)
            assert (second["checked"], second["released"]) == (1, 0)
    finally:
        server.stop()
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM decisions").fetchone()[0] == 2 + 3 + 1
        assert con.execute("SELECT count(DISTINCT decision_id) FROM decisions").fetchone()[0] == 6
        releases = con.execute(
            "SELECT released_by, contract_version, count(*) FROM quarantine_releases GROUP BY ALL"
        ).fetchall()
        assert releases == [("ops", "1.2.0", 3)]
        assert con.execute("SELECT count(*) FROM quarantine").fetchone()[0] == 4


def test_sighup_under_ingest_load_swaps_contracts_refusing_and_losing_nothing(tmp_path):
    """Exporters post without pause while SIGHUP swaps in privacy 1.2.0: every request is
    answered 200, every record sent is stored or quarantined, and records after the swap are
    accepted under 1.2.0."""
    directory = copy_contracts(tmp_path)
    db = tmp_path / "hup.duckdb"
    server = start_server(db, "--contracts-dir", str(directory), "--decode-workers", "2")
    statuses: list[int] = []
    sent = [0]
    stop = threading.Event()
    lock = threading.Lock()

    def exporter():
        with httpx.Client(timeout=60) as client:
            while not stop.is_set():
                records = [unknown() for _ in range(10)] + [
                    privacy_decision_attributes() for _ in range(10)
                ]
                try:
                    code = post_logs(client, server.http_url, records).status_code
                except httpx.HTTPError:
                    code = -1  # a refused or dropped connection
                with lock:
                    statuses.append(code)
                    if code == 200:
                        sent[0] += len(records)

    threads = [threading.Thread(target=exporter) for _ in range(4)]
    try:
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 60
        while sent[0] < 400 and time.monotonic() < deadline:  # some served under 1.1.0 first
            time.sleep(0.1)
        privacy_allowing_breaks(directory)
        server.process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 120
        generation = 1
        with httpx.Client(timeout=10) as client:
            while generation < 2 and time.monotonic() < deadline:
                health = client.get(f"{server.http_url}/healthz").json()["contracts"]
                assert health["last_error"] is None, health
                generation = health["generation"]
                time.sleep(0.2)
        assert generation == 2, "the reload did not happen within 120 s"
        swapped_at = sent[0]
        while sent[0] < swapped_at + 400 and time.monotonic() < deadline + 60:
            time.sleep(0.1)
    finally:
        stop.set()
        for thread in threads:
            thread.join(60)
        server.stop()
    assert statuses and set(statuses) == {200}, sorted(set(statuses))
    with duckdb.connect(str(db), read_only=True) as con:
        stored = con.execute("SELECT count(*) FROM decisions").fetchone()[0]
        quarantined = con.execute("SELECT count(*) FROM quarantine").fetchone()[0]
        under_new = con.execute(
            "SELECT count(*) FROM decisions WHERE contract_version = '1.2.0'"
        ).fetchone()[0]
        received = con.execute(
            "SELECT sum(received) FROM ingest_log WHERE status_code = 200"
        ).fetchone()[0]
        # each request was checked under one set: all ten 'unknown' consents rejected, or none
        rejected = {
            r for (r,) in con.execute("SELECT DISTINCT rejected FROM ingest_log").fetchall()
        }
    assert stored + quarantined == sent[0] == received
    assert quarantined > 0 and under_new > 0
    assert rejected == {0, 10}
