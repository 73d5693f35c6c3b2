"""Fixtures of the service tests: settings on SQLite or PostgreSQL, an API client, a worker."""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

PG_ADMIN_URL = os.environ.get(
    "NAS_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def _pg_admin() -> Any:
    from sqlalchemy import create_engine

    return create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A scratch PostgreSQL database for this test session, dropped at the end."""
    from sqlalchemy import text
    from sqlalchemy.exc import OperationalError

    name = f"nas_service_test_{uuid.uuid4().hex[:8]}"
    try:
        admin = _pg_admin()
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except OperationalError as exc:
        pytest.skip(f"PostgreSQL on 127.0.0.1:5432 is not reachable: {exc}")
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, nas_home: Path) -> str:
    """The service database of a test: a fresh SQLite file, or the emptied scratch PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{nas_home / 'service.db'}"
    url = request.getfixturevalue("postgres_url")
    from service.db import create_db_engine, init_db
    from service.models import Base

    engine = create_db_engine(url)
    Base.metadata.drop_all(engine)
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE IF EXISTS nas_alembic_version")
    init_db(engine)
    engine.dispose()
    return url


@pytest.fixture
def settings(database_url: str) -> Any:
    from service.core.config import Settings

    return Settings(database_url=database_url, max_budget=500, lease_seconds=30, poll_seconds=0.05)


@pytest.fixture
def app(settings: Any) -> Iterator[Any]:
    from service.main import create_app

    app = create_app(settings)
    yield app
    app.state.engine.dispose()


@pytest.fixture
def client(app: Any) -> Iterator[Any]:
    from fastapi.testclient import TestClient

    with TestClient(app) as test_client:
        yield test_client
