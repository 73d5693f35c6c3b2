"""SQLAlchemy 2 ORM tables: ``nas_searches`` (one row per search, its queue state and lease)
and ``nas_trials`` (one row per finished or running trial, unique per ``(search_id, number)``).
The prefix keeps them apart from Optuna's and MLflow's tables if they share a database.

Times are naive UTC (``utcnow()``) so SQLite and PostgreSQL compare them the same way.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

__all__ = ["FINISHED", "STATUSES", "Base", "Search", "Trial", "utcnow"]

STATUSES = ("queued", "running", "completed", "failed", "cancelled")
"""Every status a search can have."""

FINISHED = ("completed", "failed", "cancelled")
"""Statuses a search never leaves."""


def utcnow() -> datetime:
    """The current time, UTC, without tzinfo (as stored)."""
    return datetime.now(UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    """Declarative base of the service tables."""

    type_annotation_map: ClassVar[dict[Any, Any]] = {
        dict[str, Any]: JSON,
        datetime: DateTime(timezone=False),
    }


class Search(Base):
    """A search: its request, status, progress, and the worker lease while it runs."""

    __tablename__ = "nas_searches"
    __table_args__ = (Index("ix_nas_searches_status_created", "status", "created_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default="queued")
    config: Mapped[dict[str, Any]] = mapped_column(JSON)
    space_name: Mapped[str] = mapped_column(String(200))
    budget: Mapped[int] = mapped_column(Integer)
    objectives: Mapped[list[str]] = mapped_column(JSON)
    done: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    front_size: Mapped[int] = mapped_column(Integer, default=0)
    eta_s: Mapped[float | None] = mapped_column(Float)
    # Added after the first release (nullable); migration 0001 adds them to older tables.
    phase: Mapped[str | None] = mapped_column(String(16))
    confirm_done: Mapped[int | None] = mapped_column(Integer)
    confirm_total: Mapped[int | None] = mapped_column(Integer)
    mlflow_run_id: Mapped[str | None] = mapped_column(String(64))
    study_name: Mapped[str | None] = mapped_column(String(200))
    error: Mapped[str | None] = mapped_column(Text)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column()
    finished_at: Mapped[datetime | None] = mapped_column()
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    run_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    worker_id: Mapped[str | None] = mapped_column(String(200))
    lease_expires_at: Mapped[datetime | None] = mapped_column()
    heartbeat_at: Mapped[datetime | None] = mapped_column()
    attempts: Mapped[int] = mapped_column(Integer, default=0)

    trials: Mapped[list[Trial]] = relationship(
        back_populates="search", cascade="all, delete-orphan", passive_deletes=True
    )


class Trial(Base):
    """One trial of a search, as reported by ``run_search``'s ``on_trial`` callback."""

    __tablename__ = "nas_trials"
    __table_args__ = (
        UniqueConstraint("search_id", "number", name="uq_nas_trials_search_number"),
        Index("ix_nas_trials_search_front", "search_id", "on_front"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    search_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("nas_searches.id", ondelete="CASCADE")
    )
    number: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16))
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    arch: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    arch_id: Mapped[str | None] = mapped_column(String(64))
    values: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    feasible: Mapped[bool] = mapped_column(Boolean, default=True)
    interrupted: Mapped[bool] = mapped_column(Boolean, default=False)
    on_front: Mapped[bool] = mapped_column(Boolean, default=False)
    num_params: Mapped[int | None] = mapped_column(BigInteger)
    flops: Mapped[int | None] = mapped_column(BigInteger)
    mlflow_run_id: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime | None] = mapped_column()
    finished_at: Mapped[datetime | None] = mapped_column()
    confirmation: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    """Seed summary (service.schemas.Confirmation fields); added later, nullable."""

    search: Mapped[Search] = relationship(back_populates="trials")
