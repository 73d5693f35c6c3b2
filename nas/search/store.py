"""The Optuna side of a search: storage, one study per search, reading trials back.

A search is an Optuna study named ``<name>-<id>`` (or just ``<id>``) whose user attributes
hold the search id, the config, the resolved space document, state and MLflow parent run id,
so any process (CLI, service, ``optuna-dashboard``) can read it back from the SQL storage.
"""

from __future__ import annotations

import math
import os
import re
import secrets
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from nas.jsonable import jsonable
from nas.pareto import pareto_front
from nas.search import confirm
from nas.search.attrs import ATTR
from nas.search.config import OBJECTIVES, SearchConfig
from nas.search.records import SearchNotFound, SearchResult, TrialNotFound, TrialRecord

if TYPE_CHECKING:
    import optuna

__all__ = [
    "SearchNotFound",
    "TrialNotFound",
    "compute_pareto",
    "fast_sqlite",
    "get_storage",
    "jsonable",
    "list_searches",
    "load_search",
    "new_search_id",
    "reported",
    "study_name_for",
    "trial_record",
]


def new_search_id() -> str:
    """A fresh id: ``s`` and 10 hex digits, such as ``s3f9c2a1b07`` (CLI and service alike).

    Ids are looked up as stored, so searches with older ids (8 hex digits) still read.
    """
    return "s" + secrets.token_hex(5)


def study_name_for(search_id: str, name: str | None) -> str:
    """The Optuna study name: the id, prefixed with a slug of the search's name if any."""
    if not name:
        return search_id
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-")[:60]
    return f"{slug}-{search_id}" if slug else search_id


_STORAGES: dict[str, Any] = {}


_FAST_FILES: set[str] = set()


def _sqlite_pragmas(dbapi_connection: Any, connection_record: Any) -> None:
    """Write-ahead log, synced at checkpoints rather than at every commit, for the files of
    :func:`fast_sqlite`; other connections are left as they are."""
    import sqlite3

    if not _FAST_FILES or not isinstance(dbapi_connection, sqlite3.Connection):
        return
    files = {os.path.realpath(row[2]) for row in dbapi_connection.execute("PRAGMA database_list")}
    if files & _FAST_FILES:
        dbapi_connection.execute("PRAGMA journal_mode=WAL")
        dbapi_connection.execute("PRAGMA synchronous=NORMAL")


def fast_sqlite(url: str) -> None:
    """Open the SQLite file of ``url`` (Optuna's or MLflow's store) in write-ahead-log mode.

    A search writes a few rows per trial, each in its own transaction; with SQLite's default
    (rollback journal, ``synchronous=FULL``) each waits for the disk (~10 ms on the dev
    machine; 0.02 ms in WAL mode with ``synchronous=NORMAL``). A crash of the process loses
    nothing; a power cut may lose the last transactions, not the file
    (https://sqlite.org/wal.html); readers (the service, ``optuna-dashboard``) no longer
    block the search's writes. Applies to connections opened from now on, by any engine of
    this process (SQLAlchemy's ``connect`` event), so call it before the store is opened.
    """
    if not url.startswith("sqlite:///"):
        return
    import sqlalchemy

    database = sqlalchemy.engine.make_url(url).database
    if not database or database == ":memory:":
        return
    if not _FAST_FILES and not sqlalchemy.event.contains(
        sqlalchemy.engine.Engine, "connect", _sqlite_pragmas
    ):
        sqlalchemy.event.listen(sqlalchemy.engine.Engine, "connect", _sqlite_pragmas)
    _FAST_FILES.add(os.path.realpath(database))


def get_storage(url: str | None = None) -> optuna.storages.BaseStorage:
    """An Optuna RDB storage for ``url`` (default: the workspace SQLite), cached per URL.

    A SQLite file is opened in write-ahead-log mode (:func:`fast_sqlite`).
    """
    import optuna

    from nas import workspace

    url = url or workspace.optuna_storage_url()
    if url not in _STORAGES:
        engine_kwargs: dict[str, Any] = {}
        if url.startswith("sqlite"):
            engine_kwargs["connect_args"] = {"timeout": 60}
            fast_sqlite(url)
        else:
            engine_kwargs["pool_pre_ping"] = True
        try:
            storage = optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs)
        except Exception as exc:
            from nas.errors import NasError

            raise NasError(f"cannot open the Optuna storage {url!r}: {exc}") from exc
        _STORAGES[url] = storage
    return _STORAGES[url]


def _summaries(storage: optuna.storages.BaseStorage) -> list[Any]:
    import optuna

    return [
        s
        for s in optuna.get_all_study_summaries(storage, include_best_trial=False)
        if ATTR["id"] in s.user_attrs
    ]


def find_study_name(search_id: str, storage: optuna.storages.BaseStorage) -> str | None:
    """The study name of ``search_id``, or None when the storage has no such search."""
    for s in _summaries(storage):
        if s.user_attrs.get(ATTR["id"]) == search_id:
            return s.study_name
    return None


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(float(value))


