"""The options of one search: :class:`SearchOptions` (what it does) and :class:`SearchConfig`
(plus where it is stored). The one owner of every option's type, default, bounds and
description: ``nas search``'s flags and the service's ``SearchCreate`` are built from it.

Allowed values come from their registries: spaces from :func:`nas.space.list_spaces`
(checked when a config is validated, so importing this module stays cheap), datasets from
:mod:`nas.evaluation.settings`, samplers from :mod:`nas.search.samplers`, objectives from
:data:`OBJECTIVES`.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from nas.evaluation.settings import DatasetName
from nas.search.samplers import SAMPLER_FACTORIES

__all__ = [
    "OBJECTIVES",
    "RESUMABLE",
    "SAMPLERS",
    "SamplerName",
    "SchedulerName",
    "SearchConfig",
    "SearchOptions",
    "direction",
]

#: Objective name -> Optuna direction. Values come from the metrics ``evaluate`` returns.
OBJECTIVES: dict[str, str] = {
    "accuracy": "maximize",
    "latency_ms": "minimize",
    "params": "minimize",
    "flops": "minimize",
}

#: Sampler names, in the order of :mod:`nas.search.samplers`' registry (the first is the default).
SAMPLERS: tuple[str, ...] = tuple(SAMPLER_FACTORIES)
SamplerName = Literal[SAMPLERS]  # type: ignore[valid-type]

#: Trial schedulers: ``none`` trains every trial to full epochs; ``mo-asha`` stops trials early
#: by Pareto-aware successive halving (see :mod:`nas.search.mo_asha`).
SchedulerName = Literal["none", "mo-asha"]

#: Options a resumed search may change; the others are the stored search's.
RESUMABLE = frozenset(
    {"budget", "concurrency", "cpus_per_trial", "gpus_per_trial", "ray_address", "storage"}
)

_SPACE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")  # as nas.space.loader
_SPACE_FILE = (".yaml", ".yml", ".json")
_SEED_MAX = 2**31 - 1


def direction(objective: str) -> str:
    """The Optuna direction of ``objective``; :class:`ValueError` for an unknown one."""
    try:
        return OBJECTIVES[objective]
    except KeyError:
        raise ValueError(
            f"unknown objective {objective!r}; choose from {', '.join(OBJECTIVES)}"
        ) from None


class SearchOptions(BaseModel):
    """What a search does: space, budget, objectives, sampler, training and resources.

    The service's ``POST /searches`` body is this model (``service.schemas.SearchCreate``);
    :class:`SearchConfig` adds where the search is stored.
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    space: str | dict[str, Any] = Field(
        default="mobile",
        description="A shipped space name (`nas spaces`, GET /spaces), a YAML path (CLI only) "
        "or an inline space document.",
    )
    budget: int = Field(
        default=50,
        ge=1,
        le=100_000,
        description="Trials to finish (complete + failed).",
    )
    objectives: list[str] = Field(
        default_factory=lambda: ["accuracy", "latency_ms"],
        description="Objectives, from "
        + ", ".join(f"{k} ({v[:3]})" for k, v in OBJECTIVES.items())
        + ".",
    )
    sampler: SamplerName = Field(  # type: ignore[valid-type]
        default=SAMPLERS[0], description="Optuna sampler: " + ", ".join(SAMPLERS) + "."
    )
    dataset: DatasetName = Field(
        default="jittered", description="Training data of every trial (see nas.evaluation)."
    )
    data_dir: str | None = Field(
        default=None, description="Folder of a cifar10 or imagefolder dataset."
    )
    epochs: int | None = Field(
        default=None, ge=1, le=10_000, description="Training epochs per trial (default: 3)."
    )
    batch_size: int | None = Field(
        default=None, ge=1, le=65_536, description="Training batch size (default: 64)."
    )
    lr: float | None = Field(
        default=None, gt=0, le=10, description="Learning rate (default: 0.01)."
    )
    device: Literal["auto", "cpu", "cuda"] = Field(
        default="auto", description="Training device (auto: CUDA when available)."
    )
    latency_device: Literal["cpu", "cuda"] | None = Field(
        default=None,
        description="Where latency is measured (default: the training device); cuda reserves "
        "a GPU per trial and needs one in the Ray cluster.",
    )
    gpus_per_trial: float = Field(
        default=0,
        ge=0,
        le=64,
        description="GPUs per trial, a fraction below 1 or a whole number (0: one GPU when a "
        "trial trains or measures latency on CUDA, else none).",
    )
    cpus_per_trial: int = Field(default=1, ge=1, le=1024, description="CPU threads per trial.")
    concurrency: int | None = Field(
        default=None, ge=1, le=10_000, description="Trials at once (default: what fits)."
    )
    max_latency_ms: float | None = Field(
        default=None, gt=0, description="Latency budget: an Optuna constraint."
    )
    name: str | None = Field(
        default=None,
        min_length=1,
        max_length=100,
        pattern=r"^[^\x00-\x1f\x7f]+$",
        description="A readable name (printable text; prefix of the Optuna study name).",
    )
    seed: int = Field(
        default=0,
        ge=0,
        le=_SEED_MAX,
        description="Training seed of every trial (initialisation, data order, augmentation); "
        "also seeds the sampler. Confirmation runs use seed+1 ... seed+confirm_seeds.",
    )
    split_seed: int = Field(
        default=0,
        ge=0,
        le=_SEED_MAX,
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
    scheduler: SchedulerName = Field(
        default="none",
        description="none: every trial trains its full epochs; mo-asha: Pareto-aware "
        "successive halving stops trials early at rungs min_epochs * eta^k.",
    )
    min_epochs: int = Field(
        default=1,
        ge=1,
        le=10_000,
        description="mo-asha: epochs of the first rung (at most epochs).",
    )
    eta: int = Field(
        default=3,
        ge=2,
        le=100,
        description="mo-asha: reduction factor; the top 1/eta of a rung is promoted.",
    )
    latency_backend: Literal["torch", "onnxruntime"] = Field(
        default="torch",
        description="Runtime whose latency is measured: torch (eager, or a CUDA graph) or "
        "onnxruntime (the network exported to ONNX; needs the [onnx] extra).",
    )

    @field_validator("space")
    @classmethod
    def _check_space(cls, value: Any, info: ValidationInfo) -> Any:
        """A space name must be a shipped one; paths and documents are checked on loading."""
        if not isinstance(value, str) or not _SPACE_NAME.match(value):
            return value
        if value.endswith(_SPACE_FILE):
            return value
        if (info.context or {}).get("stored"):
            return value  # a stored search keeps its space document
        from nas.space import list_spaces

        names = list_spaces()
        if value not in names:
            raise ValueError(
                f"unknown space {value!r}: not a space in search_spaces/ (available: "
                f"{', '.join(names) or 'none found'}); or give a YAML path (CLI) or an inline "
                "space document"
            )
        return value

    @field_validator("objectives")
    @classmethod
    def _check_objectives(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError(f"choose at least one objective from {', '.join(OBJECTIVES)}")
        for name in value:
            direction(name)
        if len(set(value)) != len(value):
            raise ValueError(f"objectives must not repeat: {value}")
        return value

    @field_validator("gpus_per_trial")
    @classmethod
    def _check_gpus(cls, value: float) -> float:
        if value > 1 and value != int(value):
            raise ValueError(f"gpus_per_trial={value}: use a fraction below 1 or a whole number")
        return value

    @field_validator("min_epochs")
    @classmethod
    def _first_rung_within_epochs(cls, value: int, info: ValidationInfo) -> int:
        from nas.evaluation.settings import EvalSettings

        epochs = info.data.get("epochs") or EvalSettings.model_fields["epochs"].default
        if info.data.get("scheduler") == "mo-asha" and value > epochs:
            raise ValueError(
                f"min_epochs={value} is more than epochs={epochs}: the first rung must come "
                "before the end of training"
            )
        return value

    def directions(self) -> list[str]:
        """Optuna directions of :attr:`objectives`, in order."""
        return [OBJECTIVES[o] for o in self.objectives]


class SearchConfig(SearchOptions):
    """Everything that defines a search; stored with its Optuna study, so it can be resumed.

    Read a stored one with ``model_validate(data, context={"stored": True})``: its space
    name is not checked against the spaces installed now.
    """

    storage: str | None = Field(
        default=None, description="Optuna storage URL (default: SQLite in $NAS_HOME)."
    )
    mlflow_uri: str | None = Field(
        default=None, description="MLflow tracking URI (default: SQLite in $NAS_HOME)."
    )
    ray_address: str | None = Field(
        default=None, description="Ray cluster address (default: $RAY_ADDRESS or local)."
    )
