"""Fixtures shared by every test package."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True)
def clean_flaglens_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """No FLAGLENS_* variable from the developer's shell leaks into a test."""
    for name in list(os.environ):
        if name.startswith("FLAGLENS_"):
            monkeypatch.delenv(name)
