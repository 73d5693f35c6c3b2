"""Shared fixtures: every test gets its own empty workspace so nothing touches ``~/.nas``."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def nas_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An isolated ``$NAS_HOME`` with default stores, for each test."""
    home = tmp_path / "nas_home"
    monkeypatch.setenv("NAS_HOME", str(home))
    for var in ("NAS_OPTUNA_STORAGE", "MLFLOW_TRACKING_URI", "RAY_ADDRESS", "DATABASE_URL"):
        monkeypatch.delenv(var, raising=False)
    return home
