"""Telemetry contracts: JSON Schemas for policy-decision events, the registry checking them,
and contracts as code (lint, diff and the CI check)."""

from __future__ import annotations

from contracts.aliases import RENAMED_ATTRIBUTES, normalize_legacy
from contracts.check import check_directory
from contracts.consumers import ConsumedFields, load_consumers
from contracts.diff import MODES, Mode, diff_sets
from contracts.errors import (
    BaseUnavailable,
    ContractError,
    ContractSourceError,
    DuplicateContract,
    InvalidContract,
    UnknownContract,
)
from contracts.findings import LEVELS, RULES, Finding, Level, Report
from contracts.lint import lint_set
from contracts.registry import (
    Contract,
    Registry,
    Verdict,
    Violation,
    build_registry,
    load_registry,
    read_contract_files,
)
from contracts.render import FORMATS, Format, render
from contracts.sources import (
    ContractSet,
    default_directory,
    read_directory,
    read_path,
    read_revision,
)

__all__ = [
    "FORMATS",
    "LEVELS",
    "MODES",
    "RENAMED_ATTRIBUTES",
    "RULES",
    "BaseUnavailable",
    "ConsumedFields",
    "Contract",
    "ContractError",
    "ContractSet",
    "ContractSourceError",
    "DuplicateContract",
    "Finding",
    "Format",
    "InvalidContract",
    "Level",
    "Mode",
    "Registry",
    "Report",
    "UnknownContract",
    "Verdict",
    "Violation",
    "build_registry",
    "check_directory",
    "default_directory",
    "diff_sets",
    "lint_set",
    "load_consumers",
    "load_registry",
    "normalize_legacy",
    "read_contract_files",
    "read_directory",
    "read_path",
    "read_revision",
    "render",
]
