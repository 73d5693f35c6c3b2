"""Database operations of the API and the workers (keyword-only functions).

The worker side is written for several workers sharing one database: a search is claimed
with a compare-and-set ``UPDATE`` inside a serialised transaction (``BEGIN IMMEDIATE`` on
SQLite, an advisory transaction lock on PostgreSQL), kept with a lease that its worker renews,
and taken over by another worker when the lease runs out.
"""

from __future__ import annotations

import math
import os
import socket
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, and_, func, select, text, update
from sqlalchemy.orm import Session

from nas.pareto import pareto_front
from service.models import FINISHED, Search, Trial, utcnow
from service.schemas import OBJECTIVE_DIRECTIONS

__all__ = [
    "CLAIM_LOCK_KEY",
    "Claim",
    "cancel_search",
    "claim_next",
    "confirmation_of",
    "count_by_status",
    "create_search",
    "finish_search",
    "get_search",
    "jsonable",
    "list_searches",
    "list_trials",
    "pareto_trials",
    "record_progress",
    "refresh_front",
    "renew_lease",
    "requeue_search",
    "set_run_info",
    "upsert_trial",
    "upsert_trials",
]

CLAIM_LOCK_KEY = 0x6E61735F636C6D  # "nas_clm": PostgreSQL advisory lock of the claim step
_FINISHED_STATES = ("COMPLETE", "FAIL")


# --------------------------------------------------------------------------- helpers


def jsonable(value: Any) -> Any:
    """``value`` as plain JSON data: tuples become lists, NaN/inf become None, others str."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        try:
            return jsonable(value.item())
        except (TypeError, ValueError):
            pass
    if hasattr(value, "model_dump"):
        return jsonable(value.model_dump())
    return str(value)


def _naive_utc(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return None
    if not isinstance(value, datetime):
        return None
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value


def _int_or_none(value: Any) -> int | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return int(number) if math.isfinite(number) else None


# --------------------------------------------------------------------------- API side


def create_search(
    session: Session,
    *,
    search_id: str,
    config: dict[str, Any],
    space_name: str,
    name: str | None,
    budget: int,
    objectives: list[str],
) -> Search:
    """Insert a queued search and commit."""
    now = utcnow()
    search = Search(
        id=search_id,
        name=name,
        status="queued",
        config=jsonable(config),
        space_name=space_name,
        budget=budget,
        objectives=list(objectives),
        created_at=now,
        updated_at=now,
    )
    session.add(search)
    session.commit()
    return search


def get_search(session: Session, *, search_id: str) -> Search | None:
    """The search with that id, or None."""
    return session.get(Search, search_id)


def list_searches(
    session: Session, *, status: str | None = None, limit: int = 50, offset: int = 0
) -> tuple[list[Search], int]:
    """A page of searches (newest first) and the number matching ``status``."""
    query = select(Search)
    counter = select(func.count()).select_from(Search)
    if status is not None:
        query = query.where(Search.status == status)
        counter = counter.where(Search.status == status)
    rows = session.scalars(
        query.order_by(Search.created_at.desc(), Search.id.desc()).limit(limit).offset(offset)
    ).all()
    return list(rows), int(session.scalar(counter) or 0)


def count_by_status(session: Session) -> dict[str, int]:
    """Number of searches per status."""
    rows = session.execute(select(Search.status, func.count()).group_by(Search.status)).all()
    return {status: int(count) for status, count in rows}


def cancel_search(session: Session, *, search_id: str) -> tuple[Search | None, str]:
    """Cancel a search: a queued one at once, a running one when its worker sees the request.

    Returns ``(search, outcome)`` with outcome ``"cancelled"``, ``"requested"``,
    ``"finished"`` (nothing to cancel) or ``"missing"``.
    """
    now = utcnow()
    done = session.execute(
        update(Search)
        .where(Search.id == search_id, Search.status == "queued")
        .values(status="cancelled", finished_at=now, updated_at=now, cancel_requested=True)
    ).rowcount
    outcome = "cancelled"
    if not done:
        done = session.execute(
            update(Search)
            .where(Search.id == search_id, Search.status == "running")
            .values(cancel_requested=True, updated_at=now)
        ).rowcount
        outcome = "requested"
    session.commit()
    search = session.get(Search, search_id, populate_existing=True)
    if search is None:
        return None, "missing"
    if not done:
        return search, "finished"
    return search, outcome


def list_trials(
    session: Session,
    *,
    search_id: str,
    state: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> tuple[list[Trial], int]:
    """A page of a search's trials by number, and how many match ``state``."""
    query = select(Trial).where(Trial.search_id == search_id)
    counter = select(func.count()).select_from(Trial).where(Trial.search_id == search_id)
    if state is not None:
        query = query.where(Trial.state == state)
        counter = counter.where(Trial.state == state)
    rows = session.scalars(query.order_by(Trial.number).limit(limit).offset(offset)).all()
    return list(rows), int(session.scalar(counter) or 0)


def pareto_trials(session: Session, *, search_id: str) -> list[Trial]:
    """The trials on the search's Pareto front, by number."""
    query = (
        select(Trial)
        .where(Trial.search_id == search_id, Trial.on_front.is_(True))
        .order_by(Trial.number)
    )
    return list(session.scalars(query).all())


# --------------------------------------------------------------------------- worker side


