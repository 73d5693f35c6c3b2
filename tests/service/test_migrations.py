"""The service database: a database created before a column existed gets it on start."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from service import crud
from service.db import add_missing_columns, create_db_engine, init_db, make_sessionmaker
from service.main import create_app

NEW_COLUMNS = [
    "nas_searches.phase",
    "nas_searches.confirm_done",
    "nas_searches.confirm_total",
    "nas_trials.confirmation",
]


def test_a_database_from_before_confirmation_gets_its_columns(
    database_url: str, settings: Any
) -> None:
    engine = create_db_engine(database_url)
    init_db(engine)
    values = {"accuracy": 0.8, "latency_ms": 2.0}
    record = {"number": 0, "state": "COMPLETE", "values": values, "metrics": {**values}}
    with make_sessionmaker(engine)() as session:
        crud.create_search(
            session,
            search_id="sold",
            config={"space": "tiny", "budget": 1},
            space_name="tiny",
            name=None,
            budget=1,
            objectives=["accuracy", "latency_ms"],
        )
        crud.upsert_trials(session, search_id="sold", records=[record])
        crud.refresh_front(session, search_id="sold")
        session.commit()
    with engine.begin() as conn:  # as an earlier version of the service created them
        for name in NEW_COLUMNS:
            table, column = name.split(".")
            conn.exec_driver_sql(f"ALTER TABLE {table} DROP COLUMN {column}")
    assert sorted(add_missing_columns(engine)) == sorted(NEW_COLUMNS)
    assert add_missing_columns(engine) == []
    engine.dispose()

    app = create_app(settings)
    try:
        with TestClient(app) as client:
            search = client.get("/searches/sold").json()
            assert search["progress"]["phase"] == "trials"
            point = client.get("/searches/sold/pareto").json()["data"][0]
            assert (point["confirmed"], point["n_seeds"], point["accuracy_mean"]) == (
                False,
                1,
                0.8,
            )
            assert point["test_accuracy"] is None
    finally:
        app.state.engine.dispose()
