"""``run_search``: Ray Tune's ``Tuner`` with ``OptunaSearch`` over a define-by-run space.

Driver side: the Optuna study (SQL storage), the sampler and MLflow logging all live in the
calling process; Ray workers only evaluate candidates (:mod:`nas.search.trainable`). Each
finished trial is told to Optuna by :class:`_Searcher` with every objective or as FAIL, never
left RUNNING. A stopped search (``should_stop``, Ctrl-C) ends its running trials, marks them
*interrupted* (FAIL, not counted in the budget) and stays resumable. After the budget,
:mod:`nas.search.confirm_runner` re-trains the best trials with more seeds.
"""

from __future__ import annotations

import json
import logging
import math
import os
import signal
import threading
import time
import warnings
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from nas import workspace
from nas.errors import NasError
from nas.search.config import SearchConfig
from nas.search.confirm import estimated_runs
from nas.search.confirm_runner import confirm_search
from nas.search.records import SearchProgress, SearchResult, TrialRecord
from nas.search.resources import ensure_ray, eval_settings, load_space, preflight, versions
from nas.search.resources import resolve_resources as _resources
from nas.search.samplers import make_sampler
from nas.search.store import (
    ATTR,
    compute_pareto,
    find_study_name,
    get_storage,
    jsonable,
    load_search,
    new_search_id,
    now_iso,
    study_name_for,
    trial_record,
)
from nas.search.trainable import ERROR, FAILED, METRICS, STARTED

__all__ = ["ensure_ray", "eval_settings", "run_search"]

log = logging.getLogger(__name__)

#: Runs in progress in this process, by search id. Ray Tune pickles its searcher and stopper,
#: so they hold only the id and look the (unpicklable) driver state up here.
_ACTIVE: dict[str, _Run] = {}


def _active(search_id: str) -> _Run | None:
    return _ACTIVE.get(search_id)


#: Fields a resumed search takes from the caller's config; the stored config defines the rest.
RESUME_OVERRIDES = ("budget", "concurrency", "cpus_per_trial", "gpus_per_trial", "ray_address")


