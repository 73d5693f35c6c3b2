"""Alembic migrations of the service database: a database made by an earlier version (no
version table, columns missing) is upgraded with its rows kept; the migrated schema
equals the models; a database newer than the code is refused."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from fastapi.testclient import TestClient
from sqlalchemy import text

from nas.cli import main
from service import crud
from service.db import create_db_engine, make_sessionmaker
from service.main import create_app
from service.migrations import VERSION_TABLE, DatabaseTooNew, head, upgrade
from service.models import Base

# Columns the first release's create_all did not make (added by migration 0001).
LATER_COLUMNS = [
    ("nas_searches", "phase"),
    ("nas_searches", "confirm_done"),
    ("nas_searches", "confirm_total"),
    ("nas_trials", "confirmation"),
]


def _schema_diff(conn: Any) -> list[Any]:
    context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
    return compare_metadata(context, Base.metadata)


def _empty(engine: Any) -> None:
    Base.metadata.drop_all(engine)
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE IF EXISTS nas_alembic_version")


def _old_release_database(engine: Any, *, first_release: bool) -> dict[str, int]:
    """Tables as an earlier version's ``create_all`` made them, with 3 searches and trials;
    returns trials per search."""
    _empty(engine)
    Base.metadata.create_all(engine)
    trials = {"sold0": 0, "sold1": 2, "sold2": 5}
    with make_sessionmaker(engine)() as session:
        for search_id, count in trials.items():
            crud.create_search(
                session,
                search_id=search_id,
                config={"space": "tiny", "budget": 5},
                space_name="tiny",
                name=f"old {search_id}",
                budget=5,
                objectives=["accuracy", "latency_ms"],
            )
            records = [
                {
                    "number": n,
                    "state": "COMPLETE",
                    "values": {"accuracy": 0.5 + n / 20, "latency_ms": 1.0 + n},
                    "metrics": {"accuracy": 0.5 + n / 20, "latency_ms": 1.0 + n},
                }
                for n in range(count)
            ]
            crud.upsert_trials(session, search_id=search_id, records=records)
            crud.refresh_front(session, search_id=search_id)
        session.commit()
    if first_release:
        with engine.begin() as conn:
            for table, column in LATER_COLUMNS:
                conn.exec_driver_sql(f"ALTER TABLE {table} DROP COLUMN {column}")
    return trials


@pytest.mark.parametrize("first_release", [True, False], ids=["first-release", "create-all"])
def test_an_earlier_database_is_upgraded_and_every_search_read_back(
    database_url: str, settings: Any, first_release: bool
) -> None:
    engine = create_db_engine(database_url)
    trials = _old_release_database(engine, first_release=first_release)
    assert upgrade(engine) == (None, head())
    with engine.connect() as conn:
        assert _schema_diff(conn) == []
    engine.dispose()

    app = create_app(settings)
    try:
        with TestClient(app) as client:
            listed = client.get("/searches").json()
            assert sorted(s["id"] for s in listed["data"]) == sorted(trials)
            for search_id, count in trials.items():
                search = client.get(f"/searches/{search_id}").json()
                assert (search["name"], search["status"]) == (f"old {search_id}", "queued")
                assert search["progress"]["phase"] == "trials"
                page = client.get(f"/searches/{search_id}/trials").json()
                assert page["count"] == count
                front = client.get(f"/searches/{search_id}/pareto").json()["data"]
                assert (len(front) > 0) == (count > 0)
                assert all(p["n_seeds"] == 1 and not p["confirmed"] for p in front)
    finally:
        app.state.engine.dispose()


def test_a_new_database_migrates_to_the_models_schema_once(database_url: str) -> None:
    engine = create_db_engine(database_url)
    _empty(engine)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            upgrade(engine)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert upgrade(engine) == (head(), head())
    with engine.connect() as conn:
        assert _schema_diff(conn) == []
        assert conn.execute(text("SELECT count(*) FROM nas_alembic_version")).scalar() == 1
    engine.dispose()


def test_a_database_newer_than_the_code_is_refused(
    nas_home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[Any]
) -> None:
    url = f"sqlite:///{nas_home / 'service.db'}"
    engine = create_db_engine(url)
    upgrade(engine)
    with engine.begin() as conn:
        conn.execute(text("UPDATE nas_alembic_version SET version_num = '9999'"))
    with pytest.raises(DatabaseTooNew, match="migration 9999, newer than this nas"):
        upgrade(engine)
    engine.dispose()
    monkeypatch.setenv("DATABASE_URL", url)
    assert main(["serve", "--workers", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert err.startswith("error: the service database") and "upgrade nas" in err
