"""The quick rows of bench/faults.py, against real ``nas serve`` processes: the atomic queue
limit (SQLite and PostgreSQL) and hostile request bodies."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "faults.py"


@pytest.fixture(scope="module")
def faults() -> Iterator[ModuleType]:
    spec = importlib.util.spec_from_file_location("faults_bench", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)


def test_the_queue_limit_holds_under_50_concurrent_posts_on_sqlite(
    faults: ModuleType, tmp_path: Path
) -> None:
    row = faults.queue_limit(f"sqlite:///{tmp_path / 'q.db'}", "SQLite", tmp_path)
    assert row.passed, row.observed


@pytest.mark.postgres
def test_the_queue_limit_holds_under_50_concurrent_posts_on_postgres(
    faults: ModuleType, tmp_path: Path, postgres_url: str
) -> None:
    from service.db import create_db_engine
    from service.models import Base

    engine = create_db_engine(postgres_url)
    Base.metadata.drop_all(engine)
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE IF EXISTS nas_alembic_version")
    engine.dispose()
    row = faults.queue_limit(postgres_url, "PostgreSQL", tmp_path)
    assert row.passed, row.observed


def test_hostile_bodies_get_a_4xx_and_the_service_keeps_serving(
    faults: ModuleType, tmp_path: Path
) -> None:
    row = faults.hostile_input(tmp_path)
    assert row.passed, row.observed
    assert row.observed.count(": 4") == len(faults.HOSTILE)


def test_the_billion_laughs_space_is_refused_for_its_size(faults: ModuleType) -> None:
    from fastapi.testclient import TestClient

    from service.core.config import Settings
    from service.main import create_app

    app = create_app(Settings(database_url="sqlite://"))
    with TestClient(app) as client:
        response = client.post("/searches", json={"space": faults.BILLION_LAUGHS})
    assert response.status_code == 422
    assert "20000" in response.json()["detail"] or "20,000" in response.json()["detail"]
    app.state.engine.dispose()


def test_a_failed_row_makes_the_bench_exit_1(
    faults: ModuleType, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = {"ok": faults.Row("ok", "-", "-", passed=True), "bad": faults.Row("bad", "-", "-")}
    monkeypatch.setattr(faults, "SCENARIOS", {k: (lambda _home, r=r: r) for k, r in rows.items()})
    assert faults.main([]) == 1
    table = capsys.readouterr().out
    assert "| bad | - | - | 0 | 0 | FAIL |" in table and "| ok | - | - | 0 | 0 | pass |" in table
    monkeypatch.setattr(faults, "SCENARIOS", {"ok": lambda _home: rows["ok"]})
    assert faults.main([]) == 0