class _Run:
    """State of one run_search call (driver side)."""

    def __init__(
        self,
        *,
        search_id: str,
        study: Any,
        config: SearchConfig,
        tracker: Any,
        records: list[TrialRecord],
        on_trial: Callable[[TrialRecord], None] | None,
        on_progress: Callable[[SearchProgress], None] | None,
    ) -> None:
        self.search_id = search_id
        self.study = study
        self.config = config
        self.tracker = tracker
        self.records = {r.number: r for r in records}
        self.on_trial = on_trial
        self.on_progress = on_progress
        self.started = time.monotonic()
        self.finished_here = 0
        self.lock = threading.Lock()
        self.run_ids: dict[str, str] = dict(study.user_attrs.get(ATTR["runs"]) or {})
        self.stop_flag = threading.Event()
        self.should_stop: Callable[[], bool] | None = None

    def stop(self) -> bool:
        """Whether the search must stop (asked by ``should_stop`` or Ctrl-C); sticky."""
        if not self.stop_flag.is_set() and self.should_stop is not None and self.should_stop():
            self.stop_flag.set()
        return self.stop_flag.is_set()

    def counts(self) -> tuple[int, int]:
        done = sum(r.finished for r in self.records.values())
        failed = sum(r.state == "FAIL" and not r.interrupted for r in self.records.values())
        return done, failed

    def progress(self) -> SearchProgress:
        done, failed = self.counts()
        elapsed = time.monotonic() - self.started
        front = compute_pareto(list(self.records.values()), self.config.objectives)
        # Confirmation runs follow the budget and take about a trial's time each.
        remaining = max(0, self.config.budget - done) + estimated_runs(self.config, len(front))
        eta = elapsed / self.finished_here * remaining if self.finished_here else None
        return SearchProgress(
            done=done,
            failed=failed,
            budget=self.config.budget,
            front_size=len(front),
            elapsed_s=elapsed,
            eta_s=eta,
        )

    def completed_twin(self, arch_id: str) -> TrialRecord | None:
        """A complete trial of this search with the same architecture, if any."""
        with self.lock:
            for record in self.records.values():
                if record.state == "COMPLETE" and record.arch_id == arch_id:
                    return record
        return None

    def _logged(self, number: int, run_id: str) -> None:
        """Remember a trial's MLflow child run (a study attribute: the trial is finished)."""
        with self.lock:
            self.run_ids[str(number)] = run_id
            runs = dict(self.run_ids)
        if number in self.records:
            self.records[number].mlflow_run_id = run_id
        self.study.set_user_attr(ATTR["runs"], runs)

    def finish_trial(self, ot_trial: Any, result: dict[str, Any] | None, error: bool) -> None:
        """Record one Ray trial's outcome in Optuna (COMPLETE or FAIL) and MLflow."""
        import optuna

        objectives = self.config.objectives
        metrics: dict[str, Any] = {}
        values: list[float] | None = None
        err: str | None = None
        interrupted = False
        if result is not None and result.get(FAILED) is False:
            metrics = json.loads(result[METRICS])
            values = [float(result[o]) for o in objectives]
            if not all(math.isfinite(v) for v in values):
                values, err = None, "an objective is not finite"
        elif result is not None and result.get(FAILED):
            err = str(result.get(ERROR) or "trial failed")
            metrics = json.loads(result.get(METRICS) or "{}")  # where it ran
        elif error:
            err = "the trial's Ray worker failed (crashed, killed or out of memory)"
        else:
            err, interrupted = "interrupted: the search stopped before this trial finished", True
        feasible = True
        if values is not None and self.config.max_latency_ms is not None:
            feasible = float(metrics["latency_ms"]) <= self.config.max_latency_ms
        attrs = ot_trial.user_attrs
        record = TrialRecord(
            number=ot_trial.number,
            state="COMPLETE" if values is not None else "FAIL",
            params=dict(ot_trial.params),
            arch=attrs.get(ATTR["arch"]),
            arch_id=attrs.get(ATTR["arch_id"]),
            values=dict(zip(objectives, values, strict=True)) if values else {},
            metrics=jsonable(metrics),
            feasible=feasible,
            error=err,
            started_at=_started_at(result, ot_trial),
            finished_at=datetime.now(),
            interrupted=interrupted,
        )
        ot_trial.set_user_attr(ATTR["metrics"], record.metrics)
        if record.started_at is not None and record.started_at != ot_trial.datetime_start:
            ot_trial.set_user_attr(ATTR["started"], record.started_at.isoformat())
        if err:
            ot_trial.set_user_attr(ATTR["error"], err)
        if interrupted:
            ot_trial.set_user_attr(ATTR["interrupted"], True)
        if values is not None and self.config.max_latency_ms is not None:
            ot_trial.set_constraint(
                "latency_ms", float(metrics["latency_ms"]) - self.config.max_latency_ms
            )
        state = optuna.trial.TrialState.COMPLETE if values else optuna.trial.TrialState.FAIL
        self.study.tell(ot_trial, values, state=state)
        if self.tracker is not None and not interrupted:
            self.tracker.submit_trial(record.model_copy(), self.search_id, self._logged)
        with self.lock:
            self.records[record.number] = record
            if not interrupted:
                self.finished_here += 1
        for callback, arg in ((self.on_trial, record), (self.on_progress, None)):
            if callback is None:
                continue
            try:
                callback(arg if arg is not None else self.progress())
            except Exception as exc:
                log.warning("search callback failed: %s", exc)


def _started_at(result: dict[str, Any] | None, ot_trial: Any) -> datetime | None:
    """When the trial began on its worker; Optuna's start is when it was asked."""
    started = (result or {}).get(STARTED)
    if isinstance(started, int | float) and math.isfinite(started):
        return datetime.fromtimestamp(started)
    return ot_trial.datetime_start


AHEAD_FRACTION = 0.03
"""Propose the next trial ahead while one proposal takes at least this share of a trial."""


def ahead_pays(propose_s: float, trial_s: float | None) -> bool:
    """Whether proposing ahead saves a noticeable share of a trial's time (always before the
    first trial has finished: its proposals are the sampler's random start-up ones)."""
    return trial_s is None or propose_s >= AHEAD_FRACTION * trial_s


def _average(mean: float | None, value: float, weight: float = 0.3) -> float:
    """Exponential moving average (``value`` alone when there is no mean yet)."""
    return value if not mean else (1 - weight) * mean + weight * value


