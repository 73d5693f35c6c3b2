"""A sampler wrapper that does not repeat a tried configuration, at a cost flat in the trials.

:class:`DistinctSampler` wraps an Optuna sampler (multivariate TPE for the ``tpe`` sampler):

- *Distinct*: a proposal that repeats a finished or running trial (the rule of
  :mod:`nas.search.tried`) is drawn again, up to ``max_draws`` times, then replaced by uniform
  random values; after as many of those a repeat is accepted (the space may be exhausted).
  Finished trials live in a :class:`~nas.search.tried.TriedIndex`, updated from the trials
  added since the last proposal, so a check does not scan the search.
- *Grouped, lazily*: the parameters are grouped as Optuna's grouped multivariate TPE groups
  them (parameters that always occur together, from the finished trials); a group is sampled
  jointly by the wrapped sampler's ``sample_relative`` when the trial asks its first parameter.
  Grouped TPE samples every group of the space for every trial, most of them for blocks the
  trial never picks; sampled lazily, a trial pays only for the groups it uses.
- *Bounded history*: with ``history=K`` the wrapped sampler sees at most ``2K`` finished
  trials, an in-memory study of the best ``K/2`` (feasible first, then by non-dominated
  layer) and the most recent, renewed each time it reaches ``2K``: TPE's below set (at most
  25 trials for several objectives) comes from the best, and its cost stops growing.

Only public Optuna API: the wrapped sampler's ``sample_relative``/``sample_independent`` are
called with the search space of one group, and the bounded history is a plain
:func:`optuna.create_study` fed with :meth:`optuna.Study.add_trial`.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution
from optuna.trial import FrozenTrial, TrialState

from nas.search.tried import TriedIndex, repeats_any

__all__ = ["DistinctSampler", "best_and_recent"]

_MODELLED = (TrialState.COMPLETE, TrialState.PRUNED)


def _choices(distribution: BaseDistribution | None) -> float:
    """How many values ``distribution`` holds (infinite for a continuous one or None)."""
    if isinstance(distribution, optuna.distributions.CategoricalDistribution):
        return len(distribution.choices)
    if isinstance(distribution, optuna.distributions.IntDistribution) and not distribution.log:
        return (distribution.high - distribution.low) // distribution.step + 1
    return float("inf")


def _losses(trial: FrozenTrial, signs: np.ndarray) -> np.ndarray:
    return np.asarray(trial.values, dtype=float) * signs


def best_and_recent(
    trials: Sequence[FrozenTrial], directions: Sequence[optuna.study.StudyDirection], size: int
) -> list[FrozenTrial]:
    """At most ``size`` of ``trials`` (in their order): the best half, the most recent rest.

    Best: feasible complete trials by non-dominated layer, then infeasible ones by their total
    violation, then the others (pruned); within the last layer taken, the earlier trials.
    """
    if len(trials) <= size:
        return list(trials)
    signs = np.array(
        [1.0 if d == optuna.study.StudyDirection.MINIMIZE else -1.0 for d in directions]
    )
    feasible: list[int] = []
    infeasible: list[int] = []
    for i, t in enumerate(trials):
        if t.state != TrialState.COMPLETE or t.values is None:
            continue  # pruned: kept only as recent
        violation = sum(max(0.0, v) for v in t.constraints.values())
        (infeasible if violation > 0 else feasible).append(i)
    order = _layers([_losses(trials[i], signs) for i in feasible], feasible, size // 2)
    order += sorted(
        infeasible, key=lambda i: sum(max(0.0, v) for v in trials[i].constraints.values())
    )
    chosen = set(order[: size // 2])
    for i in range(len(trials) - 1, -1, -1):
        if len(chosen) >= size:
            break
        chosen.add(i)
    return [trials[i] for i in sorted(chosen)]


def _layers(losses: list[np.ndarray], index: list[int], wanted: int) -> list[int]:
    """``index`` in non-dominated layers (smaller losses better) until ``wanted`` are out."""
    if not losses:
        return []
    points = np.vstack(losses)
    left = np.arange(len(points))
    out: list[int] = []
    while left.size and len(out) < wanted:
        p = points[left]
        no_worse = (p[:, None, :] <= p[None, :, :]).all(axis=2)
        better = (p[:, None, :] < p[None, :, :]).any(axis=2)
        dominated = (no_worse & better).any(axis=0)
        out += [index[i] for i in left[~dominated]]
        left = left[dominated]
    return out


class DistinctSampler(optuna.samplers.BaseSampler):
    """``sampler`` made distinct, lazily grouped and of bounded history; see the module doc.

    ``history=None`` shows the wrapped sampler every trial; ``grouped=False`` samples each
    parameter on its own (``sample_independent``), for samplers without relative sampling.
    """

    def __init__(
        self,
        sampler: optuna.samplers.BaseSampler,
        *,
        seed: int,
        max_draws: int = 16,
        history: int | None = None,
        grouped: bool = True,
    ) -> None:
        self._sampler = sampler
        self._random = optuna.samplers.RandomSampler(seed=seed)
        self._max_draws = max_draws
        self._history = history
        self._grouped = grouped
        self.redraws = 0
        """Proposals rejected as repeats (for benchmarks and tests)."""
        self._lock = threading.RLock()
        self._reset(None)

    def _reset(self, study_name: str | None) -> None:
        """Forget what was learnt of a study (another study, or a copy made by pickling)."""
        self._study_name = study_name
        self._index = TriedIndex()
        self._seen: set[int] = set()  # numbers of the finished trials in the index
        self._floor = 0  # every trial below this number is finished and seen
        self._synced = -1  # the trial of the last sync
        self._running: list[dict[str, Any]] = []  # params of the other unfinished trials
        self._drawn: dict[int, dict[str, tuple[Any, BaseDistribution]]] = {}
        self._groups: dict[str, frozenset[str]] = {}  # name -> its group
        self._name_sets: set[frozenset[str]] = set()
        self._dists: dict[str, BaseDistribution] = {}
        self._shadow: optuna.Study | None = None
        self._shadow_storage: optuna.storages.BaseStorage | None = None
        self._shadow_trials: list[FrozenTrial] = []
        self._directions: list[optuna.study.StudyDirection] = []
        self._view_stale = False

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        for key in ("_lock", "_shadow", "_shadow_storage", "_index"):
            del state[key]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.RLock()
        self._reset(None)

    def __str__(self) -> str:
        return f"Distinct({self._sampler})"

    # -- what the search has tried ----------------------------------------------------------

    def _sync(self, study: optuna.Study, trial: FrozenTrial) -> None:
        """Take in the trials finished since the last trial's first call; note the others
        running. Once per trial: trials that finish while it is sampled still count as
        tried, being among the running ones."""
        if study.study_name != self._study_name:
            self._reset(study.study_name)
            self._directions = study.directions
        elif trial.number == self._synced:
            return  # proposals are made one at a time: nothing new finished or started since
        self._synced = trial.number
        trials = study.get_trials(deepcopy=False)
        running = []
        for t in trials[self._floor :]:
            if t.state.is_finished():
                if t.number not in self._seen:
                    self._learn(t)
            elif t.state == TrialState.RUNNING and t.number != trial.number:
                running.append(t.params)
        while self._floor < len(trials) and trials[self._floor].state.is_finished():
            self._floor += 1
        self._running = running
        for number in [n for n in self._drawn if n in self._seen]:
            del self._drawn[number]

    def _learn(self, trial: FrozenTrial) -> None:
        self._seen.add(trial.number)
        self._index.add(trial.params)
        if trial.state not in _MODELLED:
            return
        self._dists.update(trial.distributions)
        self._refine(frozenset(trial.distributions))
        if self._history is not None:
            self._shadow_trials.append(trial)
            if self._shadow is None or len(self._shadow_trials) >= 2 * self._history:
                self._renew_shadow(self._shadow_trials)
            else:
                self._shadow.add_trial(trial)
                self._view_stale = True

    def _renew_shadow(self, trials: list[FrozenTrial]) -> None:
        assert self._history is not None and self._study_name is not None
        directions = self._directions
        kept = best_and_recent(trials, directions, self._history)
        self._shadow_storage = optuna.storages.InMemoryStorage()
        self._shadow = optuna.create_study(storage=self._shadow_storage, directions=directions)
        self._shadow.add_trials(kept)
        self._shadow_trials = kept
        self._view_stale = True

    def _refine(self, names: frozenset[str]) -> None:
        """Split the groups by a new set of co-occurring names (Optuna's group decomposition)."""
        if names in self._name_sets:
            return
        self._name_sets.add(names)
        groups = set(self._groups.values())
        refined = [part for g in groups for part in (g & names, g - names) if part]
        rest = names.difference(*groups) if groups else names
        self._groups = {n: g for g in [*refined, frozenset(rest)] for n in g}

    def _repeats(self, candidate: dict[str, Any]) -> bool:
        return self._index.repeats(candidate) or repeats_any(candidate, self._running)

    def _exhausted(self, candidate: dict[str, Any]) -> bool:
        """Whether every way to complete ``candidate`` was tried (so it must end a repeat).

        The finished trials that agree with it all went on to the same parameters (the
        path of a define-by-run objective follows the values), and there are as many of
        them as those parameters have combinations.
        """
        found = self._index.completions(candidate)
        if found is None:
            return False
        count, extra = found
        for params in self._running:  # the other running trials count as tried too
            if any(n in params and params[n] != v for n, v in candidate.items()):
                continue
            if not self._index.repeats(params):
                count += 1
                extra.add(frozenset(params).difference(candidate))
        if len(extra) != 1:
            return False
        (beyond,) = extra
        if not beyond:
            return False
        size = 1.0
        for name in beyond:
            size *= _choices(self._dists.get(name))
        return count >= size

    def _rejected(self, candidate: dict[str, Any]) -> bool:
        return self._repeats(candidate) or self._exhausted(candidate)

    # -- sampling ---------------------------------------------------------------------------

    def infer_relative_search_space(
        self, study: optuna.Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        """Nothing up front: groups are sampled when a trial first asks one of theirs."""
        return {}

    def sample_relative(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        search_space: dict[str, BaseDistribution],
    ) -> dict[str, Any]:
        return {}

    def _view(self, study: optuna.Study) -> optuna.Study:
        """The study the wrapped sampler sees: the bounded history, or the study itself.

        A fresh :class:`optuna.Study` over the history's storage once trials were added:
        a study object caches its trials until its own ``ask`` or ``tell``.
        """
        if self._shadow is None:
            return study
        if self._view_stale:
            self._shadow = optuna.Study(self._shadow.study_name, self._shadow_storage)
            self._view_stale = False
        return self._shadow

    def _group_space(
        self, trial: FrozenTrial, name: str, distribution: BaseDistribution
    ) -> dict[str, BaseDistribution]:
        """The not yet asked, non-constant parameters of ``name``'s group, sorted by name."""
        if not self._grouped or distribution.single():
            return {}
        group = self._groups.get(name, frozenset((name,)))
        space = {n: self._dists[n] for n in group if n != name and n not in trial.params}
        space = {n: d for n, d in space.items() if not d.single()} | {name: distribution}
        return dict(sorted(space.items()))

    def _draw_group(
        self, view: optuna.Study, trial: FrozenTrial, space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        known = {k: v for k, (v, _) in self._drawn.get(trial.number, {}).items()} | trial.params
        values = self._sampler.sample_relative(view, trial, space)
        if not values:  # the wrapped sampler's start-up trials: one parameter at a time
            return {}
        for draw in range(1, 2 * self._max_draws):
            if not self._rejected(known | values):
                break
            self.redraws += 1
            if draw < self._max_draws:
                values = self._sampler.sample_relative(view, trial, space)
            else:
                values = {
                    n: self._random.sample_independent(view, trial, n, d) for n, d in space.items()
                }
        drawn = self._drawn.setdefault(trial.number, {})
        drawn.update({n: (values[n], space[n]) for n in space if n in values})
        return values

    def sample_independent(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        with self._lock:
            self._sync(study, trial)
            drawn = self._drawn.get(trial.number, {})
            if param_name in drawn and drawn[param_name][1] == param_distribution:
                return drawn[param_name][0]
            view = self._view(study)
            space = self._group_space(trial, param_name, param_distribution)
            if space and param_name in self._draw_group(view, trial, space):
                return self._drawn[trial.number][param_name][0]
            known = {k: v for k, (v, _) in drawn.items()} | trial.params
            value = self._sampler.sample_independent(view, trial, param_name, param_distribution)
            for draw in range(1, 2 * self._max_draws):
                if not self._rejected(known | {param_name: value}):
                    break
                self.redraws += 1
                sampler = self._sampler if draw < self._max_draws else self._random
                value = sampler.sample_independent(view, trial, param_name, param_distribution)
            return value

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self._sampler.before_trial(study, trial)

    def after_trial(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        state: TrialState,
        values: Sequence[float] | None,
    ) -> None:
        self._sampler.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        self._sampler.reseed_rng()
        self._random.reseed_rng()
