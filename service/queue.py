"""The workers' queue of searches: claim, lease, progress, finish (keyword-only functions).

Written for several workers sharing one database: a search is claimed with a compare-and-set
``UPDATE`` inside a serialised transaction (``BEGIN IMMEDIATE`` on SQLite, an advisory
transaction lock on PostgreSQL), kept with a lease that its worker renews, and taken over by
another worker when the lease runs out.
"""

from __future__ import annotations

import math
import os
import socket
from datetime import timedelta
from typing import Any

from sqlalchemy import Engine, and_, func, select, text, update
from sqlalchemy.orm import Session

from service.models import FINISHED, Search, utcnow

__all__ = [
    "CLAIM_LOCK_KEY",
    "Claim",
    "claim_next",
    "finish_search",
    "record_progress",
    "renew_lease",
    "requeue_search",
    "set_run_info",
]

CLAIM_LOCK_KEY = 0x6E61735F636C6D  # "nas_clm": PostgreSQL advisory lock of the claim step


def record_progress(
    session: Session,
    *,
    search_id: str,
    worker_id: str,
    eta_s: float | None,
    phase: str | None = None,
    confirm_done: int | None = None,
    confirm_total: int | None = None,
) -> None:
    """Store the search's ETA and phase (from ``on_progress``) and commit."""
    eta = eta_s if eta_s is not None and math.isfinite(eta_s) else None
    values: dict[str, Any] = {"eta_s": eta, "updated_at": utcnow()}
    if phase is not None:
        values |= {"phase": phase, "confirm_done": confirm_done, "confirm_total": confirm_total}
    session.execute(
        update(Search)
        .where(Search.id == search_id, Search.worker_id == worker_id)
        .values(**values)
    )
    session.commit()


def _host_and_pid(worker_id: str | None) -> tuple[str, int] | None:
    parts = (worker_id or "").split(":")
    if len(parts) < 2:
        return None
    try:
        return parts[0], int(parts[1])
    except ValueError:
        return None