def _make_searcher(run: _Run, define: Callable, sampler: Any, store: Any, total: int) -> Any:
    from ray.tune.search import Searcher
    from ray.tune.search.optuna import OptunaSearch
    from ray.tune.utils.util import unflatten_dict

    class _Searcher(OptunaSearch):
        """OptunaSearch that tells Optuna every objective or FAIL, and stops on request.

        When trials are short next to the sampler's work (a proposal takes at least
        ``AHEAD_FRACTION`` of a trial), it proposes one trial ahead: after handing out a
        proposal it asks Optuna for the next one in a background thread, while the running
        trials train, so that a freed slot gets its next trial at once instead of after the
        sampler's work (Tune calls ``suggest`` from its single control loop). A proposal made
        ahead lacks the results of the trials running at that moment, like one more
        concurrent trial, so longer trials are proposed when a slot frees, with every result
        known. ``total`` caps the proposals, so a finished search leaves none asked ahead.
        """

        nas_search_id = run.search_id

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._nas_given = 0
            self._nas_ahead: threading.Thread | None = None
            self._nas_next: tuple[Any, dict] | BaseException | None = None
            self._nas_propose_s = 0.0  # moving averages: seconds per proposal, per trial
            self._nas_trial_s: float | None = None

        def __getstate__(self) -> dict[str, Any]:
            state = self.__dict__.copy()
            state["_nas_ahead"] = state["_nas_next"] = None
            return state

        def _nas_propose(self) -> tuple[Any, dict]:
            started = time.perf_counter()
            ot_trial = self._ot_study.ask()
            params = self._suggest_from_define_by_run_func(self._space, ot_trial)
            self._nas_propose_s = _average(self._nas_propose_s, time.perf_counter() - started)
            return ot_trial, params

        def _nas_propose_ahead(self) -> None:
            try:
                self._nas_next = self._nas_propose()
            except BaseException as exc:  # handed to the control loop by the next suggest
                self._nas_next = exc

        def join_ahead(self) -> None:
            """Wait for a proposal in the making (it is left RUNNING, then interrupted)."""
            if self._nas_ahead is not None:
                self._nas_ahead.join()

        def suggest(self, trial_id: str) -> dict | None:
            active = _active(self.nas_search_id)
            if active is None or active.stop():
                return Searcher.FINISHED
            if self._nas_ahead is not None:
                self._nas_ahead.join()
                self._nas_ahead, proposal, self._nas_next = None, self._nas_next, None
            else:
                proposal = self._nas_propose()
            if isinstance(proposal, BaseException):
                raise proposal
            ot_trial, params = proposal
            self._ot_trials[trial_id] = ot_trial
            self._nas_given += 1
            if self._nas_given < total and ahead_pays(self._nas_propose_s, self._nas_trial_s):
                self._nas_ahead = threading.Thread(
                    target=self._nas_propose_ahead, name="nas-propose-ahead", daemon=True
                )
                self._nas_ahead.start()
            return unflatten_dict(params)

        def save_to_dir(self, dirpath: str, session_str: str = "default") -> None:
            """Nothing to save: the Optuna study in SQL storage is the resumable state."""

        def save(self, checkpoint_path: str) -> None:
            """See :meth:`save_to_dir`."""

        def on_trial_complete(
            self, trial_id: str, result: dict | None = None, error: bool = False
        ) -> None:
            if trial_id in self._completed_trials or trial_id not in self._ot_trials:
                return
            self._completed_trials.add(trial_id)
            seconds = (result or {}).get("time_total_s")
            if isinstance(seconds, int | float) and math.isfinite(seconds) and seconds > 0:
                self._nas_trial_s = _average(self._nas_trial_s, float(seconds))
            active = _active(self.nas_search_id)
            if active is None:
                return
            try:
                active.finish_trial(self._ot_trials[trial_id], result, error)
            except Exception:
                log.exception("recording trial %s failed", trial_id)

    return _Searcher(
        space=define,
        metric=list(run.config.objectives),
        mode=["max" if d == "maximize" else "min" for d in run.config.directions()],
        sampler=sampler,
        study_name=run.study.study_name,
        storage=store,
    )


def _mark_interrupted(study: Any, numbers: set[int] | None = None) -> None:
    """Trials left RUNNING (by a stop or a crash) become FAIL + interrupted."""
    import optuna

    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        if numbers is not None and t.number not in numbers:
            continue
        try:
            study._storage.set_trial_user_attr(t._trial_id, ATTR["interrupted"], True)
            study._storage.set_trial_user_attr(
                t._trial_id, ATTR["error"], "interrupted: the search stopped before it finished"
            )
            study.tell(t.number, state=optuna.trial.TrialState.FAIL, skip_if_finished=True)
        except Exception as exc:
            log.warning("could not mark trial %s interrupted: %s", t.number, exc)


