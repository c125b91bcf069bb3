"""A real full disk under a running server (a small tmpfs in a private mount namespace): the
exporters and /healthz are told the cause, disk full with the database's path, the log says so
once rather than per failed commit, and writes succeed again once space is freed."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time

import httpx
import pytest

from tests.factories import decision_attributes, otlp_json_logs
from tests.servers import REPO

pytestmark = pytest.mark.e2e


def _namespaces_work(tmp_path) -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = tmp_path / "probe"
    probe.mkdir()
    done = subprocess.run(
        ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c",
         f"mount -t tmpfs -o size=1m tmpfs {probe}"],
        capture_output=True, timeout=30,
    )  # fmt: skip
    return done.returncode == 0


def _wait_for(path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} did not appear")
        time.sleep(0.1)


def _export(url: str) -> httpx.Response:
    body = json.dumps(otlp_json_logs([decision_attributes() for _ in range(200)]))
    return httpx.post(f"{url}/v1/logs", content=body, timeout=30,
                      headers={"content-type": "application/json"})  # fmt: skip


def test_a_full_disk_is_reported_with_its_cause_and_recovered_from(tmp_path):
    if not _namespaces_work(tmp_path):
        pytest.skip("cannot mount a tmpfs in a user namespace here (unshare)")
    disk = tmp_path / "disk"
    disk.mkdir()
    fill, filled, free, log = (tmp_path / n for n in ("fill", "filled", "free", "server.log"))
    # mount a 48 MB tmpfs for the database; fill it when told, free it when told
    script = f"""
        set -e
        mount -t tmpfs -o size=48m tmpfs {disk}
        (while [ ! -e {fill} ]; do sleep 0.1; done
         dd if=/dev/zero of={disk}/filler bs=64k 2>/dev/null || true; touch {filled}
         while [ ! -e {free} ]; do sleep 0.1; done; rm -f {disk}/filler) &
        exec {sys.executable} -m flaglens.cli.main serve --db {disk}/f.duckdb --http-port 0 \\
            --no-grpc --no-dashboards --decode-workers 1
    """
    with log.open("w") as out:
        process = subprocess.Popen(
            ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", script],
            cwd=REPO, stdout=out, stderr=subprocess.STDOUT, text=True,
            env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)},
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        url = None
        while url is None and time.monotonic() < deadline:
            for line in log.read_text().splitlines():
                if "OTLP/HTTP listening on" in line:
                    url = line.rsplit(" ", 1)[1]
            time.sleep(0.2)
        assert url, log.read_text()
        assert _export(url).status_code == 200
        fill.touch()
        _wait_for(filled)
        answers = [_export(url) for _ in range(20)]
        assert {a.status_code for a in answers} == {503}
        assert all(a.headers.get("retry-after") for a in answers)
        message = answers[-1].json()["message"]
        assert "disk full" in message and f"{disk}/f.duckdb" in message
        assert "no transaction is active" not in message
        health = httpx.get(f"{url}/healthz")
        assert health.status_code == 503
        assert "disk full" in health.json()["problem"]
        free.touch()
        deadline = time.monotonic() + 30
        while _export(url).status_code != 200:
            assert time.monotonic() < deadline, "writes did not recover once space was freed"
            time.sleep(0.5)
        assert httpx.get(f"{url}/healthz").json()["status"] == "ok"
    finally:
        process.terminate()
        process.wait(60)
    output = log.read_text()
    failures = [line for line in output.splitlines() if "write failed" in line]
    assert 1 <= len(failures) <= 2, output  # once per interval, not once per failed commit
    assert "writes succeed again" in output
    assert "commit conflicted" not in output  # a full disk is answered at once, not retried
    assert "Traceback" not in output
