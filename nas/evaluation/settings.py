"""Settings of one evaluation: data, training and latency measurement."""

from __future__ import annotations

from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["DATASETS", "DatasetName", "EvalSettings"]

DatasetName = Literal["jittered", "cluttered", "digits", "synthetic", "cifar10", "imagefolder"]
DATASETS: tuple[str, ...] = get_args(DatasetName)


class EvalSettings(BaseModel):
    """How a candidate is trained and timed.

    The defaults train a `mobile` candidate on the embedded `jittered` digits in about ten
    seconds on one CPU core and time it at batch 1 on one thread.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    dataset: DatasetName = Field(
        default="jittered",
        description="jittered (the embedded default), cluttered, digits, "
        "synthetic, cifar10 or imagefolder; see nas.evaluation.datasets.",
    )
    data_dir: str | None = Field(
        default=None, description="Folder of a cifar10 or imagefolder dataset."
    )
    epochs: int = Field(default=3, ge=1, le=10_000)
    batch_size: int = Field(default=64, ge=1, le=65_536)
    lr: float = Field(default=0.01, gt=0, le=10)
    weight_decay: float = Field(default=0.01, ge=0)
    seed: int = Field(
        default=0,
        description="Training seed: weight initialisation, data order and augmentation.",
    )
    split_seed: int = Field(
        default=0,
        description="Seed of the train/validation/test split (and of generated data); fixed, "
        "so every trial and every search on the same data is scored on the same examples.",
    )
    threads: int = Field(default=1, ge=1, le=1024, description="CPU threads for training.")
    device: Literal["auto", "cpu", "cuda"] = "auto"
    amp: bool = Field(default=True, description="Mixed precision when training on CUDA.")
    bn_recalibration: int = Field(
        default=512,
        ge=0,
        description="Training examples that re-estimate BatchNorm statistics "
        "before each validation (0: off).",
    )
    channels_last: bool = Field(default=True, description="Train in channels-last format.")
    val_fraction: float = Field(default=0.2, gt=0, lt=1)
    test_fraction: float = Field(
        default=0.2, ge=0, lt=1, description="Held out from the search; reported, not optimised."
    )
    max_samples: int | None = Field(
        default=None, ge=2, description="Use at most this many examples (before the split)."
    )
    latency_batch_size: int = Field(default=1, ge=1)
    latency_warmup: int = Field(default=10, ge=0)
    latency_repeats: int = Field(default=60, ge=3)
    latency_threads: int = Field(default=1, ge=1, le=1024)
    latency_device: Literal["cpu", "cuda"] | None = Field(
        default=None, description="None: the training device."
    )
    latency_clock: Literal["auto", "wall", "cpu"] = Field(
        default="auto", description="CPU timing clock: auto = thread CPU time at one thread."
    )
    latency_cuda_graph: bool = Field(
        default=True,
        description="On CUDA, time the replay of a captured CUDA graph (the network's GPU "
        "time, without eager launch overhead); eager passes when off or not capturable.",
    )
    latency_backend: Literal["torch", "onnxruntime"] = Field(
        default="torch",
        description="torch: eager PyTorch (or a CUDA graph); onnxruntime: the network exported "
        "to ONNX and run in an ONNX Runtime session (the [onnx] extra).",
    )
    latency_cache: bool = Field(default=True, description="Reuse a measured latency.")

    @model_validator(mode="after")
    def _fractions_leave_training_data(self) -> EvalSettings:
        if self.val_fraction + self.test_fraction >= 1:
            raise ValueError(
                f"val_fraction + test_fraction = {self.val_fraction + self.test_fraction:g} "
                "leaves no training data: keep their sum below 1"
            )
        return self

    @model_validator(mode="after")
    def _cpu_clock_needs_one_thread(self) -> EvalSettings:
        if self.latency_clock == "cpu" and self.latency_threads != 1:
            raise ValueError("latency_clock 'cpu' counts one thread's time: set latency_threads=1")
        return self
