"""The sample week and the committed fixtures, loaded through the real OTLP path for tests."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.servers import REPO

FIXTURES = REPO / "sample_data" / "fixtures"
# a fixed end, so that the week (and its manifest) is the same in every run
WEEK_END = "2026-11-23T00:00:00Z"
WEEK_SEED = 7


@dataclass(frozen=True)
class LoadedWeek:
    directory: Path
    db: Path
    keys: Path
    manifest: dict[str, Any]
    output: str


def load_week(directory: Path, *, days: int = 7, scale: float = 1.0) -> LoadedWeek:
    """`flaglens demo --load-only` into ``directory`` (a real server, the real OTLP path)."""
    command = [
        sys.executable, "-m", "flaglens.cli.main", "demo", "--load-only", "--no-progress",
        "--dir", str(directory), "--http-port", "0", "--grpc-port", "0", "--dashboard-port", "0",
        "--seed", str(WEEK_SEED), "--end", WEEK_END, "--days", str(days), "--scale", str(scale),
    ]  # fmt: skip
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"demo failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    manifest = json.loads((directory / "manifest.json").read_text())
    return LoadedWeek(
        directory, directory / "flaglens.duckdb", directory / "keys.toml", manifest, done.stdout
    )


def post_fixtures(url: str) -> dict[str, int]:
    """POST every committed OTLP/JSON fixture file; returns rejected records per signal."""
    rejected = {"logs": 0, "traces": 0, "metrics": 0}
    with httpx.Client(timeout=60) as client:
        for path in sorted(FIXTURES.glob("*.json")):
            if path.name == "manifest.json":
                continue
            signal = path.name.split("-", 1)[0]
            response = client.post(
                f"{url}/v1/{signal}",
                content=path.read_bytes(),
                headers={"content-type": "application/json"},
            )
            response.raise_for_status()
            partial = response.json().get("partialSuccess", {})
            key = {"logs": "rejectedLogRecords", "traces": "rejectedSpans",
                   "metrics": "rejectedDataPoints"}[signal]  # fmt: skip
            rejected[signal] += int(partial.get(key, 0) or 0)
    return rejected
