"""The packages' imports point down the data flow only; nothing but the application itself
imports the application package (``flaglens`` is in no other package's allowed set)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.servers import REPO

# package → the project packages it may import (besides itself)
ALLOWED: dict[str, set[str]] = {
    "contracts": set(),
    "store": set(),
    "ingest": {"contracts", "store"},
    "analytics": {"contracts", "store"},
    "alerts": {"analytics", "contracts", "store"},
    "reports": {"analytics", "contracts", "store"},
    "dashboards": {"analytics", "contracts", "store"},
    "api": {"alerts", "analytics", "contracts", "reports", "store"},
    "sample_data": {"contracts"},
    "flaglens": {
        "contracts", "store", "ingest", "analytics", "alerts", "reports", "dashboards", "api",
        "sample_data",
    },
}  # fmt: skip


def _imported_packages(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found & set(ALLOWED)


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_package_imports_only_lower_layers(package: str) -> None:
    """Every module of a package imports only the packages below it (lazy imports included)."""
    wrong = {}
    for path in sorted((REPO / package).rglob("*.py")):
        extra = _imported_packages(path) - ALLOWED[package] - {package}
        if extra:
            wrong[str(path.relative_to(REPO))] = sorted(extra)
    assert wrong == {}
