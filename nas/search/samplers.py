"""Optuna samplers by name: a small registry that lists the valid names on a bad one.

``tpe`` (the default) is grouped multivariate TPE wrapped by :func:`distinct_sampler`, which
re-draws a proposal that would repeat an architecture already tried: a search space of a few
thousand architectures is small enough for TPE to propose the same one many times, and every
repeat costs a full training for no new information.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import optuna

__all__ = ["SAMPLER_FACTORIES", "distinct_sampler", "make_sampler"]

_MAX_DRAWS = 16
"""Proposals drawn from the wrapped sampler (then uniform ones) before a repeat is accepted."""


def _repeats(candidate: Mapping[str, Any], tried: Sequence[Mapping[str, Any]]) -> bool:
    """Whether ``candidate`` (values for a superset of the asked parameters) repeats a trial.

    A define-by-run objective asks parameters in an order fixed by the values already given,
    so a candidate that agrees with a trial on every parameter that trial asked follows the
    same path and yields the same configuration. A trial with a parameter the candidate lacks
    cannot be decided and does not count.
    """
    return any(
        params and all(name in candidate and candidate[name] == v for name, v in params.items())
        for params in tried
    )


def _distinct_sampler_class() -> type:
    import optuna
    from optuna.trial import TrialState

    class _Distinct(optuna.samplers.BaseSampler):
        """Wraps a sampler with relative sampling so that a trial does not repeat another.

        The wrapped sampler proposes all parameters it models at once (``sample_relative``);
        a proposal that equals a finished or running trial on all of its parameters is drawn
        again, up to ``max_draws`` times, then replaced by uniform random ones (exploration
        of the untried part of the space); after as many of those a repeat is accepted (the
        space may be exhausted). Parameters the wrapped sampler does not yet model (the
        start-up trials, a branch never seen) are sampled by it independently as usual.
        """

        def __init__(
            self, sampler: optuna.samplers.BaseSampler, *, seed: int, max_draws: int = _MAX_DRAWS
        ) -> None:
            self._sampler = sampler
            self._random = optuna.samplers.RandomSampler(seed=seed)
            self._max_draws = max_draws
            self._relative: dict[int, dict[str, Any]] = {}
            self.redraws = 0
            """Proposals rejected as repeats (for benchmarks and tests)."""

        def __str__(self) -> str:
            return f"Distinct({self._sampler})"

        @staticmethod
        def _tried(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> list[dict[str, Any]]:
            """Parameters of every other trial, finished or running."""
            states = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL, TrialState.RUNNING)
            return [
                t.params
                for t in study.get_trials(deepcopy=False, states=states)
                if t.number != trial.number
            ]

        def infer_relative_search_space(
            self, study: optuna.Study, trial: optuna.trial.FrozenTrial
        ) -> dict[str, optuna.distributions.BaseDistribution]:
            return self._sampler.infer_relative_search_space(study, trial)

        def sample_relative(
            self,
            study: optuna.Study,
            trial: optuna.trial.FrozenTrial,
            search_space: dict[str, optuna.distributions.BaseDistribution],
        ) -> dict[str, Any]:
            params = self._sampler.sample_relative(study, trial, search_space)
            if params:
                tried = self._tried(study, trial)
                for draw in range(1, 2 * self._max_draws):
                    if not _repeats(params, tried):
                        break
                    self.redraws += 1
                    if draw < self._max_draws:
                        params = self._sampler.sample_relative(study, trial, search_space)
                    else:
                        params = {
                            name: self._random.sample_independent(study, trial, name, dist)
                            for name, dist in search_space.items()
                            if name in params
                        }
            self._relative[trial.number] = params
            return params

        def sample_independent(
            self,
            study: optuna.Study,
            trial: optuna.trial.FrozenTrial,
            param_name: str,
            param_distribution: optuna.distributions.BaseDistribution,
        ) -> Any:
            # The trial's path so far, the relative values it will use further on, and this
            # value: a repeat when that already pins down a trial tried before.
            known = {**self._relative.get(trial.number, {}), **trial.params}
            tried = [p for p in self._tried(study, trial) if param_name in p]
            value = self._sampler.sample_independent(study, trial, param_name, param_distribution)
            for draw in range(1, 2 * self._max_draws):
                if not _repeats({**known, param_name: value}, tried):
                    break
                self.redraws += 1
                sampler = self._sampler if draw < self._max_draws else self._random
                value = sampler.sample_independent(study, trial, param_name, param_distribution)
            return value

        def before_trial(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
            self._sampler.before_trial(study, trial)

        def after_trial(
            self,
            study: optuna.Study,
            trial: optuna.trial.FrozenTrial,
            state: TrialState,
            values: Sequence[float] | None,
        ) -> None:
            self._relative.pop(trial.number, None)
            self._sampler.after_trial(study, trial, state, values)

        def reseed_rng(self) -> None:
            self._sampler.reseed_rng()
            self._random.reseed_rng()

    return _Distinct


def distinct_sampler(sampler: Any, *, seed: int, max_draws: int = _MAX_DRAWS) -> Any:
    """``sampler`` wrapped so that it does not propose a configuration already tried.

    A factory, so that importing this module does not import Optuna.
    """
    return _distinct_sampler_class()(sampler, seed=seed, max_draws=max_draws)


def _startup(budget: int) -> int:
    return min(10, max(2, budget // 5))


def _tpe(seed: int, budget: int) -> Any:
    import warnings

    import optuna

    # group=True: a define-by-run space is conditional (a block's hyperparameters exist only
    # when the block is chosen); grouped multivariate TPE models each sub-space jointly.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        tpe = optuna.samplers.TPESampler(
            seed=seed,
            n_startup_trials=_startup(budget),
            multivariate=True,
            group=True,
        )
    return distinct_sampler(tpe, seed=seed)


def _lock_types() -> tuple[type, ...]:
    import threading

    return type(threading.Lock()), type(threading.RLock())


def _picklable_nsga2_class() -> type:
    import threading

    import optuna

    class _NSGAII(optuna.samplers.NSGAIISampler):
        """NSGA-II that pickles, as Ray Tune pickles its searcher: Optuna 5.1's sampler holds
        a thread lock and defines no pickling, so a copy gets fresh locks instead."""

        def __getstate__(self) -> dict[str, Any]:
            state = self.__dict__.copy()
            locks = [key for key, value in state.items() if isinstance(value, _lock_types())]
            for key in locks:
                del state[key]
            return state | {"_nas_locks": locks}

        def __setstate__(self, state: dict[str, Any]) -> None:
            state = dict(state)
            locks = state.pop("_nas_locks", [])
            self.__dict__.update(state)
            for key in locks:
                setattr(self, key, threading.Lock())

    return _NSGAII


def _nsga2(seed: int, budget: int) -> Any:
    # The default population of 50 would make a whole 50-trial search random.
    return _picklable_nsga2_class()(seed=seed, population_size=min(50, max(4, budget // 5)))


def _random(seed: int, budget: int) -> Any:
    import optuna

    return optuna.samplers.RandomSampler(seed=seed)


def _gp(seed: int, budget: int) -> Any:
    import optuna

    # The space is conditional by design: hyperparameters of unchosen blocks are sampled
    # independently, which the GP sampler would otherwise warn about on every trial.
    return optuna.samplers.GPSampler(
        seed=seed,
        n_startup_trials=_startup(budget),
        warn_independent_sampling=False,
    )


#: Sampler name -> factory ``(seed, budget) -> sampler``; its keys are the allowed names.
SAMPLER_FACTORIES: dict[str, Callable[[int, int], Any]] = {
    "tpe": _tpe,
    "nsga2": _nsga2,
    "random": _random,
    "gp": _gp,
}


def make_sampler(name: str, *, seed: int, budget: int) -> Any:
    """A fresh Optuna sampler: ``tpe`` (default), ``nsga2``, ``random`` or ``gp``."""
    if name not in SAMPLER_FACTORIES:
        raise ValueError(f"unknown sampler {name!r}; choose from {', '.join(SAMPLER_FACTORIES)}")
    return SAMPLER_FACTORIES[name](seed, budget)
