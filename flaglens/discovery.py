"""The note a running server leaves beside its database, so that local readers find its API.

`flaglens serve --db PATH` writes ``PATH.server.json`` once its read listener is up and removes
it when it stops::

    {"url": "http://127.0.0.1:8050", "pid": 4242, "auth": true, "tls_cert": null}

DuckDB lets one process hold a database file; a CLI verb or ``Client(db=PATH)`` that finds a
live server's note reads through that server's API instead of opening the file. A note left by
a server that died (its pid no longer runs) is ignored.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

SUFFIX = ".server.json"


@dataclass(frozen=True, slots=True)
class ServerNote:
    url: str
    """Base URL of the read listener (the API is under /api/v1), reachable from this machine."""
    pid: int
    auth: bool
    """The server asks for a read token."""
    tls_cert: str | None = None
    """The certificate the listener serves, to verify it by (None: plain HTTP)."""


def note_path(db: Path) -> Path:
    return db.with_name(db.name + SUFFIX)


def write_note(db: Path, note: ServerNote) -> Path:
    """Write the note atomically (a reader never sees half of it)."""
    path = note_path(db)
    scratch = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    scratch.write_text(json.dumps(asdict(note)) + "\n", encoding="utf-8")
    scratch.replace(path)
    return path


def remove_note(db: Path, pid: int) -> None:
    """Remove the note if it is still the one this process wrote."""
    note = read_note(db, live_only=False)
    if note is not None and note.pid == pid:
        note_path(db).unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it runs, as another user
        return True
    return True


def read_note(db: Path, *, live_only: bool = True) -> ServerNote | None:
    """The note beside ``db`` (None: none, unreadable, or its server is gone)."""
    try:
        document = json.loads(note_path(db).read_text(encoding="utf-8"))
        note = ServerNote(
            url=str(document["url"]),
            pid=int(document["pid"]),
            auth=bool(document.get("auth", False)),
            tls_cert=document.get("tls_cert"),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if live_only and not _alive(note.pid):
        return None
    return note
