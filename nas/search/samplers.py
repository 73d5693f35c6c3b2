"""Optuna samplers by name: a small registry that lists the valid names on a bad one.

``tpe`` (the default) is multivariate TPE wrapped by :func:`distinct_sampler`, which samples
the parameters in groups as grouped multivariate TPE does (only the groups a trial uses),
shows TPE a bounded history (:data:`TPE_HISTORY`), and re-draws a proposal that would repeat
an architecture already tried: a search space of a few thousand architectures is small enough
for TPE to propose the same one many times, and every repeat costs a full training for no new
information. Its cost per trial stays flat as a search grows (docs/overhead.md).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    pass

__all__ = ["SAMPLER_FACTORIES", "TPE_HISTORY", "distinct_sampler", "make_sampler"]

_MAX_DRAWS = 16
"""Proposals drawn from the wrapped sampler (then uniform ones) before a repeat is accepted."""

TPE_HISTORY = 100
"""The default sampler's TPE sees the best 50 and the most recent of at most 200 trials."""


def distinct_sampler(
    sampler: Any, *, seed: int, max_draws: int = _MAX_DRAWS, history: int | None = None
) -> Any:
    """``sampler`` wrapped so that it does not propose a configuration already tried
    (:class:`nas.search.distinct.DistinctSampler`; ``history`` bounds what it sees).

    A factory, so that importing this module does not import Optuna.
    """
    from nas.search.distinct import DistinctSampler

    return DistinctSampler(sampler, seed=seed, max_draws=max_draws, history=history)


def _startup(budget: int) -> int:
    return min(10, max(2, budget // 5))


def _tpe(seed: int, budget: int) -> Any:
    import warnings

    import optuna

    # A define-by-run space is conditional (a block's hyperparameters exist only when the
    # block is chosen): the wrapper groups the parameters as grouped multivariate TPE does and
    # has this multivariate TPE sample each group a trial uses, jointly.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        tpe = optuna.samplers.TPESampler(
            seed=seed,
            n_startup_trials=_startup(budget),
            multivariate=True,
            constant_liar=False,  # it writes each proposal to the study; the wrapper's view
        )
    return distinct_sampler(tpe, seed=seed, history=TPE_HISTORY)


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
