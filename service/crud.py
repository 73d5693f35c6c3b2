"""Database operations on searches and trials (keyword-only functions): the API's reads and
writes, and the trials and Pareto flags a worker stores. The workers' lease queue (claim,
renew, finish) is :mod:`service.queue`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, text, update
from sqlalchemy.orm import Session

from nas.jsonable import jsonable
from nas.pareto import pareto_front
from nas.search.config import direction
from service.models import Search, Trial, utcnow

__all__ = [
    "SUBMIT_LOCK_KEY",
    "QueueFull",
    "cancel_search",
    "confirmation_of",
    "count_by_status",
    "create_search",
    "get_search",
    "list_searches",
    "list_trials",
    "pareto_trials",
    "refresh_front",
    "upsert_trial",
    "upsert_trials",
]

_FINISHED_STATES = ("COMPLETE", "FAIL")

SUBMIT_LOCK_KEY = 0x6E61735F737562  # "nas_sub": PostgreSQL advisory lock of a submission


class QueueFull(Exception):
    """``max_queued`` searches already wait; ``queued`` is how many."""

    def __init__(self, queued: int) -> None:
        super().__init__(f"{queued} searches are queued")
        self.queued = queued


def _begin_write(session: Session, lock_key: int | None = None) -> None:
    """Start the session's transaction as a writer at once: SQLite ``BEGIN IMMEDIATE`` (it
    waits for the write lock with the busy timeout; a read transaction that later writes
    would fail at once with "database is locked" when another writer got in first), and on
    PostgreSQL the advisory transaction lock ``lock_key`` when given."""
    conn = session.connection(execution_options={"sqlite_begin": "IMMEDIATE"})
    if lock_key is not None and conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": lock_key})


# --------------------------------------------------------------------------- helpers


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
    max_queued: int | None = None,
) -> Search:
    """Insert a queued search and commit.

    With ``max_queued``, counting the queued searches and inserting this one is one
    serialised transaction (the SQLite write lock, a PostgreSQL advisory lock), so concurrent
    submissions never pass the limit; raises :class:`QueueFull` when it is reached.
    """
    if max_queued is not None:
        _begin_write(session, SUBMIT_LOCK_KEY)
        queued = session.scalar(
            select(func.count()).select_from(Search).where(Search.status == "queued")
        )
        if int(queued or 0) >= max_queued:
            session.rollback()
            raise QueueFull(int(queued or 0))
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
    _begin_write(session)
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
    directions = [direction(name) for name in objectives]  # an unknown one is an error
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