def _trial_row(search_id: str, record: Any) -> dict[str, Any]:
    """Column values of a ``TrialRecord`` (pydantic model or mapping)."""
    data = record.model_dump() if hasattr(record, "model_dump") else dict(record)
    metrics = jsonable(data.get("metrics") or {})
    values = jsonable(data.get("values") or {})
    return {
        "search_id": search_id,
        "number": int(data["number"]),
        "state": str(data.get("state") or "COMPLETE"),
        "params": jsonable(data.get("params") or {}),
        "arch": jsonable(data.get("arch")),
        "arch_id": data.get("arch_id"),
        "values": values,
        "metrics": metrics,
        "feasible": bool(data.get("feasible", True)),
        "interrupted": bool(data.get("interrupted", False)),
        "num_params": _int_or_none(metrics.get("params")),
        "flops": _int_or_none(metrics.get("flops")),
        "mlflow_run_id": data.get("mlflow_run_id"),
        "error": None if data.get("error") is None else str(data.get("error"))[:10000],
        "started_at": _naive_utc(data.get("started_at")),
        "finished_at": _naive_utc(data.get("finished_at")),
        "confirmation": _confirmation(data),
    }


CONFIRMATION_FIELDS = (
    "confirm_candidate",
    "confirmed",
    "accuracy_mean",
    "accuracy_sd",
    "n_seeds",
    "test_accuracy",
    "confirm_error",
)


def _confirmation(data: Mapping[str, Any]) -> dict[str, Any] | None:
    """The seed summary of a record (None for a search function that reports none)."""
    if not any(data.get(k) is not None for k in CONFIRMATION_FIELDS):
        return None
    return jsonable({k: data.get(k) for k in CONFIRMATION_FIELDS})


def confirmation_of(trial: Trial) -> dict[str, Any]:
    """A trial row's seed summary; rows stored without one have their own seed only."""
    stored = trial.confirmation or {}
    if stored:
        return {k: stored.get(k) for k in CONFIRMATION_FIELDS if stored.get(k) is not None}
    if trial.state != "COMPLETE":
        return {}
    accuracy = (trial.values or {}).get("accuracy", (trial.metrics or {}).get("accuracy"))
    test = (trial.metrics or {}).get("test_accuracy")
    return {
        "n_seeds": 1,
        "accuracy_mean": accuracy if isinstance(accuracy, int | float) else None,
        "test_accuracy": test if isinstance(test, int | float) else None,
    }


def upsert_trials(session: Session, *, search_id: str, records: Iterable[Any]) -> int:
    """Insert or update trials by ``(search_id, number)`` (never duplicates); no commit.

    A finished trial (COMPLETE/FAIL) is never turned back into a running one.
    """
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    count = 0
    for record in records:
        row = _trial_row(search_id, record)
        statement = insert(Trial).values(**row)
        changes = {k: statement.excluded[k] for k in row if k not in ("search_id", "number")}
        finished = Trial.state.in_(_FINISHED_STATES)
        statement = statement.on_conflict_do_update(
            index_elements=["search_id", "number"],
            set_=changes,
            where=None if row["state"] in _FINISHED_STATES else ~finished,
        )
        session.execute(statement)
        count += 1
    return count


def upsert_trial(session: Session, *, search_id: str, record: Any) -> None:
    """Store one trial (see :func:`upsert_trials`), refresh progress and front, commit."""
    upsert_trials(session, search_id=search_id, records=[record])
    refresh_front(session, search_id=search_id)
    session.commit()


def refresh_front(session: Session, *, search_id: str) -> int:
    """Recompute the search's done/failed counts and Pareto flags; no commit.

    Done counts complete trials and failed ones that were not interrupted (as the budget does).

    The front is :func:`nas.pareto.pareto_front` over complete trials, feasible ones only.
    Once the search has chosen trials to confirm (``confirm_candidate``), it is the front
    among those, their accuracy replaced by the seed mean (as ``nas.search`` reports it).
    """
    search = session.get(Search, search_id)
    if search is None:
        return 0
    objectives = list(search.objectives)
    directions = [OBJECTIVE_DIRECTIONS.get(name, "minimize") for name in objectives]
    rows = session.execute(
        select(Trial.id, Trial.values, Trial.feasible, Trial.on_front, Trial.confirmation).where(
            Trial.search_id == search_id, Trial.state == "COMPLETE"
        )
    ).all()
    pool = [i for i, r in enumerate(rows) if (r.confirmation or {}).get("confirm_candidate")]
    if not pool:
        pool = list(range(len(rows)))
        values = [[(rows[i].values or {}).get(name) for name in objectives] for i in pool]
    else:
        values = [[_confirmed_value(rows[i], name) for name in objectives] for i in pool]
    feasible = [bool(rows[i].feasible) for i in pool]
    front = {pool[j] for j in pareto_front(values, directions, feasible)} if pool else set()
    to_set = [r.id for i, r in enumerate(rows) if (i in front) != bool(r.on_front)]
    if to_set:
        on = [r.id for i, r in enumerate(rows) if i in front and not r.on_front]
        off = [r.id for i, r in enumerate(rows) if i not in front and r.on_front]
        if on:
            session.execute(update(Trial).where(Trial.id.in_(on)).values(on_front=True))
        if off:
            session.execute(update(Trial).where(Trial.id.in_(off)).values(on_front=False))
    counts = dict(
        session.execute(
            select(Trial.state, func.count())
            .where(
                Trial.search_id == search_id,
                Trial.state.in_(_FINISHED_STATES),
                Trial.interrupted.is_(False),
            )
            .group_by(Trial.state)
        ).all()
    )
    search.done = int(counts.get("COMPLETE", 0)) + int(counts.get("FAIL", 0))
    search.failed = int(counts.get("FAIL", 0))
    search.front_size = len(front)
    search.updated_at = utcnow()
    return len(front)


def _confirmed_value(row: Any, name: str) -> Any:
    """An objective of a confirmation candidate: accuracy is the seed mean."""
    if name == "accuracy":
        mean = (row.confirmation or {}).get("accuracy_mean")
        if mean is not None:
            return mean
    return (row.values or {}).get(name)


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
