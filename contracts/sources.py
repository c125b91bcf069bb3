"""Contract sets read from a directory, a single file, or a git revision of a directory.

A contracts directory holds its schema files either in ``schemas/`` (the layout of the shipped
``contracts/``) or at its top, and its examples in ``examples/<contract>/<version>/{valid,
invalid}/*.json``. A git revision is read with ``git archive`` (one call, no checkout), so
``--base origin/main`` works in any clone that has that commit.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import tarfile
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path, PurePosixPath
from typing import Any

from contracts.errors import BaseUnavailable, ContractSourceError

_GIT_TIMEOUT = 60.0
# one contract set is a few dozen small files; a bigger archive is not a contracts directory
_MAX_ARCHIVE_BYTES = 64 * 2**20


@dataclass(frozen=True, slots=True)
class Document:
    """One JSON file of a contract set: its text, and its parsed value or why it has none."""

    path: str
    """Where it is, as shown in findings (relative to the working directory when it can be)."""
    relative: str
    """Its path inside the set's schema or examples folder (``privacy/1.1.0/valid/a.json``)."""
    text: str
    data: Any = None
    error: str | None = None


@dataclass
class ContractSet:
    """The schema files and examples of one version of a contracts directory."""

    label: str
    schemas: list[Document] = field(default_factory=list)
    examples: list[Document] = field(default_factory=list)


def default_directory() -> Path:
    """The contracts shipped with flaglens (in a source checkout: the repository's)."""
    return Path(str(resources.files("contracts")))


