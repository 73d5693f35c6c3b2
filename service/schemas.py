"""Pydantic I/O schemas: one family per resource (``SearchCreate``, ``SearchPublic``,
``SearchesPublic`` ...), and the error body every 4xx uses."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from nas.search.config import SearchOptions

__all__ = [
    "BlockPublic",
    "BlocksPublic",
    "Confirmation",
    "ErrorResponse",
    "HParamPublic",
    "Health",
    "ParetoPoint",
    "ParetoPublic",
    "SearchCreate",
    "SearchLinks",
    "SearchProgress",
    "SearchPublic",
    "SearchTimings",
    "SearchesPublic",
    "SpacePublic",
    "SpaceSummary",
    "SpacesPublic",
    "Status",
    "TrialPublic",
    "TrialsPublic",
]

Status = Literal["queued", "running", "completed", "failed", "cancelled"]


def _utc(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


class ErrorResponse(BaseModel):
    """Body of every error response: ``detail`` says what went wrong and what to fix."""

    detail: str = Field(description="What went wrong and what to change.")
    errors: list[dict[str, Any]] | None = Field(
        default=None, description="For 422: one entry per invalid field (loc, msg, type)."
    )


class SearchCreate(SearchOptions):
    """A search request: :class:`nas.search.config.SearchOptions`, the options of
    ``nas search``, with the same types, bounds and rules.

    Storage, MLflow and Ray locations are the service's settings, not the request's. Beyond
    this schema the service refuses file paths as ``space`` and requests above its limits
    (``service.validation``).
    """

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "space": "tiny",
                    "budget": 4,
                    "objectives": ["accuracy", "latency_ms"],
                    "dataset": "synthetic",
                    "epochs": 1,
                    "name": "tiny-demo",
                }
            ]
        },
    )

    data_dir: str | None = Field(
        default=None,
        max_length=500,
        description="For cifar10/imagefolder: a folder relative to the service's NAS_DATA_ROOT.",
    )


class SearchLinks(BaseModel):
    """Where to read more about a search."""

    self: str
    trials: str
    pareto: str
    pareto_png: str
    cancel: str


class SearchProgress(BaseModel):
    """How far a search is."""

    done: int = Field(description="Finished trials (complete + failed).")
    failed: int = Field(description="Failed trials.")
    budget: int = Field(description="Trials the search finishes.")
    front_size: int = Field(description="Points on the Pareto front so far.")
    fraction: float = Field(description="done / budget.")
    eta_s: float | None = Field(
        default=None, description="Estimated seconds left (confirmation included)."
    )
    phase: Literal["trials", "confirming"] = Field(
        default="trials",
        description="trials until the budget is done, then confirming while the best trials "
        "are re-trained with more seeds.",
    )
    confirm_done: int = Field(default=0, description="Confirmation runs finished.")
    confirm_total: int = Field(default=0, description="Confirmation runs in all.")


class SearchTimings(BaseModel):
    """When a search was created, started, finished (UTC) and how long it has run."""

    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    updated_at: datetime
    elapsed_s: float | None = Field(
        default=None, description="Seconds from start to finish (or to now while running)."
    )
    run_seconds: float = Field(
        description="Seconds workers spent on it, over all attempts (updated when one ends)."
    )

    @field_validator("created_at", "started_at", "finished_at", "updated_at")
    @classmethod
    def _as_utc(cls, value: datetime | None) -> datetime | None:
        return _utc(value)


class SearchPublic(BaseModel):
    """A search as the API shows it."""

    id: str
    name: str | None = None
    status: Status
    space: str = Field(description="The space's name (or '<inline>').")
    budget: int
    objectives: list[str]
    config: dict[str, Any] = Field(description="The request, as the worker runs it.")
    progress: SearchProgress
    timings: SearchTimings
    mlflow_run_id: str | None = Field(default=None, description="The MLflow parent run.")
    study_name: str | None = Field(default=None, description="The Optuna study.")
    error: str | None = Field(default=None, description="Why the search failed.")
    cancel_requested: bool = False
    attempts: int = Field(default=0, description="Times a worker started this search.")
    worker_id: str | None = None
    links: SearchLinks


class SearchesPublic(BaseModel):
    """A page of searches, newest first."""

    data: list[SearchPublic]
    count: int = Field(description="Searches matching the filter (all pages).")
    limit: int
    offset: int


class Confirmation(BaseModel):
    """A trial's accuracy over its training seeds (the search's seed, then its confirmation
    seeds); a trial that was not confirmed has its own seed only."""

    confirm_candidate: bool = Field(
        default=False, description="Among the trials the confirmed front is chosen from."
    )
    confirmed: bool = Field(
        default=False, description="Re-trained with every confirmation seed, none failing."
    )
    accuracy_mean: float | None = Field(
        default=None, description="Validation accuracy, mean over n_seeds training seeds."
    )
    accuracy_sd: float | None = Field(
        default=None, description="Its sample standard deviation (None below two seeds)."
    )
    n_seeds: int = Field(default=0, description="Training seeds the accuracy covers.")
    test_accuracy: float | None = Field(
        default=None, description="Held-out test accuracy, mean over the same seeds."
    )
    confirm_error: str | None = Field(
        default=None, description="Why the trial is not confirmed (its own result is kept)."
    )


class TrialPublic(Confirmation):
    """One trial of a search."""

    trial_id: int = Field(description="The trial's id in the service.")
    number: int = Field(description="The trial's number in its search (0, 1, ...).")
    state: str
    params: dict[str, Any] = Field(description="The sampled Optuna parameters.")
    arch: dict[str, Any] | None = None
    arch_id: str | None = None
    values: dict[str, float | None] = Field(description="Objective name -> value.")
    metrics: dict[str, Any] = Field(description="Everything the evaluation measured.")
    num_params: int | None = Field(default=None, description="Parameter count.")
    flops: int | None = Field(default=None, description="FLOPs of one forward pass.")
    feasible: bool
    on_front: bool
    interrupted: bool = Field(
        default=False,
        description="Stopped by a cancel or a crash; not counted in the budget.",
    )
    mlflow_run_id: str | None = None
    error: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    epochs_trained: int | None = Field(
        default=None,
        description="Epochs the trial trained (0: it reused an earlier trial's result); "
        "read from its metrics.",
    )
    stopped_at_epoch: int | None = Field(
        default=None,
        description="The rung at which the mo-asha scheduler stopped the trial (state PRUNED).",
    )

    @field_validator("started_at", "finished_at")
    @classmethod
    def _as_utc(cls, value: datetime | None) -> datetime | None:
        return _utc(value)

    @model_validator(mode="after")
    def _epochs(self) -> TrialPublic:
        """Epochs trained and the stopping rung, from the metrics when not given."""
        m = self.metrics
        if self.epochs_trained is None and "reused_from_trial" in m:
            self.epochs_trained = 0
        elif self.epochs_trained is None and isinstance(m.get("epochs"), int):
            self.epochs_trained = m["epochs"]
        if self.stopped_at_epoch is None and isinstance(m.get("stopped_at_epoch"), int):
            self.stopped_at_epoch = m["stopped_at_epoch"]
        return self


class TrialsPublic(BaseModel):
    """A page of trials, by number."""

    data: list[TrialPublic]
    count: int
    limit: int
    offset: int


class ParetoPoint(Confirmation):
    """A point of the Pareto front (after confirmation: chosen on the seed means)."""

    trial_id: int
    number: int
    arch_id: str | None = None
    arch: dict[str, Any] | None = Field(default=None, description="The architecture (JSON).")
    values: dict[str, float | None] = Field(description="Objective name -> value.")
    num_params: int | None = Field(default=None, description="Parameter count.")
    flops: int | None = Field(default=None, description="FLOPs of one forward pass.")
    feasible: bool
    mlflow_run_id: str | None = None


class ParetoPublic(BaseModel):
    """The Pareto front of a search's complete trials (feasible ones first); once the search
    confirms its best trials, the front among them on their seed-mean accuracy."""

    search_id: str
    status: Status
    objectives: list[str]
    directions: list[str]
    data: list[ParetoPoint]
    count: int


class SpaceSummary(BaseModel):
    """A shipped search space, briefly."""

    name: str
    backbone: str | None = None
    input_shape: list[int] | None = None
    num_stages: int | None = None
    size: float | None = Field(default=None, description="Distinct architectures (approx.).")
    error: str | None = Field(default=None, description="Why the space file does not load.")
    link: str


class SpacesPublic(BaseModel):
    """Every shipped search space."""

    data: list[SpaceSummary]
    count: int


class SpacePublic(BaseModel):
    """A search space in full."""

    name: str
    size: float | None = None
    document: dict[str, Any] = Field(description="The validated space (as POST accepts it).")


class HParamPublic(BaseModel):
    """One hyperparameter of an attention block."""

    name: str
    type: str
    default: Any
    domain: list[Any]
    doc: str = ""


class BlockPublic(BaseModel):
    """An attention block a search space may use."""

    name: str
    paper: str = ""
    summary: str = ""
    supports_conv: bool = False
    hparams: list[HParamPublic]


class BlocksPublic(BaseModel):
    """Every registered attention block."""

    data: list[BlockPublic]
    count: int


class Health(BaseModel):
    """Liveness and database reachability."""

    status: Literal["ok", "degraded"]
    database: Literal["ok", "unreachable"]
    version: str
    queued: int | None = None
    running: int | None = None
