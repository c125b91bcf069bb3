"""The store as a DuckLake: a catalog in PostgreSQL, the data as Parquet files under a data path.

Several processes (on one machine or many) open the same lake: each attaches it as the catalog
``flaglens``, exactly where a DuckDB file is attached, so every query reads the same. DuckLake
commits appends from several writers without conflict; a DELETE or UPDATE conflicts with any
append to the same table committed meanwhile (the loser's COMMIT fails and is retried).

The DuckDB extensions come from the package registry as wheels that match one DuckDB release
(``pip install 'flaglens[lake]'``); they are loaded from the wheels' files, never downloaded.
DuckDB names an extension's entry point after its file, and the postgres wheel ships its
extension as ``postgres.duckdb_extension`` while the entry point is ``postgres_scanner``, so it
is loaded through a link of that name. DuckDB checks an extension's signature at every LOAD,
which takes about a second for the two (70 MB); a process checks each file once, and its later
stores (tests, CLI verbs that open two) load the same unchanged files without the check
(:func:`connect`).

Upkeep (:func:`run_upkeep`) is DuckLake's own maintenance: inlined rows flushed to Parquet,
adjacent small files merged, snapshots older than the retention expired and the files only they
referenced deleted.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import duckdb

from store.errors import TerminalStoreError
from store.location import StoreLocation

log = logging.getLogger(__name__)

# (wheel package, file in it, the name DuckDB must load it under)
_EXTENSIONS = (
    ("duckdb_extension_ducklake", "ducklake.duckdb_extension", "ducklake"),
    ("duckdb_extension_postgres", "postgres.duckdb_extension", "postgres_scanner"),
)
# Commits of fewer rows than this are kept in the catalog's tables instead of a Parquet file
# each (DuckLake's data inlining; its default is 10). The writer's groups under light traffic
# and its ledger rows are that small, and a file per table per commit adds up to tens of
# thousands of files a day; upkeep flushes inlined rows to Parquet.
DEFAULT_INLINING_ROW_LIMIT = 1_000
# Snapshots are kept this long (seconds) before upkeep expires them and deletes the files only
# they referenced; time travel and a reader's long query need no more.
DEFAULT_SNAPSHOT_RETENTION = 3_600
DEFAULT_UPKEEP_INTERVAL = 300.0
# How long a data file nobody references may exist before upkeep deletes it: longer than any
# commit takes, since a commit writes its files before the catalog names them.
_ORPHAN_AGE = 3_600


@dataclass(frozen=True, slots=True)
class LakeOptions:
    """How this process attaches a lake, and the lake's upkeep (run by the lease holder)."""

    inlining_row_limit: int = DEFAULT_INLINING_ROW_LIMIT
    snapshot_retention: float = DEFAULT_SNAPSHOT_RETENTION
    upkeep_interval: float = DEFAULT_UPKEEP_INTERVAL


def _extension_files() -> list[tuple[Path, str]]:
    version = f"v{duckdb.__version__}"
    found = []
    for package, filename, name in _EXTENSIONS:
        try:
            root = resources.files(package)
        except ModuleNotFoundError as exc:
            raise TerminalStoreError(
                f"a DuckLake store needs the DuckDB extension wheel {package.replace('_', '-')} "
                f"{duckdb.__version__}: pip install 'flaglens[lake]'"
            ) from exc
        path = Path(str(root.joinpath("extensions", version, filename)))
        if not path.is_file():
            raise TerminalStoreError(
                f"{package.replace('_', '-')} has no extension for DuckDB {version} at {path}; "
                f"install the wheel of the same version as duckdb ({duckdb.__version__})"
            )
        found.append((path, name))
    return found


def _linked_as(path: Path, name: str) -> Path:
    """``path`` reachable as ``<name>.duckdb_extension`` (a link in a per-user directory)."""
    if path.stem == name:
        return path
    folder = Path(tempfile.gettempdir()) / f"flaglens-duckdb-extensions-{os.getuid()}"
    folder.mkdir(mode=0o700, exist_ok=True)
    link = folder / f"{name}-{duckdb.__version__}" / f"{name}.duckdb_extension"
    if link.exists() and link.resolve() == path.resolve():
        return link
    link.parent.mkdir(exist_ok=True)
    staged = link.with_name(f".{name}.{os.getpid()}")
    staged.unlink(missing_ok=True)
    staged.symlink_to(path.resolve())
    staged.replace(link)  # atomic: a process starting at the same time never sees half a link
    return link


