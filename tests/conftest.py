"""Fixtures shared by every test package."""

from __future__ import annotations

import os

import pytest

from tests.sample_week import LoadedWeek, load_week


@pytest.fixture(autouse=True)
def clean_flaglens_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """No FLAGLENS_* variable from the developer's shell leaks into a test."""
    for name in list(os.environ):
        if name.startswith("FLAGLENS_"):
            monkeypatch.delenv(name)


@pytest.fixture(scope="session")
def sample_week(tmp_path_factory: pytest.TempPathFactory) -> LoadedWeek:
    """The default sample week, loaded once per test session by `flaglens demo --load-only`."""
    return load_week(tmp_path_factory.mktemp("week"))
