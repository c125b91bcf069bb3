"""Telemetry contracts: JSON Schemas for policy-decision events, and the registry checking them."""

from __future__ import annotations

from contracts.aliases import RENAMED_ATTRIBUTES, normalize_legacy
from contracts.errors import ContractError, DuplicateContract, InvalidContract, UnknownContract
from contracts.registry import Contract, Registry, Verdict, Violation, load_registry

__all__ = [
    "RENAMED_ATTRIBUTES",
    "Contract",
    "ContractError",
    "DuplicateContract",
    "InvalidContract",
    "Registry",
    "UnknownContract",
    "Verdict",
    "Violation",
    "load_registry",
    "normalize_legacy",
]