def trial_record(
    trial: optuna.trial.FrozenTrial,
    objectives: list[str],
    runs: dict[str, str] | None = None,
) -> TrialRecord:
    """A :class:`TrialRecord` from an Optuna trial of a search (``runs``: MLflow run ids)."""
    attrs = trial.user_attrs
    metrics = attrs.get(ATTR["metrics"]) or {}
    values: dict[str, float] = {}
    if trial.values is not None:
        values = {o: float(v) for o, v in zip(objectives, trial.values, strict=False)}
    constraints = trial.constraints
    feasible = all(v <= 0 for v in constraints.values()) if constraints else True
    return TrialRecord(
        number=trial.number,
        state=trial.state.name,
        params=dict(trial.params),
        arch=attrs.get(ATTR["arch"]),
        arch_id=attrs.get(ATTR["arch_id"]),
        values=values,
        metrics=metrics,
        feasible=feasible,
        mlflow_run_id=attrs.get(ATTR["run"]) or (runs or {}).get(str(trial.number)),
        error=attrs.get(ATTR["error"]),
        started_at=_started_at(trial),
        finished_at=trial.datetime_complete,
        interrupted=bool(attrs.get(ATTR["interrupted"], False)),
    )


def _started_at(trial: optuna.trial.FrozenTrial) -> datetime | None:
    """When the trial began to run (its Optuna start is when it was asked, possibly earlier)."""
    started = trial.user_attrs.get(ATTR["started"])
    try:
        return datetime.fromisoformat(started) if started else trial.datetime_start
    except (TypeError, ValueError):
        return trial.datetime_start


def compute_pareto(trials: list[TrialRecord], objectives: list[str]) -> list[TrialRecord]:
    """Complete trials on the feasible Pareto front of ``objectives`` (see :mod:`nas.pareto`)."""
    done = [
        t
        for t in trials
        if t.state == "COMPLETE" and all(_finite(t.values.get(o)) for o in objectives)
    ]
    rows = [[t.values[o] for o in objectives] for t in done]
    idx = pareto_front(rows, [OBJECTIVES[o] for o in objectives], [t.feasible for t in done])
    return [done[i] for i in idx]


def reported(
    trials: list[TrialRecord], attrs: dict[str, Any], config: SearchConfig
) -> tuple[list[TrialRecord], list[TrialRecord]]:
    """The trials with their confirmations, and the front a search reports: on seed means
    once confirmation has chosen its candidates (:mod:`nas.search.confirm`), else plain."""
    candidates = confirm.stored_candidates(attrs, trials)
    if candidates is None:
        return trials, compute_pareto(trials, config.objectives)
    trials = confirm.summarise_all(trials, candidates, confirm.read_outcomes(attrs), config)
    return trials, confirm.confirmed_front(trials, candidates, config)


def _state(attrs: dict[str, Any]) -> str:
    return str(attrs.get(ATTR["state"], "running"))


def _created(attrs: dict[str, Any]) -> datetime | None:
    raw = attrs.get(ATTR["created"])
    return datetime.fromisoformat(raw) if raw else None


def load_search(search_id: str, storage: str | None = None) -> SearchResult:
    """A search with all its trials and its Pareto front, read back from the Optuna storage."""
    import optuna

    store = get_storage(storage)
    study_name = find_study_name(search_id, store)
    if study_name is None:
        raise SearchNotFound(
            f"no search {search_id!r} in {_describe(storage)}; `nas searches` lists them"
        )
    study = optuna.load_study(study_name=study_name, storage=store)
    attrs = study.user_attrs
    config = SearchConfig.model_validate(attrs[ATTR["config"]], context={"stored": True})
    runs = attrs.get(ATTR["runs"]) or {}
    trials = [trial_record(t, config.objectives, runs) for t in study.get_trials(deepcopy=False)]
    trials, pareto = reported(trials, attrs, config)
    return SearchResult(
        search_id=search_id,
        study_name=study_name,
        state=_state(attrs),
        config=config,
        trials=trials,
        pareto=pareto,
        mlflow_run_id=attrs.get(ATTR["mlflow"]),
        created_at=_created(attrs),
        error=attrs.get(ATTR["error"]),
    )


def list_searches(storage: str | None = None) -> list[dict[str, Any]]:
    """One summary dict per search in the storage, newest first."""
    import optuna

    store = get_storage(storage)
    out = []
    for s in _summaries(store):
        attrs = s.user_attrs
        config = attrs.get(ATTR["config"]) or {}
        space = config.get("space")
        counts = {"COMPLETE": 0, "FAIL": 0, "RUNNING": 0}
        study = optuna.load_study(study_name=s.study_name, storage=store)
        for t in study.get_trials(deepcopy=False):
            if t.state.name == "FAIL" and t.user_attrs.get(ATTR["interrupted"]):
                continue
            counts[t.state.name] = counts.get(t.state.name, 0) + 1
        out.append(
            {
                "search_id": attrs[ATTR["id"]],
                "study_name": s.study_name,
                "name": config.get("name"),
                "state": _state(attrs),
                "space": space if isinstance(space, str) else "<inline>",
                "objectives": config.get("objectives"),
                "sampler": config.get("sampler"),
                "budget": config.get("budget"),
                "complete": counts["COMPLETE"],
                "failed": counts["FAIL"],
                "running": counts["RUNNING"],
                "created_at": attrs.get(ATTR["created"]),
                "mlflow_run_id": attrs.get(ATTR["mlflow"]),
            }
        )
    out.sort(key=lambda d: d["created_at"] or "", reverse=True)
    return out


def _describe(storage: str | None) -> str:
    from nas import workspace

    url = storage or workspace.optuna_storage_url()
    return re.sub(r"//([^:/@]+):[^@]*@", r"//\1:***@", url)


def now_iso() -> str:
    """The current UTC time as an ISO string (stored in study attributes)."""
    return datetime.now(UTC).isoformat()
