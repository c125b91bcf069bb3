"""Errors raised while loading or using telemetry contracts.

ContractError
├── InvalidContract     a contract file that is not valid JSON / JSON Schema, or lacks x-flaglens
├── DuplicateContract   two files claim the same contract name and version
└── UnknownContract     a name or version that no loaded contract has
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
