"""The sample week and the committed fixtures, loaded through the real OTLP path for tests."""

from __future__ import annotations

import fcntl
import hashlib
import json
import multiprocessing
import os
import shutil
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import httpx

from analytics.windows import parse_instant
from sample_data.generator import Options
from sample_data.otlp import SendSummary
from sample_data.week import KEY_FILE, MANIFEST, send_week
from tests.inprocess import inprocess_server
from tests.servers import REPO

FIXTURES = REPO / "sample_data" / "fixtures"
# a fixed end, so that the week (and its manifest) is the same in every run
WEEK_END = "2026-11-23T00:00:00Z"
WEEK_SEED = 7
# what the loaded week depends on: the generator and sender, the receivers, decoding, contracts
# and store, the server's composition and this loader; and the libraries that make the records
# and write the file
_WEEK_SOURCES = ("sample_data", "ingest", "store", "contracts", "flaglens", "tests/sample_week.py",
                 "tests/inprocess.py")  # fmt: skip
_WEEK_LIBRARIES = ("duckdb", "opentelemetry-sdk", "opentelemetry-proto", "protobuf")


@dataclass(frozen=True)
class LoadedWeek:
    directory: Path
    db: Path
    keys: Path
    manifest: dict[str, Any]
    summary: SendSummary  # what the server answered, as the sender counted it


def load_week(directory: Path, *, days: int = 7, scale: float = 1.0) -> LoadedWeek:
    """What `flaglens demo --load-only` does, with the server in this process: the week's OTLP
    requests (made by the SDK and the stock exporters' encoders) sent over HTTP to an in-process
    server, which decodes, checks and writes them as `flaglens serve` does. The server is
    stopped (the writer drained, the store closed) before this returns.

    The sender plays the week in a process of its own, as an instrumented service would: making
    the records through the SDK costs more than storing them, and on a thread of this process it
    would take turns with the server on one GIL.
    """
    options = Options(seed=WEEK_SEED, days=days, scale=scale, end=parse_instant(WEEK_END))
    db = directory / "flaglens.duckdb"
    with (
        inprocess_server(db) as server,
        ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as sender,
    ):
        played = sender.submit(send_week, options, server.http_url, directory, progress=False)
        summary, _truth = played.result()
    manifest = json.loads((directory / MANIFEST).read_text())
    return LoadedWeek(directory, db, directory / KEY_FILE, manifest, summary)


def week_key(days: int = 7, scale: float = 1.0) -> str:
    """A digest of everything the loaded week depends on (see ``_WEEK_SOURCES``)."""
    digest = hashlib.sha256(f"{WEEK_SEED} {WEEK_END} {days} {scale}".encode())
    for library in _WEEK_LIBRARIES:
        digest.update(f"{library}=={version(library)}\n".encode())
    for source in _WEEK_SOURCES:
        root = REPO / source
        files = [root] if root.is_file() else sorted(root.rglob("*"))
        for path in files:
            if path.is_file() and "__pycache__" not in path.parts:
                digest.update(str(path.relative_to(REPO)).encode() + b"\0")
                digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:24]


def shared_week(built: Path, cache: Path | None) -> Path:
    """The sample week loaded once into ``built`` for every worker of this run: the first to ask
    builds it (copied from a week kept under ``cache``, keyed by :func:`week_key`, or loaded now
    by :func:`load_week` and kept there for later sessions) while the others wait on a lock;
    later callers find it built. ``pytest --cache-clear`` loads it afresh."""
    built.parent.mkdir(parents=True, exist_ok=True)
    with open(built.parent / f"{built.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (built / "summary.json").exists():
            return built
        kept = cache / week_key() if cache is not None else None
        if kept is not None and (kept / "summary.json").exists():
            shutil.copytree(kept, built)
            return built
        loading = built.with_name(f"{built.name}.loading")
        shutil.rmtree(loading, ignore_errors=True)
        loading.mkdir()
        week = load_week(loading)
        (loading / "summary.json").write_text(json.dumps(asdict(week.summary)))
        if cache is not None and kept is not None:
            keeping = cache / f"{kept.name}.{os.getpid()}"
            shutil.rmtree(keeping, ignore_errors=True)
            shutil.copytree(loading, keeping)
            shutil.rmtree(kept, ignore_errors=True)
            keeping.rename(kept)
            for stale in cache.iterdir():  # only the newest week is kept
                if stale.name != kept.name:
                    shutil.rmtree(stale, ignore_errors=True)
        loading.rename(built)
        return built


def copy_week(built: Path, directory: Path) -> LoadedWeek:
    """A copy of the week in ``built`` (see :func:`shared_week`) in ``directory``, the caller's own
    to open read-write."""
    shutil.copytree(built, directory, dirs_exist_ok=True)
    summary = SendSummary(**json.loads((directory / "summary.json").read_text()))
    manifest = json.loads((directory / MANIFEST).read_text())
    return LoadedWeek(directory, directory / "flaglens.duckdb", directory / KEY_FILE, manifest,
                      summary)  # fmt: skip


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
