"""Errors raised while loading or using telemetry contracts.

ContractError
├── InvalidContract       a contract file that is not valid JSON / JSON Schema, or lacks x-flaglens
├── DuplicateContract     two files claim the same contract name and version
├── UnknownContract       a name or version that no loaded contract has
└── ContractSourceError   contracts that cannot be read (a missing path, an unknown git revision)
    └── BaseUnavailable   a git revision this clone cannot show (shallow, before the first commit)
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


class ContractError(Exception):
    """Base of every error this package raises."""


class InvalidContract(ContractError):
    """A contract file that cannot be used; stops the registry (and the server) from starting."""

    def __init__(self, path: Path | str, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"contract file {self.path} is invalid: {problem}")


class DuplicateContract(ContractError):
    """Two contract files with the same name and version."""

    def __init__(self, name: str, version: str, paths: Sequence[str]) -> None:
        self.name = name
        self.version = version
        super().__init__(
            f"contract {name}@{version} is defined twice ({', '.join(paths)}); "
            "bump the version in one of them"
        )


class UnknownContract(ContractError):
    """A contract name or version that is not loaded."""

    def __init__(self, name: str, version: str | None, known: Sequence[str]) -> None:
        self.name = name
        self.version = version
        self.known = tuple(known)
        what = f"{name}@{version}" if version else name
        super().__init__(f"no contract {what}; known: {', '.join(self.known) or 'none'}")


class ContractSourceError(ContractError):
    """A set of contracts that cannot be read: a missing path, no git, an unknown revision."""

    def __init__(self, what: str, problem: str) -> None:
        self.what = what
        self.problem = problem
        super().__init__(f"cannot read contracts from {what}: {problem}")


class BaseUnavailable(ContractSourceError):
    """A git revision that this clone cannot show.

    ``lack_of_history`` is True when the clone is shallow or the revision would be before the
    first commit: a CI check then compares nothing rather than failing.
    """

    def __init__(self, revision: str, problem: str, *, lack_of_history: bool) -> None:
        self.revision = revision
        self.lack_of_history = lack_of_history
        super().__init__(f"git revision {revision!r}", problem)