# Global state: the extension files whose signature DuckDB checked in this process, by
# (path, inode, size, mtime), so a file changed since is checked again.
_VERIFIED: set[tuple[str, int, int, int]] = set()


def _identity(path: Path) -> tuple[str, int, int, int]:
    stat = path.stat()
    return (str(path), stat.st_ino, stat.st_size, stat.st_mtime_ns)


def connect() -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with DuckLake and postgres loaded from their wheels (never from the
    network); their signatures are checked unless this process checked the same files."""
    files = [(_linked_as(path, name), path) for path, name in _extension_files()]
    verified = all(_identity(path) in _VERIFIED for _, path in files)
    con = duckdb.connect(config={"allow_unsigned_extensions": "true"} if verified else {})
    try:
        con.execute("SET autoinstall_known_extensions = false")
        for link, _ in files:
            con.execute(f"LOAD {literal(str(link))}")
    except BaseException:
        con.close()
        raise
    _VERIFIED.update(_identity(path) for _, path in files)
    return con


def attach(
    con: duckdb.DuckDBPyConnection,
    location: StoreLocation,
    catalog: str,
    options: LakeOptions,
    *,
    read_only: bool,
) -> None:
    """Attach the lake as ``catalog`` (creating it on first use when not read-only)."""
    settings = [f"DATA_INLINING_ROW_LIMIT {int(options.inlining_row_limit)}"]
    if location.data_path:
        settings.append(f"DATA_PATH {literal(location.data_path)}")
        if "://" not in location.data_path and not read_only:
            Path(location.data_path).mkdir(parents=True, exist_ok=True)
    if location.metadata_schema:
        settings.append(f"METADATA_SCHEMA {literal(location.metadata_schema)}")
    if read_only:
        settings.append("READ_ONLY")
    con.execute(
        f"ATTACH {literal('ducklake:postgres:' + location.path)} AS {catalog} "
        f"({', '.join(settings)})"
    )


def literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


@dataclass
class UpkeepReport:
    """What one round of upkeep did."""

    flushed_rows: int = 0
    merged_files: int = 0
    expired_snapshots: int = 0
    deleted_files: int = 0
    seconds: float = 0.0
    steps: dict[str, float] = field(default_factory=dict)


def run_upkeep(
    cursor: duckdb.DuckDBPyConnection, catalog: str, options: LakeOptions
) -> UpkeepReport:
    """One round of DuckLake's maintenance, in the order that frees most.

    None of these steps conflicts with writers' appends; each commits on its own, so a round cut
    short leaves the lake consistent.
    """
    report = UpkeepReport()
    started = time.perf_counter()
    name = literal(catalog)

    def step(label: str, sql: str) -> list[tuple[object, ...]]:
        at = time.perf_counter()
        rows = cursor.execute(sql).fetchall()
        report.steps[label] = round(time.perf_counter() - at, 3)
        return rows

    flushed = step("flush_inlined_data", f"CALL ducklake_flush_inlined_data({name})")
    report.flushed_rows = sum(int(str(row[-1])) for row in flushed)
    merged = step("merge_adjacent_files", f"CALL ducklake_merge_adjacent_files({name})")
    report.merged_files = sum(int(str(row[-2])) for row in merged)
    retention = int(options.snapshot_retention)
    expired = step(
        "expire_snapshots",
        f"CALL ducklake_expire_snapshots({name}, "
        f"older_than => now() - INTERVAL {retention} SECOND)",
    )
    report.expired_snapshots = len(expired)
    deleted = step(
        "cleanup_old_files", f"CALL ducklake_cleanup_old_files({name}, cleanup_all => true)"
    )
    orphans = step(
        "delete_orphaned_files",
        f"CALL ducklake_delete_orphaned_files({name}, "
        f"older_than => now() - INTERVAL {_ORPHAN_AGE} SECOND)",
    )
    report.deleted_files = len(deleted) + len(orphans)
    report.seconds = round(time.perf_counter() - started, 3)
    return report
