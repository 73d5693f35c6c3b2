"""Fixtures of the search tests: one Ray session for all of them, a shared MLflow store and
stand-in trial functions (closures, so Ray pickles them by value into its workers)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from search_helpers import make_trial_fn


@pytest.fixture(scope="session")
def ray_session() -> Iterator[None]:
    """Local Ray started once for every search test (a start costs several seconds)."""
    import ray

    from nas.search import ensure_ray

    ensure_ray()
    yield
    ray.shutdown()


@pytest.fixture(scope="session")
def mlflow_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One MLflow SQLite store for the engine tests (its schema migration takes seconds)."""
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"


@pytest.fixture
def trial_fn() -> Callable[..., dict[str, Any]]:
    """A stand-in trial function that never fails."""
    return make_trial_fn()


@pytest.fixture
def home(nas_home: Path) -> Path:
    """The test's workspace folder."""
    return nas_home
