"""The samplers by name, driven through Optuna's ask/tell as the search's searcher drives them."""

from __future__ import annotations

import warnings
from typing import Any

import optuna
import pytest

from nas.search.samplers import distinct_sampler, make_sampler


def _define(trial: Any) -> tuple:
    """A small conditional define-by-run space (18 configurations), like a search space's."""
    depth = trial.suggest_categorical("depth", [1, 2, 3])
    block = trial.suggest_categorical("block", ["none", "se", "eca"])
    extra = None
    if block == "se":
        extra = trial.suggest_categorical("se.reduction", [4, 8])
    elif block == "eca":
        extra = trial.suggest_categorical("eca.k_size", [3, 5])
    return depth, block, extra


def _score(config: tuple) -> list[float]:
    depth, block, extra = config
    return [depth + (block != "none") + (extra or 0) / 8, float(depth)]


def _ask_tell(sampler: Any, n_trials: int, pending: int = 2) -> list[tuple]:
    """Configurations in ask order, with ``pending`` trials asked before the oldest is told."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
    queue: list[tuple[Any, tuple]] = []
    configs = []
    for _ in range(n_trials):
        trial = study.ask()
        config = _define(trial)
        configs.append(config)
        queue.append((trial, config))
        if len(queue) == pending:
            done, config = queue.pop(0)
            study.tell(done, _score(config))
    for done, config in queue:
        study.tell(done, _score(config))
    return configs


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_default_sampler_does_not_repeat_with_two_pending(seed: int) -> None:
    configs = _ask_tell(make_sampler("tpe", seed=seed, budget=15), 15)
    assert len(set(configs)) == len(configs)


def test_plain_tpe_repeats_on_a_small_space() -> None:
    """What the wrapper is for: grouped TPE alone proposes a configuration again."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        repeats = 0
        for seed in range(3):
            tpe = optuna.samplers.TPESampler(
                seed=seed, n_startup_trials=3, multivariate=True, group=True
            )
            configs = _ask_tell(tpe, 15)
            repeats += len(configs) - len(set(configs))
    assert repeats > 0


def test_exhausted_space_still_proposes() -> None:
    """Past the 18 configurations a repeat is accepted rather than failing the trial."""
    configs = _ask_tell(make_sampler("tpe", seed=0, budget=25), 25)
    assert len(configs) == 25
    assert len(set(configs)) > 12


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_wrapper_redraws_a_repeated_independent_parameter(seed: int) -> None:
    """Independent proposals (no relative sampling): only the untried value is left."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = distinct_sampler(optuna.samplers.RandomSampler(seed=seed), seed=seed)
    study = optuna.create_study(sampler=sampler)
    for x in (0, 1):
        study.enqueue_trial({"x": x})
        study.optimize(lambda t: t.suggest_categorical("x", [0, 1, 2]), n_trials=1)
    pending = study.ask()  # running, not yet told: must not be proposed again either
    first = pending.suggest_categorical("x", [0, 1, 2])
    assert first == 2
    redraws = sampler.redraws
    trial = study.ask()  # the space is exhausted: a repeat is accepted after the redraws
    assert trial.suggest_categorical("x", [0, 1, 2]) in (0, 1, 2)
    assert sampler.redraws > redraws


def test_constraints_reach_the_wrapped_sampler() -> None:
    """set_constraint (what --max-latency-ms uses) works through the wrapper."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        directions=["maximize", "minimize"], sampler=make_sampler("tpe", seed=0, budget=10)
    )
    for _ in range(12):
        trial = study.ask()
        config = _define(trial)
        trial.set_constraint("depth", config[0] - 2.5)
        study.tell(trial, _score(config))
    assert len(study.trials) == 12
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)
    feasible = [t for t in study.trials if t.params["depth"] <= 2]
    assert study.best_trials and all(t in feasible for t in study.best_trials)


@pytest.mark.parametrize("name", ["tpe", "nsga2", "random", "gp"])
def test_every_sampler_pickles_as_ray_tune_pickles_its_searcher(name: str) -> None:
    import pickle
    import subprocess
    import sys

    from ray import cloudpickle

    sampler = make_sampler(name, seed=0, budget=20)
    data = cloudpickle.dumps(sampler)
    copy = pickle.loads(data)
    study = optuna.create_study(directions=["minimize", "minimize"], sampler=copy)
    study.optimize(lambda t: _score(_define(t)), n_trials=3)
    script = "import pickle, sys; pickle.loads(sys.stdin.buffer.read())"  # a fresh process
    subprocess.run([sys.executable, "-c", script], input=data, check=True)
