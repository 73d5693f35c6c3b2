"""The workspace folder ``$NAS_HOME`` (default ``~/.nas``) and the embedded default stores in it.

Everything a search writes by default lives here: the Optuna study database, the MLflow
tracking store and artifacts, Ray's results, the latency cache and trained weights.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = [
    "home",
    "mlflow_tracking_uri",
    "optuna_storage_url",
    "ray_results_dir",
]


def home() -> Path:
    """The workspace folder, created on first use."""
    path = Path(os.environ.get("NAS_HOME") or Path.home() / ".nas").expanduser().resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


def optuna_storage_url() -> str:
    """Optuna storage: ``NAS_OPTUNA_STORAGE`` or a SQLite file in the workspace."""
    return os.environ.get("NAS_OPTUNA_STORAGE") or f"sqlite:///{home() / 'optuna.db'}"


def mlflow_tracking_uri() -> str:
    """MLflow tracking store: ``MLFLOW_TRACKING_URI`` or a SQLite file in the workspace."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{home() / 'mlflow.db'}"


def ray_results_dir() -> Path:
    """Where Ray Tune keeps trial results and checkpoints."""
    path = home() / "ray_results"
    path.mkdir(parents=True, exist_ok=True)
    return path
