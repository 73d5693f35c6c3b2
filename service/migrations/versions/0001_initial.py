"""The service tables as nas 0.x created them with ``create_all`` (the first migration).

On an empty database it creates ``nas_searches`` and ``nas_trials``. On a database that an
earlier version created without migrations (no ``nas_alembic_version``) it keeps the
tables and their rows, and adds the nullable columns that version lacked (``phase``,
``confirm_done``, ``confirm_total``, ``confirmation``).

Revision ID: 0001
Revises:
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None


def _search_columns() -> list[sa.Column]:
    return [
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(200), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("space_name", sa.String(200), nullable=False),
        sa.Column("budget", sa.Integer(), nullable=False),
        sa.Column("objectives", sa.JSON(), nullable=False),
        sa.Column("done", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("front_size", sa.Integer(), nullable=False),
        sa.Column("eta_s", sa.Float(), nullable=True),
        sa.Column("phase", sa.String(16), nullable=True),
        sa.Column("confirm_done", sa.Integer(), nullable=True),
        sa.Column("confirm_total", sa.Integer(), nullable=True),
        sa.Column("mlflow_run_id", sa.String(64), nullable=True),
        sa.Column("study_name", sa.String(200), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("cancel_requested", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=False), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=False), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=False), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=False), nullable=False),
        sa.Column("run_seconds", sa.Float(), nullable=False),
        sa.Column("worker_id", sa.String(200), nullable=True),
        sa.Column("lease_expires_at", sa.DateTime(timezone=False), nullable=True),
        sa.Column("heartbeat_at", sa.DateTime(timezone=False), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
    ]


def _trial_columns() -> list[sa.Column]:
    return [
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "search_id",
            sa.String(32),
            sa.ForeignKey("nas_searches.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("arch", sa.JSON(), nullable=True),
        sa.Column("arch_id", sa.String(64), nullable=True),
        sa.Column("values", sa.JSON(), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("feasible", sa.Boolean(), nullable=False),
        sa.Column("interrupted", sa.Boolean(), nullable=False),
        sa.Column("on_front", sa.Boolean(), nullable=False),
        sa.Column("num_params", sa.BigInteger(), nullable=True),
        sa.Column("flops", sa.BigInteger(), nullable=True),
        sa.Column("mlflow_run_id", sa.String(64), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=False), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=False), nullable=True),
        sa.Column("confirmation", sa.JSON(), nullable=True),
    ]


def _add_missing_columns(table: str, columns: list[sa.Column]) -> None:
    """Add the nullable columns a table made by an earlier ``create_all`` lacks."""
    present = {c["name"] for c in sa.inspect(op.get_bind()).get_columns(table)}
    missing = [c for c in columns if c.name not in present]
    for column in missing:
        if not column.nullable:
            raise RuntimeError(
                f"table {table} lacks the non-nullable column {column.name}: it was not made "
                "by nas; point DATABASE_URL at another database"
            )
    if missing:
        with op.batch_alter_table(table) as batch:
            for column in missing:
                batch.add_column(column)


def upgrade() -> None:
    """Create the tables, or complete the ones an earlier version made."""
    tables = set(sa.inspect(op.get_bind()).get_table_names())
    if "nas_searches" in tables:
        _add_missing_columns("nas_searches", _search_columns())
    else:
        op.create_table("nas_searches", *_search_columns())
        op.create_index("ix_nas_searches_status_created", "nas_searches", ["status", "created_at"])
    if "nas_trials" in tables:
        _add_missing_columns("nas_trials", _trial_columns())
    else:
        op.create_table(
            "nas_trials",
            *_trial_columns(),
            sa.UniqueConstraint("search_id", "number", name="uq_nas_trials_search_number"),
        )
        op.create_index("ix_nas_trials_search_front", "nas_trials", ["search_id", "on_front"])


def downgrade() -> None:
    """Drop the service tables (and every search and trial in them)."""
    op.drop_table("nas_trials")
    op.drop_table("nas_searches")
