"""`flaglens demo`: a fresh embedded database, the server, the sample week sent through OTLP.

The server runs as a child process (`flaglens serve` on free loopback ports, the dashboards
beside it), exactly as a user would run it; the sample week goes in through OTLP/HTTP like any
exporter's data. Without ``--load-only`` the server keeps running until Ctrl-C.
"""

from __future__ import annotations

import argparse
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from flaglens.cli.flags import add_setting_flags, given_flags
from flaglens.cli.sample_data import add_week_arguments, print_summary, week_options
from flaglens.settings import ServeSettings, flag_of
from store.location import StoreLocation

# the settings of the server that the demo takes and hands to `flaglens serve` as given (those
# not given come from the server's FLAGLENS_* variables, else its defaults)
_PORTS = ("http_port", "grpc_port", "dashboard_port")
_PASSED = (*_PORTS, "store", "data_path")  # --store: the demo on a lake (make demo-lake)
_LISTENING = re.compile(r"^flaglens: (?P<what>.+?) listening on (?P<url>\S+)$")


def register(subparsers: Any) -> None:
    """Add `flaglens demo`."""
    parser = subparsers.add_parser(
        "demo",
        help="load the sample week into a fresh database and open the dashboards",
        description="Create ./flaglens-demo/ (database, manifest, keys), start `flaglens serve` "
        "on it, send the sample week through OTLP and print the URLs to open.",
    )
    parser.add_argument(
        "--dir", type=Path, default=Path("flaglens-demo"), help="where the demo lives"
    )
    parser.add_argument(
        "--load-only", action="store_true", help="stop the server and exit once loaded"
    )
    add_setting_flags(parser, ServeSettings, only=_PASSED)
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_week_arguments(parser)
    parser.set_defaults(handler=_run)


class _Server:
    """A `flaglens serve` child process and the URLs it announced."""

    def __init__(self, command: list[str]) -> None:
        self.process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.urls: dict[str, str] = {}
        self.output: list[str] = []
        self._ready = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            line = line.rstrip("\n")
            self.output.append(line)
            match = _LISTENING.match(line)
            if match:
                self.urls[match["what"]] = match["url"]
                if "OTLP/HTTP" in self.urls and "dashboards" in self.urls:
                    self._ready.set()
        self._ready.set()

    def wait_ready(self, timeout: float) -> bool:
        self._ready.wait(timeout)
        return "OTLP/HTTP" in self.urls and self.process.poll() is None

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(60)
        finally:
            self._reader.join(5)


def _store_counts(location: StoreLocation) -> dict[str, int]:
    from store.connection import Store

    with Store.open(location, read_only=True) as store:
        cursor = store.cursor()
        counts = {}
        for table in ("decisions", "policy_changes", "engagement", "spans", "quarantine"):
            row = cursor.execute(f"SELECT count(*) FROM {table}").fetchone()  # noqa: S608
            counts[table] = int(row[0]) if row else 0
        return counts


def serve_command(args: argparse.Namespace, db: Path, keys: Path) -> list[str]:
    """The `flaglens serve` the demo runs: its database and keys, and the ports given."""
    command = [sys.executable, "-m", "flaglens.cli.main", "serve", "--db", str(db)]
    command += ["--keys", str(keys)]
    for name, value in given_flags(args, ServeSettings).items():
        if name in _PASSED:
            command += [flag_of(name), str(value)]
    return command


def _run(args: argparse.Namespace) -> int:
    from store.errors import StoreError
    from store.location import parse_store

    options = week_options(args)
    directory: Path = args.dir
    db = directory / "flaglens.duckdb"
    try:
        location = parse_store(args.store or db, data_path=args.data_path)
    except StoreError as exc:
        print(f"flaglens demo: {exc}", file=sys.stderr)
        return 2
    if directory.exists():
        for stale in (db, db.with_name(db.name + ".wal")):
            stale.unlink(missing_ok=True)
        shutil.rmtree(directory / "reports", ignore_errors=True)
    directory.mkdir(parents=True, exist_ok=True)
    command = serve_command(args, db, directory / "keys.toml")
    # the key file must exist before the server (and its analytics) start
    from sample_data.generator import Simulation
    from sample_data.week import KEY_FILE, write_key_file

    write_key_file(Simulation(options), directory / KEY_FILE)
    server = _Server(command)
    # imported while the server starts
    from sample_data.otlp import SendError
    from sample_data.week import send_week

    if not server.wait_ready(60):
        server.stop()
        print("flaglens demo: the server did not start:", file=sys.stderr)
        print("\n".join(server.output[-20:]), file=sys.stderr)
        return 1
    described = location.describe()
    if location.is_lake:
        described += f", data in {location.data_path}"
    print(f"flaglens demo: database {described}, OTLP/HTTP at {server.urls['OTLP/HTTP']}")
    started = time.monotonic()
    try:
        summary, truth = send_week(
            options, server.urls["OTLP/HTTP"], directory, progress=not args.no_progress
        )
    except SendError as exc:
        server.stop()
        print(f"flaglens demo: sending failed: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        server.stop()
        return 130
    print_summary(summary, truth)
    print(
        f"loaded in {time.monotonic() - started:.0f} s; ground truth in {directory}/manifest.json"
    )
    if args.load_only:
        code = server.stop()
        if code != 0:
            print("\n".join(server.output[-20:]), file=sys.stderr)
            return 1
        counts = _store_counts(location)
        print("stored: " + ", ".join(f"{name} {n:,}" for name, n in counts.items()))
        return 0
    for what, url in server.urls.items():
        print(f"  {what:<12} {url}")
    print("open the dashboards URL above; Ctrl-C stops the server")

    def interrupt(_sig: int, _frame: object) -> None:
        raise KeyboardInterrupt  # SIGTERM stops the demo like Ctrl-C: the server goes with it

    signal.signal(signal.SIGTERM, interrupt)
    try:
        server.process.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0
