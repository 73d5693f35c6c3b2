"""The Ray Tune searcher of a search: asks the Optuna study for trials, tells it the outcomes.

:class:`StudySearcher` is a plain :class:`ray.tune.search.Searcher` over Optuna's public
ask-and-tell API: ``suggest`` asks the study for a trial and applies the define-by-run
function to it; ``on_trial_complete`` hands the Optuna trial and Tune's result to
:meth:`nas.search.run.SearchRun.finish_trial`, which tells Optuna every objective or FAIL.

Tune pickles its searcher and its stopper once (``tuner.pkl``, for ``Tuner.restore``, which
a search does not use: the SQL study is its resumable state) and calls the live objects
afterwards; a pickled copy leaves the driver-side references (run, study, define-by-run
function) behind and only answers "finished" / "stop".
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ray.tune import Stopper
from ray.tune.search import Searcher
from ray.tune.utils.util import unflatten_dict

if TYPE_CHECKING:
    import optuna

    from nas.search.run import SearchRun

__all__ = ["AHEAD_FRACTION", "RunStopper", "StudySearcher", "ahead_pays"]

log = logging.getLogger(__name__)

AHEAD_FRACTION = 0.03
"""Propose the next trial ahead while one proposal takes at least this share of a trial."""


def ahead_pays(propose_s: float, trial_s: float | None) -> bool:
    """Whether proposing ahead saves a noticeable share of a trial's time (always before the
    first trial has finished: its proposals are the sampler's random start-up ones)."""
    return trial_s is None or propose_s >= AHEAD_FRACTION * trial_s


def _average(mean: float | None, value: float, weight: float = 0.3) -> float:
    """Exponential moving average (``value`` alone when there is no mean yet)."""
    return value if not mean else (1 - weight) * mean + weight * value


Proposal = tuple["optuna.Trial", dict[str, Any]]


class StudySearcher(Searcher):
    """Trials asked from ``study`` (its sampler) and shaped by ``define``; see the module doc.

    When trials are short next to the sampler's work (a proposal takes at least
    ``AHEAD_FRACTION`` of a trial), it proposes one trial ahead: after handing out a proposal
    it asks Optuna for the next one in a background thread, while the running trials train,
    so that a freed slot gets its next trial at once instead of after the sampler's work
    (Tune calls ``suggest`` from its single control loop). A proposal made ahead lacks the
    results of the trials running at that moment, like one more concurrent trial, so longer
    trials are proposed when a slot frees, with every result known. ``total`` caps the
    proposals, so a finished search leaves none asked ahead.
    """

    def __init__(
        self,
        run: SearchRun,
        study: optuna.Study,
        define: Callable[[optuna.Trial], dict[str, Any]],
        *,
        total: int,
    ) -> None:
        directions = run.config.directions()
        super().__init__(
            metric=list(run.config.objectives),
            mode=["max" if d == "maximize" else "min" for d in directions],
        )
        self._run: SearchRun | None = run
        self._study: optuna.Study | None = study
        self._define: Callable[[optuna.Trial], dict[str, Any]] | None = define
        self._total = total
        self._asked: dict[str, optuna.Trial] = {}  # Tune trial id -> its Optuna trial
        self._given = 0
        self._ahead: threading.Thread | None = None
        self._next: Proposal | BaseException | None = None
        self._propose_s = 0.0  # moving averages: seconds per proposal, per trial
        self._trial_s: float | None = None

    def __getstate__(self) -> dict[str, Any]:
        """A copy without the driver-side objects (see the module doc)."""
        state = self.__dict__.copy()
        state.update(_run=None, _study=None, _define=None, _ahead=None, _next=None, _asked={})
        return state

    def _propose(self) -> Proposal:
        assert self._study is not None and self._define is not None
        started = time.perf_counter()
        ot_trial = self._study.ask()
        config = self._define(ot_trial)
        params = {**ot_trial.params, **config}
        self._propose_s = _average(self._propose_s, time.perf_counter() - started)
        return ot_trial, params

    def _propose_ahead(self) -> None:
        try:
            self._next = self._propose()
        except BaseException as exc:  # handed to the control loop by the next suggest
            self._next = exc

    def join_ahead(self) -> None:
        """Wait for a proposal in the making (it is left RUNNING, then interrupted)."""
        if self._ahead is not None:
            self._ahead.join()

    def suggest(self, trial_id: str) -> dict | None:
        """The next trial's config, or ``FINISHED`` once the search must stop."""
        if self._run is None or self._run.stop():
            return Searcher.FINISHED
        if self._ahead is not None:
            self._ahead.join()
            self._ahead, proposal, self._next = None, self._next, None
        else:
            proposal = self._propose()
        if isinstance(proposal, BaseException):
            raise proposal
        assert proposal is not None
        ot_trial, params = proposal
        self._asked[trial_id] = ot_trial
        self._given += 1
        if self._given < self._total and ahead_pays(self._propose_s, self._trial_s):
            self._ahead = threading.Thread(
                target=self._propose_ahead, name="nas-propose-ahead", daemon=True
            )
            self._ahead.start()
        return unflatten_dict(params)

    def on_trial_complete(
        self, trial_id: str, result: dict | None = None, error: bool = False
    ) -> None:
        """Tell the study this trial's outcome (once; a second call is ignored)."""
        ot_trial = self._asked.pop(trial_id, None)
        if ot_trial is None:
            return
        seconds = (result or {}).get("time_total_s")
        if isinstance(seconds, int | float) and math.isfinite(seconds) and seconds > 0:
            self._trial_s = _average(self._trial_s, float(seconds))
        if self._run is None:
            return
        try:
            self._run.finish_trial(ot_trial, result, error)
        except Exception:
            log.exception("recording trial %s failed", trial_id)

    def save_to_dir(self, dirpath: str, session_str: str = "default") -> None:
        """Nothing to save: the Optuna study in SQL storage is the resumable state."""

    def save(self, checkpoint_path: str) -> None:
        """See :meth:`save_to_dir`."""

    def restore(self, checkpoint_path: str) -> None:
        """See :meth:`save_to_dir`."""


class RunStopper(Stopper):
    """Ends the whole Tune run once the search must stop; a pickled copy stops at once."""

    def __init__(self, run: SearchRun) -> None:
        self._run: SearchRun | None = run

    def __getstate__(self) -> dict[str, Any]:
        """A copy without the run (see the module doc)."""
        return {"_run": None}

    def __call__(self, trial_id: str, result: dict) -> bool:
        return False

    def stop_all(self) -> bool:
        return self._run is None or self._run.stop()
