"""``run_search``: a search from its study to its result, in the order its parts run.

Driver side: the Optuna study (SQL storage, :mod:`nas.search.study`), the run's bookkeeping
(:mod:`nas.search.run`) and MLflow (:mod:`nas.search.handoff`) live in the calling process;
Ray Tune (:mod:`nas.search.tuner`, :mod:`nas.search.searcher`) proposes trials from the
study's sampler and Ray workers only evaluate candidates (:mod:`nas.search.trainable`). Each
finished trial is told to Optuna with every objective or as FAIL, never left RUNNING. A
stopped search (``should_stop``, Ctrl-C) ends its running trials, marks them *interrupted*
(FAIL, not counted in the budget) and stays resumable. After the budget,
:mod:`nas.search.confirm_runner` re-trains the best trials with more seeds.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from nas import workspace
from nas.errors import NasError
from nas.search.attrs import ATTR
from nas.search.config import SearchConfig
from nas.search.confirm_runner import confirm_search
from nas.search.handoff import finish_tracking, make_tracker, start_parent
from nas.search.records import SearchProgress, SearchResult, TrialRecord
from nas.search.resources import ensure_ray, eval_settings
from nas.search.run import SearchRun, install_sigint
from nas.search.store import get_storage, load_search, trial_record
from nas.search.study import RESUME_OVERRIDES, mark_interrupted, open_study, own_study

__all__ = ["RESUME_OVERRIDES", "ensure_ray", "eval_settings", "run_search"]

log = logging.getLogger(__name__)


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
    storage = get_storage(storage_url)
    tracker = make_tracker(config.mlflow_uri)
    opened = open_study(config, search_id, storage, check=trial_fn is None)
    search_id, config, space = opened.search_id, opened.config, opened.space
    study, storage = own_study(opened.study, storage)

    runs = study.user_attrs.get(ATTR["runs"]) or {}
    records = [trial_record(t, config.objectives, runs) for t in study.get_trials(deepcopy=False)]
    remaining = config.budget - sum(r.finished for r in records)
    start_parent(
        tracker, study, search_id=search_id, config=config, space=space, storage_url=storage_url
    )
    run = SearchRun(
        search_id=search_id,
        study=study,
        config=config,
        tracker=tracker,
        records=records,
        on_trial=on_trial,
        on_progress=on_progress,
        should_stop=should_stop,
    )

    state, error = "completed", None
    restore_sigint = install_sigint(run.stop_flag)
    try:
        if remaining > 0 and not run.stop():
            from nas.search.tuner import fit  # imports Ray Tune

            fit(run, space, storage, remaining, trial_fn)
        if run.stop_flag.is_set() and run.counts()[0] < config.budget:
            state = "cancelled"
        elif run.counts()[0] >= config.budget and not confirm_search(run, space, trial_fn):
            state = "cancelled"  # stopped while confirming: a resume runs what is missing
    except KeyboardInterrupt:
        state = "cancelled"
    except NasError:
        study.set_user_attr(ATTR["state"], "failed")
        mark_interrupted(study, storage)
        finish_tracking(run, "failed")
        raise
    except Exception as exc:
        log.exception("search %s failed", search_id)
        state, error = "failed", f"{type(exc).__name__}: {exc}"
    finally:
        restore_sigint()
    mark_interrupted(study, storage)
    tracker.drain()  # every child run logged and its id stored before reading back
    study.set_user_attr(ATTR["state"], state)
    if error:
        study.set_user_attr(ATTR["error"], error[:2000])
    result = load_search(search_id, storage_url)
    finish_tracking(run, state, result)
    return result
