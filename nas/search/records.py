"""What a search reports: one record per trial, progress, and the result of a search."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator

from nas.errors import NotFoundError
from nas.search.config import SearchConfig

__all__ = ["SearchNotFound", "SearchProgress", "SearchResult", "TrialNotFound", "TrialRecord"]


class SearchNotFound(NotFoundError):
    """No search with this id in the Optuna storage."""


class TrialNotFound(NotFoundError):
    """The search has no trial with this number."""


class TrialRecord(BaseModel):
    """One Optuna trial of a search, with what its evaluation returned."""

    number: int
    state: Literal["COMPLETE", "FAIL", "RUNNING", "PRUNED", "WAITING"]
    params: dict[str, Any] = Field(default_factory=dict)
    arch: dict[str, Any] | None = None
    arch_id: str | None = None
    values: dict[str, float] = Field(default_factory=dict)
    metrics: dict[str, Any] = Field(default_factory=dict)
    feasible: bool = True
    mlflow_run_id: str | None = None
    error: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    interrupted: bool = Field(
        default=False,
        description="Stopped by a cancelled or crashed search; not counted in the budget.",
    )
    confirm_candidate: bool = Field(
        default=False,
        description="Chosen for confirmation: on the front or the next layer, within the cap.",
    )
    confirmed: bool = Field(
        default=False, description="Re-trained with every confirmation seed, none failing."
    )
    accuracy_mean: float | None = Field(
        default=None, description="Validation accuracy, mean over the n_seeds training seeds."
    )
    accuracy_sd: float | None = Field(
        default=None, description="Sample standard deviation of it (None below two seeds)."
    )
    n_seeds: int = Field(default=0, description="Training seeds the accuracy summary covers.")
    test_accuracy: float | None = Field(
        default=None, description="Held-out test accuracy, mean over the same seeds."
    )
    confirm_error: str | None = Field(
        default=None,
        description="Why a confirmation run failed (the single-seed result is kept).",
    )
    epochs_trained: int | None = Field(
        default=None,
        description="Epochs this trial trained (0: it reused an earlier trial's result).",
    )
    stopped_at_epoch: int | None = Field(
        default=None, description="The rung at which mo-asha stopped this trial (PRUNED)."
    )

    @model_validator(mode="after")
    def _epochs(self) -> TrialRecord:
        """Epochs trained and the stopping rung, read from the trial's metrics."""
        if self.epochs_trained is None and "reused_from_trial" in self.metrics:
            self.epochs_trained = 0
        elif self.epochs_trained is None and _number(self.metrics.get("epochs")):
            self.epochs_trained = int(self.metrics["epochs"])
        if self.stopped_at_epoch is None and _number(self.metrics.get("stopped_at_epoch")):
            self.stopped_at_epoch = int(self.metrics["stopped_at_epoch"])
        return self

    @model_validator(mode="after")
    def _single_seed_summary(self) -> TrialRecord:
        """A complete trial without a seed summary is summarised by its own (one) seed."""
        if self.state == "COMPLETE" and self.n_seeds == 0:
            accuracy = self.values.get("accuracy", self.metrics.get("accuracy"))
            test = self.metrics.get("test_accuracy")
            self.n_seeds = 1
            self.accuracy_mean = float(accuracy) if _number(accuracy) else None
            self.test_accuracy = float(test) if _number(test) else None
        return self

    @property
    def finished(self) -> bool:
        """Counts towards the budget: complete, stopped early (PRUNED), or failed by itself
        (not interrupted)."""
        if self.state in ("COMPLETE", "PRUNED"):
            return True
        return self.state == "FAIL" and not self.interrupted


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value == value


class SearchProgress(BaseModel):
    """Progress of a running search (trials finished in total, including earlier runs).

    ``phase`` is ``"trials"`` until the budget is done, then ``"confirming"`` while the
    confirmation runs (``confirm_done`` of ``confirm_total``) re-train the best trials.
    """

    done: int
    failed: int
    budget: int
    front_size: int
    stopped: int = Field(default=0, description="Trials stopped early by the scheduler.")
    epochs: int = Field(default=0, description="Training epochs spent by finished trials.")
    elapsed_s: float
    eta_s: float | None = None
    phase: Literal["trials", "confirming"] = "trials"
    confirm_done: int = 0
    confirm_total: int = 0


class SearchResult(BaseModel):
    """A search read back from storage, or returned by :func:`nas.search.run_search`."""

    search_id: str
    study_name: str
    state: Literal["completed", "cancelled", "failed", "running"]
    config: SearchConfig
    trials: list[TrialRecord] = Field(default_factory=list)
    pareto: list[TrialRecord] = Field(default_factory=list)
    mlflow_run_id: str | None = None
    created_at: datetime | None = None
    error: str | None = None

    def trial(self, number: int) -> TrialRecord:
        """The trial with this number; raises :class:`TrialNotFound`."""
        for t in self.trials:
            if t.number == number:
                return t
        raise TrialNotFound(
            f"search {self.search_id} has no trial {number} "
            f"(trials are numbered 0 to {len(self.trials) - 1})"
        )
