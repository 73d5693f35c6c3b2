"""Engine and session factory for the service database (SQLite or PostgreSQL)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

__all__ = ["check_writable", "create_db_engine", "init_db", "is_sqlite", "make_sessionmaker"]


def is_sqlite(engine: Engine) -> bool:
    """Whether the engine talks to SQLite (one writer at a time, no advisory locks)."""
    return engine.dialect.name == "sqlite"


def _normalise(url: str) -> str:
    """``postgresql://`` and ``postgres://`` URLs use psycopg 3 (the installed driver)."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def create_db_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for ``url``; SQLite gets WAL, a busy timeout and explicit BEGINs.

    With SQLite, ``connection.execution_options(sqlite_begin="IMMEDIATE")`` starts a
    transaction that takes the write lock at once (used by the worker's atomic claim).
    """
    url = _normalise(url)
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        kwargs.setdefault("pool_pre_ping", True)
        kwargs.setdefault("pool_size", 10)
        kwargs.setdefault("max_overflow", 20)
        return create_engine(url, **kwargs)
    if parsed.database and parsed.database != ":memory:":
        from pathlib import Path

        Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    connect_args = kwargs.pop("connect_args", {})
    connect_args.setdefault("check_same_thread", False)
    connect_args.setdefault("timeout", 30)
    engine = create_engine(url, connect_args=connect_args, **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy emit BEGIN itself (pysqlite's implicit transactions are off).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        mode = connection.get_execution_options().get("sqlite_begin", "DEFERRED")
        connection.exec_driver_sql(f"BEGIN {mode}")

    return engine


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    """Sessions bound to ``engine`` whose objects stay readable after commit."""
    return sessionmaker(bind=engine, expire_on_commit=False)


def init_db(engine: Engine) -> None:
    """Bring the service tables to this version's schema (Alembic migrations; safe to call
    from several processes at once). Raises ``DatabaseTooNew`` for a database that a newer
    version of nas has migrated."""
    from service.migrations import upgrade

    upgrade(engine)


def check_writable(engine: Engine) -> None:
    """Take the write lock once and let it go (SQLite ``BEGIN IMMEDIATE``): a database on a
    read-only file system fails here with OperationalError, not at the first submission."""
    if not is_sqlite(engine):
        return
    with engine.connect() as raw:
        conn = raw.execution_options(sqlite_begin="IMMEDIATE")
        with conn.begin() as transaction:
            transaction.rollback()
