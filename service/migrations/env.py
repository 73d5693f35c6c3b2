"""Alembic environment of the service tables: runs on the connection that
:func:`service.migrations.upgrade` passes in ``config.attributes["connection"]``, inside that
connection's transaction (no alembic.ini, no logging setup of its own)."""

from __future__ import annotations

from alembic import context

from service.migrations import VERSION_TABLE
from service.models import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError(
        "run the service migrations through service.migrations.upgrade(engine) "
        "(or `nas serve`), which passes the database connection"
    )
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=True,  # SQLite alters a table by copying it
    compare_type=True,
    version_table=VERSION_TABLE,
)
with context.begin_transaction():
    context.run_migrations()
