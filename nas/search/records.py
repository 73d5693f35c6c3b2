"""What a search reports: one record per trial, progress, and the result of a search."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from nas.search.config import SearchConfig

__all__ = ["SearchProgress", "SearchResult", "TrialRecord"]


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

    @property
    def finished(self) -> bool:
        """Counts towards the budget: complete, or failed by itself (not interrupted)."""
        return self.state == "COMPLETE" or (self.state == "FAIL" and not self.interrupted)


class SearchProgress(BaseModel):
    """Progress of a running search (trials finished in total, including earlier runs)."""

    done: int
    failed: int
    budget: int
    front_size: int
    elapsed_s: float
    eta_s: float | None = None


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
        """The trial with this number; raises :class:`nas.errors.NotFoundError`."""
        from nas.search.store import TrialNotFound

        for t in self.trials:
            if t.number == number:
                return t
        raise TrialNotFound(
            f"search {self.search_id} has no trial {number} "
            f"(trials are numbered 0 to {len(self.trials) - 1})"
        )
