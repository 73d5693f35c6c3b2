"""Alembic migrations of the service tables, run from code (no ``alembic.ini``).

:func:`upgrade` brings a database to the newest revision this version knows, under a lock so
that several processes starting at once migrate it once; a database made by an earlier
version without migrations is adopted by the first revision. A database at a revision this
version does not know (made by a newer nas) is refused with :class:`DatabaseTooNew`.

A new column or table: change :mod:`service.models`, then add
``versions/NNNN_<what>.py`` with ``down_revision`` the previous revision (``script.py.mako``
is the template) that makes the same change; ``tests/service/test_migrations.py`` checks
that the migrated schema equals the models.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, text

from nas.errors import NasError

if TYPE_CHECKING:
    from alembic.config import Config

__all__ = [
    "MIGRATE_LOCK_KEY",
    "VERSION_TABLE",
    "DatabaseTooNew",
    "alembic_config",
    "head",
    "revision_of",
    "upgrade",
]

VERSION_TABLE = "nas_alembic_version"
"""Alembic's version table of the service; Optuna and MLflow keep their own ``alembic_version``
in a database they may share with the service."""

MIGRATE_LOCK_KEY = 0x6E61735F6D6967  # "nas_mig": PostgreSQL advisory lock of the upgrade


class DatabaseTooNew(NasError):
    """The database is at a migration this version of nas does not know."""


def alembic_config() -> Config:
    """An Alembic ``Config`` whose scripts are this package."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent))
    return config


def head() -> str:
    """The newest revision this version knows."""
    from alembic.script import ScriptDirectory

    current = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert current is not None
    return current


def revision_of(conn: Connection) -> str | None:
    """The database's revision (None: no version table, or an empty one)."""
    from alembic.runtime.migration import MigrationContext

    context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
    return context.get_current_revision()


def _check_known(current: str | None, url: str) -> None:
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    if current is None:
        return
    script = ScriptDirectory.from_config(alembic_config())
    try:
        script.get_revision(current)
    except CommandError:
        from nas import __version__

        raise DatabaseTooNew(
            f"the service database {url} is at migration {current}, newer than this nas "
            f"{__version__} knows (its newest is {head()}): upgrade nas, or point "
            "DATABASE_URL at another database"
        ) from None


def upgrade(engine: Engine) -> tuple[str | None, str]:
    """Migrate ``engine``'s database to :func:`head`; returns ``(before, after)``.

    The revision is checked first without a write lock; a database behind is upgraded in one
    transaction that holds the write lock (SQLite ``BEGIN IMMEDIATE``) or an advisory lock
    (PostgreSQL), so concurrent callers wait, then see it done.
    """
    from alembic import command

    url = engine.url.render_as_string(hide_password=True)
    target = head()
    with engine.connect() as conn:
        before = revision_of(conn)
        conn.rollback()
    _check_known(before, url)
    if before == target:
        return before, target
    with engine.connect() as raw:
        conn = raw.execution_options(sqlite_begin="IMMEDIATE")
        with conn.begin():
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATE_LOCK_KEY})
            before = revision_of(conn)
            _check_known(before, url)
            if before != target:
                config = alembic_config()
                config.attributes["connection"] = conn
                command.upgrade(config, "head")
    return before, target
