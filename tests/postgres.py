"""A throwaway PostgreSQL cluster for the lake's tests and benchmarks: initdb into a temporary
directory, pg_ctl on a free loopback port, stopped and removed after. No mock.

Debian's `postgresql` package (scripts/setup installs it) puts the binaries in
/usr/lib/postgresql/<major>/bin, off PATH. PostgreSQL refuses to run as root, so as root (CI,
this machine) the cluster runs as the `postgres` user the package creates.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

_DEBIAN_BINARIES = Path("/usr/lib/postgresql")


def find_binaries() -> Path | None:
    """The directory holding initdb and pg_ctl (None: PostgreSQL is not installed)."""
    on_path = shutil.which("pg_ctl")
    if on_path and shutil.which("initdb"):
        return Path(on_path).resolve().parent
    if _DEBIAN_BINARIES.is_dir():
        majors = sorted(
            (p for p in _DEBIAN_BINARIES.iterdir() if (p / "bin" / "initdb").exists()),
            key=lambda p: int(p.name) if p.name.isdigit() else 0,
        )
        if majors:
            return majors[-1] / "bin"
    return None


MISSING = (
    "PostgreSQL's initdb/pg_ctl are not installed (Debian's postgresql package; "
    "./scripts/setup installs it as root, and CI runs it)"
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Cluster:
    """A running cluster: connect as ``postgres`` to 127.0.0.1:``port`` (trust auth)."""

    binaries: Path
    directory: Path
    port: int
    user: str | None  # the OS user it runs as (None: this process's)

    def url(self, database: str = "postgres") -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def lake_url(self, schema: str | None = None, database: str = "flaglens") -> str:
        """A DuckLake store URL on this cluster (``schema``: a fresh catalog per caller)."""
        url = f"ducklake:{self.url(database)}"
        return f"{url}?metadata_schema={schema}" if schema else url

    def fresh_lake_url(self) -> str:
        return self.lake_url(f"lake_{uuid.uuid4().hex[:12]}")

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.binaries / args[0]), *args[1:]],
            check=True,
            capture_output=True,
            text=True,
            user=self.user,
            cwd=self.directory,
        )

    def psql(self, sql: str, database: str = "postgres") -> str:
        # the cluster's own psql: Debian's /usr/bin/psql is a Perl wrapper that takes 20 times
        # as long to start, and a lake opened for a test runs psql three times
        own = self.binaries / "psql"
        psql = str(own) if own.exists() else shutil.which("psql") or "psql"
        done = subprocess.run(
            [psql, "-X", "-qAt", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
             "-d", database, "-c", sql],
            check=True, capture_output=True, text=True,
        )  # fmt: skip
        return done.stdout

    def clone(self, template: str, database: str) -> None:
        """A new ``database``, a copy of ``template`` (which nobody may be connected to)."""
        self.psql(f'CREATE DATABASE "{database}" TEMPLATE "{template}" STRATEGY FILE_COPY')

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.directory / "data"), "-m", "immediate", "-w", "stop")


@contextmanager
def cluster(database: str = "flaglens", *, durable: bool = False) -> Iterator[Cluster]:
    """Start a cluster with an empty ``database``; stop it and delete its files after.

    Not ``durable`` (tests): no fsync, which a cluster thrown away after the run does not need.
    """
    binaries = find_binaries()
    if binaries is None:
        raise FileNotFoundError(MISSING)
    user = None
    directory = Path(tempfile.mkdtemp(prefix="flaglens-pg-"))
    if os.geteuid() == 0:
        user = "postgres"
        account = pwd.getpwnam(user)
        os.chown(directory, account.pw_uid, account.pw_gid)
    data = directory / "data"
    port = _free_port()
    running = Cluster(binaries, directory, port, user)
    try:
        running._run("initdb", "-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8",
                     "--no-sync")  # fmt: skip
        options = f"-p {port} -c listen_addresses=127.0.0.1 -k {directory} -c max_connections=200"
        if not durable:
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        running._run("pg_ctl", "-D", str(data), "-o", options, "-l", str(directory / "log"),
                     "-w", "-t", "60", "start")  # fmt: skip
        running.psql(f"CREATE DATABASE {database}")
        yield running
    finally:
        if (data / "postmaster.pid").exists():
            try:
                running.stop()
            except subprocess.CalledProcessError:
                pass  # already gone; the files go below either way
        shutil.rmtree(directory, ignore_errors=True)
