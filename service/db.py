"""Engine and session factory for the service database (SQLite or PostgreSQL)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from service.models import Base

__all__ = ["add_missing_columns", "create_db_engine", "init_db", "is_sqlite", "make_sessionmaker"]


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
    """Create the tables that do not exist yet and add the nullable columns a table created
    by an earlier version lacks (safe to call from several processes)."""
    from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

    try:
        Base.metadata.create_all(engine)
    except (IntegrityError, ProgrammingError, OperationalError):
        # Another process created them at the same moment; check they are there now.
        Base.metadata.create_all(engine)
    add_missing_columns(engine)


def add_missing_columns(engine: Engine) -> list[str]:
    """``ALTER TABLE ... ADD COLUMN`` for each nullable model column a table lacks; returns
    ``table.column`` of those added. A column another process adds at the same moment is
    fine; a missing non-nullable one is an error (it needs a real migration)."""
    from sqlalchemy import inspect
    from sqlalchemy.exc import OperationalError, ProgrammingError

    added = []
    quote = engine.dialect.identifier_preparer.quote
    for table in Base.metadata.sorted_tables:
        present = {c["name"] for c in inspect(engine).get_columns(table.name)}
        for column in table.columns:
            if column.name in present:
                continue
            if not column.nullable:
                raise RuntimeError(
                    f"table {table.name} lacks the non-nullable column {column.name}: "
                    "migrate the service database"
                )
            kind = column.type.compile(dialect=engine.dialect)
            statement = f"ALTER TABLE {quote(table.name)} ADD COLUMN {quote(column.name)} {kind}"
            try:
                with engine.begin() as conn:
                    conn.exec_driver_sql(statement)
            except (OperationalError, ProgrammingError):
                columns = {c["name"] for c in inspect(engine).get_columns(table.name)}
                if column.name not in columns:
                    raise
            added.append(f"{table.name}.{column.name}")
    return added
