"""The settings of one search (:class:`SearchConfig`) and the objectives it may optimise."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from nas.evaluation.settings import DatasetName

__all__ = ["OBJECTIVES", "SAMPLERS", "SearchConfig"]

#: Objective name -> Optuna direction. Values come from the metrics ``evaluate`` returns.
OBJECTIVES: dict[str, str] = {
    "accuracy": "maximize",
    "latency_ms": "minimize",
    "params": "minimize",
    "flops": "minimize",
}

SAMPLERS = ("tpe", "nsga2", "random", "gp")


class SearchConfig(BaseModel):
    """Everything that defines a search; stored with its Optuna study, so it can be resumed.

    Also the body of the service's ``POST /searches``: field names are part of the contract.
    """

    model_config = ConfigDict(extra="forbid")

    space: str | dict[str, Any] = Field(
        default="mobile", description="A shipped space name, a YAML path or an inline document."
    )
    budget: int = Field(default=50, ge=1, le=100_000, description="Trials to finish.")
    objectives: list[str] = Field(
        default_factory=lambda: ["accuracy", "latency_ms"],
        description="From accuracy (max), latency_ms (min), params (min), flops (min).",
    )
    sampler: Literal["tpe", "nsga2", "random", "gp"] = "tpe"
    dataset: DatasetName = Field(
        default="jittered", description="Training data of every trial (see nas.evaluation)."
    )
    data_dir: str | None = None
    epochs: int | None = Field(default=None, ge=1, le=10_000)
    batch_size: int | None = Field(default=None, ge=1, le=65_536)
    lr: float | None = Field(default=None, gt=0, le=10)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    latency_device: Literal["cpu", "cuda"] | None = Field(
        default=None, description="Where latency is measured (None: the training device)."
    )
    gpus_per_trial: float = Field(
        default=0,
        ge=0,
        le=64,
        description="GPUs per trial, whole or fractional (0: one GPU when a trial trains or "
        "measures latency on CUDA, else none).",
    )
    cpus_per_trial: int = Field(default=1, ge=1, le=1024)
    concurrency: int | None = Field(
        default=None, ge=1, le=10_000, description="None: as many as the resources allow."
    )
    max_latency_ms: float | None = Field(
        default=None, gt=0, description="Latency budget: an Optuna constraint."
    )
    name: str | None = Field(default=None, max_length=100)
    seed: int = Field(
        default=0,
        description="Training seed of every trial (initialisation, data order, augmentation); "
        "also seeds the sampler. Confirmation runs use seed+1 ... seed+confirm_seeds.",
    )
    split_seed: int = Field(
        default=0,
        description="Seed of the train/validation/test split (and of generated data), apart "
        "from the training seed: every trial, and every search on the same data, is scored on "
        "the same examples.",
    )
    confirm_seeds: int = Field(
        default=2,
        ge=0,
        le=20,
        description="After the budget, re-train the Pareto front (and the next non-dominated "
        "layer, up to confirm_max trials) with this many more training seeds; the reported "
        "front is computed on the seed means. 0, or accuracy not an objective: no "
        "confirmation.",
    )
    confirm_max: int = Field(
        default=10,
        ge=1,
        le=1000,
        description="At most this many trials are confirmed, front first.",
    )
    storage: str | None = Field(default=None, description="Optuna storage URL.")
    mlflow_uri: str | None = None
    ray_address: str | None = None

    @field_validator("objectives")
    @classmethod
    def _check_objectives(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError(f"choose at least one objective from {', '.join(OBJECTIVES)}")
        unknown = [v for v in value if v not in OBJECTIVES]
        if unknown:
            raise ValueError(
                f"unknown objective {unknown[0]!r}; choose from {', '.join(OBJECTIVES)}"
            )
        if len(set(value)) != len(value):
            raise ValueError(f"objectives must not repeat: {value}")
        return value

    @field_validator("gpus_per_trial")
    @classmethod
    def _check_gpus(cls, value: float) -> float:
        if value > 1 and value != int(value):
            raise ValueError(f"gpus_per_trial={value}: use a fraction below 1 or a whole number")
        return value

    def directions(self) -> list[str]:
        """Optuna directions of :attr:`objectives`, in order."""
        return [OBJECTIVES[o] for o in self.objectives]