def _holder_is_dead(worker_id: str | None) -> bool:
    """Whether the lease holder ran on this host and its process is gone."""
    parsed = _host_and_pid(worker_id)
    if parsed is None or parsed[0] != socket.gethostname():
        return False
    try:
        os.kill(parsed[1], 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


class Claim:
    """A search a worker has claimed: id, config, and whether it resumes a started one."""

    def __init__(self, search_id: str, config: dict[str, Any], resumed: bool) -> None:
        self.search_id, self.config, self.resumed = search_id, config, resumed

    def __repr__(self) -> str:
        return f"Claim({self.search_id!r}, resumed={self.resumed})"


def claim_next(
    engine: Engine,
    *,
    worker_id: str,
    lease_seconds: float,
    max_running: int,
    max_attempts: int,
) -> Claim | None:
    """Atomically take the next search to run, or None.

    Candidates, in order: running searches whose lease expired (or whose worker on this host
    is gone), then queued searches by age. Nothing is claimed while ``max_running`` searches
    hold live leases. A search taken over ``max_attempts`` times is marked failed instead.
    """
    now = utcnow()
    with engine.connect() as raw:
        conn = raw.execution_options(sqlite_begin="IMMEDIATE")
        with conn.begin():
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": CLAIM_LOCK_KEY})
            running = conn.execute(
                select(
                    Search.id, Search.worker_id, Search.lease_expires_at, Search.attempts
                ).where(Search.status == "running")
            ).all()
            orphans = [
                r
                for r in running
                if r.lease_expires_at is None
                or r.lease_expires_at < now
                or _holder_is_dead(r.worker_id)
            ]
            live = len(running) - len(orphans)
            for orphan in orphans:
                if orphan.attempts >= max_attempts:
                    conn.execute(
                        update(Search)
                        .where(Search.id == orphan.id, Search.status == "running")
                        .values(
                            status="failed",
                            finished_at=now,
                            updated_at=now,
                            worker_id=None,
                            lease_expires_at=None,
                            error=f"its worker stopped {orphan.attempts} times while running "
                            f"it (NAS_MAX_ATTEMPTS={max_attempts}); submit it again to retry",
                        )
                    )
            orphans = [o for o in orphans if o.attempts < max_attempts]
            if live >= max_running:
                return None
            if orphans:
                candidate, resumed = orphans[0].id, True
                condition = Search.status == "running"
            else:
                candidate = conn.execute(
                    select(Search.id)
                    .where(Search.status == "queued")
                    .order_by(Search.created_at, Search.id)
                    .limit(1)
                ).scalar()
                if candidate is None:
                    return None
                resumed, condition = False, Search.status == "queued"
            claimed = conn.execute(
                update(Search)
                .where(Search.id == candidate, condition)
                .values(
                    status="running",
                    worker_id=worker_id,
                    lease_expires_at=now + timedelta(seconds=lease_seconds),
                    heartbeat_at=now,
                    attempts=Search.attempts + 1,
                    started_at=func.coalesce(Search.started_at, now),
                    updated_at=now,
                )
            ).rowcount
            if not claimed:
                return None
            row = conn.execute(
                select(Search.config, Search.attempts).where(Search.id == candidate)
            ).one()
            return Claim(candidate, dict(row.config), resumed or row.attempts > 1)


def renew_lease(
    engine: Engine, *, search_id: str, worker_id: str, lease_seconds: float
) -> tuple[bool, bool]:
    """Extend the worker's lease; returns ``(still_held, cancel_requested)``."""
    now = utcnow()
    with engine.begin() as conn:
        held = conn.execute(
            update(Search)
            .where(
                Search.id == search_id,
                Search.worker_id == worker_id,
                Search.status == "running",
            )
            .values(lease_expires_at=now + timedelta(seconds=lease_seconds), heartbeat_at=now)
        ).rowcount
        cancel = conn.execute(
            select(Search.cancel_requested).where(Search.id == search_id)
        ).scalar()
    return bool(held), bool(cancel)


def _owned(search_id: str, worker_id: str) -> Any:
    return and_(Search.id == search_id, Search.worker_id == worker_id, Search.status == "running")


def finish_search(
    session: Session,
    *,
    search_id: str,
    worker_id: str,
    status: str,
    run_seconds: float,
    error: str | None = None,
    mlflow_run_id: str | None = None,
    study_name: str | None = None,
) -> bool:
    """Mark the worker's search finished (``status`` in FINISHED); False if not its own."""
    assert status in FINISHED, status
    now = utcnow()
    values: dict[str, Any] = {
        "status": status,
        "finished_at": now,
        "updated_at": now,
        "worker_id": None,
        "lease_expires_at": None,
        "error": error,
        "run_seconds": Search.run_seconds + run_seconds,
        "eta_s": None,
    }
    if mlflow_run_id:
        values["mlflow_run_id"] = mlflow_run_id
    if study_name:
        values["study_name"] = study_name
    done = session.execute(update(Search).where(_owned(search_id, worker_id)).values(**values))
    session.commit()
    return bool(done.rowcount)


def requeue_search(
    session: Session, *, search_id: str, worker_id: str, run_seconds: float
) -> bool:
    """Put the worker's search back in the queue (graceful shutdown); it resumes later."""
    done = session.execute(
        update(Search)
        .where(_owned(search_id, worker_id))
        .values(
            status="queued",
            worker_id=None,
            lease_expires_at=None,
            attempts=Search.attempts - 1,
            run_seconds=Search.run_seconds + run_seconds,
            updated_at=utcnow(),
        )
    )
    session.commit()
    return bool(done.rowcount)


def set_run_info(
    session: Session, *, search_id: str, mlflow_run_id: str | None, study_name: str | None
) -> None:
    """Store the MLflow parent run and Optuna study name once known; commit."""
    values = {k: v for k, v in (("mlflow_run_id", mlflow_run_id), ("study_name", study_name)) if v}
    if values:
        session.execute(update(Search).where(Search.id == search_id).values(**values))
        session.commit()
