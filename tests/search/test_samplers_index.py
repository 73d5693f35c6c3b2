"""The tried-trials index against the plain scan; the default sampler's bounded history."""

from __future__ import annotations

import random
from typing import Any

import optuna
import pytest

from nas.search.distinct import best_and_recent
from nas.search.samplers import make_sampler
from nas.search.tried import TriedIndex, repeats_any


def _define_by_run(rng: random.Random, *, partial: bool = False) -> dict[str, Any]:
    """Parameters of a random walk through a conditional space (stages, blocks, their
    hyperparameters), stopped early when ``partial`` (a trial still running)."""
    params: dict[str, Any] = {"depth": rng.choice([1, 2, 3])}
    for stage in range(params["depth"]):
        block = rng.choice(["none", "se", "eca", "cbam"])
        params[f"s{stage}.block"] = block
        if block == "se":
            params[f"s{stage}.se.r"] = rng.choice([4, 8, 16])
        elif block == "cbam":
            params[f"s{stage}.cbam.r"] = rng.choice([8, 16])
            params[f"s{stage}.cbam.k"] = rng.choice([3, 7])
    if partial:
        keep = rng.randint(0, len(params))
        params = dict(list(params.items())[:keep])
    return params


@pytest.mark.parametrize("seed", range(6))
def test_index_decides_as_the_scan_on_random_define_by_run_histories(seed: int) -> None:
    rng = random.Random(seed)
    index, tried = TriedIndex(), []
    decisions = []
    for _ in range(300):
        candidate = _define_by_run(rng)
        if rng.random() < 0.5:  # a candidate known only in part, or with extra values
            candidate = _define_by_run(rng, partial=True) | {"depth": candidate["depth"]}
        decisions.append(repeats_any(candidate, tried))
        assert index.repeats(candidate) == decisions[-1], candidate
        trial = _define_by_run(rng, partial=rng.random() < 0.1)
        index.add(trial)
        tried.append(trial)
    assert any(decisions) and not all(decisions)  # both answers were exercised


def test_an_empty_trial_repeats_nothing_and_values_compare_by_equality() -> None:
    index = TriedIndex()
    index.add({})
    assert not index.repeats({"a": 1})
    index.add({"a": 1, "b": "x"})
    assert index.repeats({"a": 1.0, "b": "x", "c": 3})
    assert not index.repeats({"a": 1})
    assert len(index) == 2


def test_completions_counts_the_trials_agreeing_with_a_prefix() -> None:
    index = TriedIndex()
    for r in (4, 8):
        index.add({"block": "se", "depth": 2, "se.r": r})
    index.add({"block": "none", "depth": 2})
    assert index.completions({"block": "se", "depth": 2}) == (2, {frozenset({"se.r"})})
    assert index.completions({"block": "eca", "depth": 2}) == (0, set())
    assert index.completions({"depth": 2}, limit=2) is None


def _trial(values: list[float], number: int) -> optuna.trial.FrozenTrial:
    trial = optuna.trial.create_trial(values=values, params={}, distributions={})
    trial.number = number
    return trial


def test_best_and_recent_keeps_the_front_and_the_latest() -> None:
    directions = [optuna.study.StudyDirection.MAXIMIZE, optuna.study.StudyDirection.MINIMIZE]
    trials = [_trial([0.1 * i, 1.0], i) for i in range(10)]  # trial 9 dominates the rest
    trials += [_trial([0.0, 5.0], 10 + i) for i in range(10)]  # the latest, all dominated
    kept = best_and_recent(trials, directions, 6)
    assert [t.number for t in kept] == [7, 8, 9, 17, 18, 19]
    assert best_and_recent(trials[:5], directions, 6) == trials[:5]


def _mobile_like(trial: optuna.Trial) -> list[float]:
    total, cost = 0.0, 0.0
    for stage in range(4):
        block = trial.suggest_categorical(f"s{stage}.block", ["none", "se", "cbam"])
        if block == "se":
            total += trial.suggest_categorical(f"s{stage}.se.r", [4, 8, 16]) / 16
            cost += 1
        elif block == "cbam":
            total += trial.suggest_categorical(f"s{stage}.cbam.k", [3, 7]) / 7
            cost += 2
    return [total, cost]


def test_default_sampler_stays_distinct_past_its_history_bound(monkeypatch) -> None:
    """With a history of 10 the wrapped TPE sees at most 20 trials; no trial repeats."""
    import nas.search.samplers as samplers

    monkeypatch.setattr(samplers, "TPE_HISTORY", 10)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = make_sampler("tpe", seed=0, budget=60)
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
    seen_sizes = []
    real = sampler._sampler.sample_relative

    def spy(view: Any, trial: Any, space: Any) -> Any:
        seen_sizes.append(len(view.get_trials(deepcopy=False)))
        return real(view, trial, space)

    monkeypatch.setattr(sampler._sampler, "sample_relative", spy)
    study.optimize(_mobile_like, n_trials=60)
    assert max(seen_sizes) <= 20 and len(seen_sizes) > 40
    configs = [tuple(sorted(t.params.items())) for t in study.trials]
    assert len(set(configs)) == len(configs)