def run_search(
    config: SearchConfig,
    *,
    search_id: str | None = None,
    on_trial: Callable[[TrialRecord], None] | None = None,
    on_progress: Callable[[SearchProgress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    trial_fn: Callable[..., dict[str, Any]] | None = None,
) -> SearchResult:
    """Run (or resume) a search until ``config.budget`` trials are finished; see the module doc.

    A ``search_id`` that exists in the storage is resumed: its stored config defines the search
    and only ``budget``, ``concurrency``, per-trial resources and ``ray_address`` are taken from
    ``config``. An unknown ``search_id`` starts a new search under that id.
    ``trial_fn(space, arch, eval_settings) -> metrics`` replaces ``nas.evaluation.evaluate``.
    An architecture proposed again after it completed is not re-trained: its trial reuses the
    earlier result (``metrics["reused_from_trial"]``), since ``evaluate`` is deterministic for
    a seed; a custom ``trial_fn`` opts in with a ``deterministic = True`` attribute.
    After the budget, the best trials are re-trained with ``confirm_seeds`` more seeds and the
    front is reported on the seed means (:mod:`nas.search.confirm`); a resume of a search
    whose budget is done runs only the confirmation runs still missing.
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage_url = config.storage or workspace.optuna_storage_url()
    store = get_storage(storage_url)
    tracker = _tracker(config.mlflow_uri)
    study_name = find_study_name(search_id, store) if search_id else None
    if study_name is not None:
        study = optuna.load_study(study_name=study_name, storage=store)
        stored = SearchConfig.model_validate(study.user_attrs[ATTR["config"]])
        config = stored.model_copy(
            update={k: getattr(config, k) for k in RESUME_OVERRIDES} | {"storage": config.storage}
        )
        space_doc = study.user_attrs.get(ATTR["space"])
        space = load_space(space_doc if space_doc is not None else config.space)
        _mark_interrupted(study)
        study.set_user_attr(ATTR["config"], config.model_dump(mode="json"))
    else:
        search_id = search_id or new_search_id()
        space = load_space(config.space)
        if trial_fn is None:
            preflight(space, config)
        study_name = study_name_for(search_id, config.name)
        study = optuna.create_study(
            storage=store, study_name=study_name, directions=config.directions()
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # experimental since Optuna 3.2, stable enough
            study.set_metric_names(list(config.objectives))
        study.set_user_attr(ATTR["id"], search_id)
        study.set_user_attr(ATTR["config"], config.model_dump(mode="json"))
        study.set_user_attr(ATTR["space"], jsonable(space.to_dict()))
        study.set_user_attr(ATTR["created"], now_iso())
        study.set_user_attr(ATTR["versions"], versions())
    study.set_user_attr(ATTR["state"], "running")
    # This process now owns the study: serve its trials from memory, write them through.
    from nas.search.mirror import MirroredStorage

    store = MirroredStorage(store, study._study_id)
    study = optuna.load_study(study_name=study_name, storage=store)

    runs = study.user_attrs.get(ATTR["runs"]) or {}
    records = [trial_record(t, config.objectives, runs) for t in study.get_trials(deepcopy=False)]
    done = sum(r.finished for r in records)
    remaining = config.budget - done

    parent = tracker.start_parent(
        search_id=search_id,
        study_name=study_name,
        config=config.model_dump(mode="json"),
        space=jsonable(space.to_dict()),
        versions=study.user_attrs.get(ATTR["versions"], versions()),
        storage=storage_url,
        run_id=study.user_attrs.get(ATTR["mlflow"]),
    )
    study.set_user_attr(ATTR["mlflow"], parent)
    run = _Run(
        search_id=search_id,
        study=study,
        config=config,
        tracker=tracker,
        records=records,
        on_trial=on_trial,
        on_progress=on_progress,
    )

    run.should_stop = should_stop
    stop_flag = run.stop_flag
    state, error = "completed", None
    restore_sigint = _install_sigint(stop_flag)
    _ACTIVE[search_id] = run
    try:
        if remaining > 0 and not run.stop():
            _fit(run, config, space, store, remaining, trial_fn)
        if stop_flag.is_set() and run.counts()[0] < config.budget:
            state = "cancelled"
        elif run.counts()[0] >= config.budget and not confirm_search(run, space, trial_fn):
            state = "cancelled"  # stopped while confirming: a resume runs what is missing
    except KeyboardInterrupt:
        state = "cancelled"
    except NasError:
        state, error = "failed", None
        study.set_user_attr(ATTR["state"], "failed")
        _mark_interrupted(study)
        _finish_tracking(run, "failed")
        raise
    except Exception as exc:
        log.exception("search %s failed", search_id)
        state, error = "failed", f"{type(exc).__name__}: {exc}"
    finally:
        restore_sigint()
        _ACTIVE.pop(search_id, None)
    _mark_interrupted(study)
    tracker.drain()  # every child run logged and its id stored before reading back
    study.set_user_attr(ATTR["state"], state)
    if error:
        study.set_user_attr(ATTR["error"], error[:2000])
    result = load_search(search_id, storage_url)
    _finish_tracking(run, state, result)
    return result


def _tracker(uri: str | None) -> Any:
    from nas.tracking import SearchTracker

    try:
        return SearchTracker(uri)
    except Exception as exc:
        where = uri or workspace.mlflow_tracking_uri()
        raise NasError(f"cannot use the MLflow tracking store {where!r}: {exc}") from exc


def _finish_tracking(run: _Run, state: str, result: SearchResult | None = None) -> None:
    try:
        trials = result.trials if result else list(run.records.values())
        pareto = result.pareto if result else compute_pareto(trials, run.config.objectives)
        run.tracker.finish(
            trials=trials, pareto=pareto, objectives=run.config.objectives, state=state
        )
    except Exception as exc:
        log.warning("MLflow logging of the search summary failed: %s", exc)


def _install_sigint(flag: threading.Event) -> Callable[[], None]:
    """First Ctrl-C: stop cleanly (flag); second: KeyboardInterrupt. Main thread only."""
    os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = signal.getsignal(signal.SIGINT)

    def handler(signum: int, frame: Any) -> None:
        if flag.is_set():
            raise KeyboardInterrupt
        flag.set()

    signal.signal(signal.SIGINT, handler)
    return lambda: signal.signal(signal.SIGINT, previous)


def _fit(
    run: _Run,
    config: SearchConfig,
    space: Any,
    store: Any,
    remaining: int,
    trial_fn: Callable[..., dict[str, Any]] | None,
) -> None:
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # with verbose=0: no console tables
    # Optuna and MLflow keep every result; Tune's per-trial CSV/JSON/TensorBoard files would
    # only cost time on the driver's event loop.
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    logging.getLogger("ray.tune.analysis.experiment_analysis").setLevel(logging.ERROR)
    ensure_ray(config.ray_address)
    from ray import tune

    from nas.search.trainable import nas_trainable
    from nas.space import suggest

    device, gpus_per_trial, concurrency = _resources(config)
    settings = eval_settings(config, device)
    seed = config.seed + len(run.records)  # a resumed search must not replay its first picks
    sampler = make_sampler(config.sampler, seed=seed, budget=config.budget)

    search_id = run.search_id
    # evaluate() is deterministic per seed; a custom trial_fn only when it says so.
    reuse = trial_fn is None or bool(getattr(trial_fn, "deterministic", False))

    def define(trial: Any) -> dict[str, Any]:
        arch = suggest(trial, space)
        trial.set_user_attr(ATTR["arch"], jsonable(arch.to_dict()))
        trial.set_user_attr(ATTR["arch_id"], arch.id)
        config = {"nas_arch": arch, "nas_number": trial.number}
        active = _active(search_id)
        twin = active.completed_twin(arch.id) if reuse and active is not None else None
        if twin is not None:  # the sampler proposed an architecture trained already
            trial.set_user_attr(ATTR["reused"], twin.number)
            config["nas_reuse"] = {"from": twin.number, "metrics": twin.metrics}
        return config

    searcher = _make_searcher(run, define, sampler, store, remaining)
    home = workspace.home()
    payload = {
        "space": space,
        "settings": settings,
        "objectives": list(config.objectives),
        "trial_fn": trial_fn,
        "nas_home": str(home),
        "threads": config.cpus_per_trial,
        "weights_dir": None
        if trial_fn is not None
        else str(home / "searches" / run.search_id / "trials"),
    }
    resources = {"cpu": config.cpus_per_trial, "gpu": gpus_per_trial}
    trainable = tune.with_parameters(nas_trainable, payload=payload)
    trainable = tune.with_resources(trainable, resources)

    class _Stop(tune.Stopper):
        nas_search_id = run.search_id

        def __call__(self, trial_id: str, result: dict) -> bool:
            return False

        def stop_all(self) -> bool:
            active = _active(self.nas_search_id)
            return active is None or active.stop()

    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    tuner = tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(
            search_alg=searcher,
            num_samples=remaining,
            max_concurrent_trials=min(concurrency, remaining),
            reuse_actors=True,
            trial_name_creator=lambda t: f"trial_{t.trial_id}",
            trial_dirname_creator=lambda t: f"trial_{t.trial_id}",
        ),
        run_config=tune.RunConfig(
            name=f"{run.search_id}-{stamp}",
            storage_path=str(workspace.ray_results_dir()),
            verbose=0,
            stop=_Stop(),
            failure_config=tune.FailureConfig(max_failures=0),
            log_to_file=False,
        ),
    )
    try:
        tuner.fit()
    finally:
        searcher.join_ahead()
