"""The Ray Tune side of a search: one ``Tuner`` run of the trials still to do.

The trials run :func:`nas.search.trainable.nas_trainable` on Ray workers, proposed by a
:class:`nas.search.searcher.StudySearcher` over the study's sampler, with ``reuse_actors`` and
the per-trial resources of the config; :class:`~nas.search.searcher.RunStopper` ends the run
on a stop request. Imports Ray Tune: :mod:`nas.search.engine` imports this module lazily.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from ray import tune

from nas import workspace
from nas.search.attrs import ATTR
from nas.search.mo_asha import make_scheduler
from nas.search.resources import ensure_ray, eval_settings, resolve_resources
from nas.search.run import SearchRun
from nas.search.samplers import make_sampler
from nas.search.searcher import RunStopper, StudySearcher
from nas.search.store import jsonable
from nas.search.trainable import nas_trainable

__all__ = ["define_trial", "fit"]


def define_trial(trial: Any, space: Any, run: SearchRun | None, reuse: bool) -> dict[str, Any]:
    """The define-by-run function: an architecture from ``space`` and the trainable's config.

    An architecture that already completed in this search (``reuse``) carries that trial's
    result (``nas_reuse``) instead of being trained again.
    """
    from nas.space import suggest

    arch = suggest(trial, space)
    if run is not None:
        run.remember(trial)
    trial.set_user_attr(ATTR["arch"], jsonable(arch.to_dict()))
    trial.set_user_attr(ATTR["arch_id"], arch.id)
    config = {"nas_arch": arch, "nas_number": trial.number}
    twin = run.completed_twin(arch.id) if reuse and run is not None else None
    if twin is not None:  # the sampler proposed an architecture trained already
        trial.set_user_attr(ATTR["reused"], twin.number)
        config["nas_reuse"] = {"from": twin.number, "metrics": twin.metrics}
    return config


def fit(
    run: SearchRun,
    space: Any,
    storage: Any,
    remaining: int,
    trial_fn: Callable[..., dict[str, Any]] | None,
) -> None:
    """Run up to ``remaining`` trials of ``run`` (its study on ``storage``) through Ray Tune."""
    import optuna

    config = run.config
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # with verbose=0: no console tables
    # Optuna and MLflow keep every result; Tune's per-trial CSV/JSON/TensorBoard files would
    # only cost time on the driver's event loop.
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    logging.getLogger("ray.tune.analysis.experiment_analysis").setLevel(logging.ERROR)
    ensure_ray(config.ray_address)
    device, gpus_per_trial, concurrency = resolve_resources(config)
    settings = eval_settings(config, device)
    seed = config.seed + len(run.records)  # a resumed search must not replay its first picks
    sampler = make_sampler(config.sampler, seed=seed, budget=config.budget)
    study = optuna.load_study(study_name=run.study.study_name, storage=storage, sampler=sampler)
    # evaluate() is deterministic per seed; a custom trial_fn only when it says so.
    reuse = trial_fn is None or bool(getattr(trial_fn, "deterministic", False))

    def define(trial: Any) -> dict[str, Any]:
        return define_trial(trial, space, run, reuse)

    searcher = StudySearcher(run, study, define, total=remaining)
    home = workspace.home()
    payload = {
        "space": space,
        "settings": settings,
        "objectives": list(config.objectives),
        "trial_fn": trial_fn,
        "nas_home": str(home),
        "threads": config.cpus_per_trial,
        "per_epoch": config.scheduler != "none",
        "weights_dir": None
        if trial_fn is not None
        else str(home / "searches" / run.search_id / "trials"),
    }
    resources = {"cpu": config.cpus_per_trial, "gpu": gpus_per_trial}
    trainable = tune.with_parameters(nas_trainable, payload=payload)
    trainable = tune.with_resources(trainable, resources)

    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    tuner = tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(
            search_alg=searcher,
            scheduler=make_scheduler(run, study, settings.epochs),
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
            stop=RunStopper(run),
            failure_config=tune.FailureConfig(max_failures=0),
            log_to_file=False,
        ),
    )
    try:
        tuner.fit()
    finally:
        searcher.join_ahead()