def display_path(path: Path) -> str:
    """A path relative to the working directory when it lies below it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _document(path: str, relative: str, raw: bytes) -> Document:
    try:
        text = raw.decode("utf-8")
        return Document(path, relative, text, json.loads(text))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return Document(path, relative, raw.decode("utf-8", "replace"), error=str(exc))


def _layout(directory: Path) -> tuple[Path, Path]:
    schemas = directory / "schemas"
    return (schemas if schemas.is_dir() else directory), directory / "examples"


def read_directory(directory: Path) -> ContractSet:
    """Every schema file and example of a contracts directory.

    Raises:
        ContractSourceError: the directory does not exist.
    """
    if not directory.is_dir():
        raise ContractSourceError(str(directory), "no such directory")
    schema_dir, example_dir = _layout(directory)
    found = ContractSet(display_path(directory))
    for path in sorted(schema_dir.glob("*.json")):
        found.schemas.append(_document(display_path(path), path.name, path.read_bytes()))
    if example_dir.is_dir():
        for path in sorted(example_dir.glob("*/*/*/*.json")):
            relative = path.relative_to(example_dir).as_posix()
            found.examples.append(_document(display_path(path), relative, path.read_bytes()))
    return found


def read_file(path: Path) -> ContractSet:
    """A contract set of one schema file (no examples).

    Raises:
        ContractSourceError: the file does not exist.
    """
    if not path.is_file():
        raise ContractSourceError(str(path), "no such file")
    return ContractSet(
        display_path(path), [_document(display_path(path), path.name, path.read_bytes())]
    )


def read_path(path: Path) -> ContractSet:
    """A directory or a single file."""
    return read_directory(path) if path.is_dir() else read_file(path)


def _git(repo: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(
            ["git", "-C", str(repo), *args],
            capture_output=True,
            timeout=_GIT_TIMEOUT,
            check=False,
            env={**os.environ, "GIT_TERMINAL_PROMPT": "0"},
        )
    except FileNotFoundError as exc:
        raise ContractSourceError(str(repo), "git is not installed") from exc
    except subprocess.TimeoutExpired as exc:
        raise ContractSourceError(
            str(repo), f"git {args[0]} took over {_GIT_TIMEOUT:.0f} s"
        ) from exc


def _resolve_revision(repo: Path, revision: str) -> str:
    """The commit a revision names, or why this clone cannot say."""
    if revision.startswith("-"):
        raise ContractSourceError(repr(revision), "a revision does not start with '-'")
    found = _git(
        repo, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{revision}^{{commit}}"
    )
    if found.returncode == 0:
        return found.stdout.decode().strip()
    shallow = _git(repo, "rev-parse", "--is-shallow-repository").stdout.decode().strip()
    if shallow == "true":
        raise BaseUnavailable(
            revision, "this clone is shallow and does not have it", lack_of_history=True
        )
    start = revision.split("~", 1)[0].split("^", 1)[0]
    if start != revision:
        if (
            _git(
                repo, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{start}^{{commit}}"
            ).returncode
            == 0
        ):
            raise BaseUnavailable(
                revision, f"{start} has no such ancestor (the first commit?)", lack_of_history=True
            )
    if _git(repo, "rev-parse", "--verify", "--quiet", "HEAD").returncode != 0:
        raise BaseUnavailable(revision, "the repository has no commits yet", lack_of_history=True)
    raise BaseUnavailable(
        revision, "no such commit, branch or tag in this clone", lack_of_history=False
    )


def read_revision(revision: str, directory: Path) -> ContractSet:
    """The contracts directory (or single contract file) ``directory`` as it was at a git
    revision.

    A directory that did not exist at that revision gives an empty set (every contract is new).

    Raises:
        ContractSourceError: ``directory`` is not inside a git work tree, or git failed.
        BaseUnavailable: the clone does not have that revision (``lack_of_history`` tells
            a shallow clone or a first commit from a revision that does not exist).
    """
    directory = directory.resolve()
    single = directory.is_file()
    top = _git(directory.parent if single else directory, "rev-parse", "--show-toplevel")
    if top.returncode != 0:
        raise ContractSourceError(str(directory), "not inside a git work tree")
    root = Path(top.stdout.decode().strip()).resolve()
    commit = _resolve_revision(root, revision)
    prefix = directory.relative_to(root).as_posix()
    label = f"{revision}:{prefix}" if revision == commit else f"{revision} ({commit[:12]}):{prefix}"
    found = ContractSet(label)
    if single:
        blob = _git(root, "show", f"{commit}:{prefix}")
        if blob.returncode == 0:
            found.schemas.append(_document(label, directory.name, blob.stdout))
        return found
    listed = _git(root, "ls-tree", "-d", "--name-only", commit, "--", prefix)
    if listed.returncode != 0 or not listed.stdout.strip():
        return found  # the directory is new since that revision
    archive = _git(root, "archive", "--format=tar", commit, "--", prefix)
    if archive.returncode != 0:
        problem = archive.stderr.decode(errors="replace").strip()
        raise ContractSourceError(label, f"git archive failed: {problem}")
    if len(archive.stdout) > _MAX_ARCHIVE_BYTES:
        raise ContractSourceError(
            label, f"over {_MAX_ARCHIVE_BYTES} bytes: not a contracts directory"
        )
    members: dict[PurePosixPath, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        for member in tar.getmembers():
            if member.isfile() and member.name.endswith(".json"):
                extracted = tar.extractfile(member)
                if extracted is not None:
                    name = PurePosixPath(member.name)
                    members[name if prefix == "." else name.relative_to(prefix)] = extracted.read()
    nested = any(path.parts[0] == "schemas" and len(path.parts) == 2 for path in members)
    for path in sorted(members):
        shown = f"{label}/{path}"
        if nested and len(path.parts) == 2 and path.parts[0] == "schemas":
            found.schemas.append(_document(shown, path.name, members[path]))
        elif not nested and len(path.parts) == 1:
            found.schemas.append(_document(shown, path.name, members[path]))
        elif len(path.parts) == 5 and path.parts[0] == "examples":
            found.examples.append(
                _document(shown, PurePosixPath(*path.parts[1:]).as_posix(), members[path])
            )
    return found
