"""evaluate(): the metrics a trial reports, weights, the latency cache, clear failures."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

import nas.space
from nas.evaluation import (
    DatasetError,
    EvalSettings,
    EvaluationError,
    MeasurementLock,
    evaluate,
    load_dataset,
)
from nas.evaluation.training import evaluate_accuracy
from nas.space import build_model, default_arch, load_space

FAST = EvalSettings(
    dataset="synthetic",
    epochs=2,
    batch_size=32,
    lr=0.01,
    device="cpu",
    latency_warmup=1,
    latency_repeats=5,
)
KEYS = {
    "accuracy",
    "accuracy_per_epoch",
    "latency_ms",
    "latency_p90_ms",
    "latency_cv",
    "params",
    "flops",
    "train_seconds",
    "epochs",
}


def test_metrics_weights_and_latency_cache(tmp_path: Path) -> None:
    space = load_space("tiny")
    arch = default_arch(space)
    calls: list[tuple[int, float, float]] = []
    path = tmp_path / "out" / "model.pt"
    metrics = evaluate(space, arch, FAST, on_epoch=lambda *a: calls.append(a), weights_path=path)
    assert metrics.keys() >= KEYS
    assert metrics["epochs"] == 2 and [c[0] for c in calls] == [1, 2]
    assert metrics["accuracy_per_epoch"] == [c[1] for c in calls]
    assert metrics["accuracy"] == metrics["accuracy_per_epoch"][-1]
    assert 0.0 <= metrics["accuracy"] <= 1.0
    assert 0 < metrics["latency_ms"] <= metrics["latency_p90_ms"]
    assert metrics["latency_cached"] == 0
    assert metrics["flops"] > 0 and metrics["train_seconds"] > 0

    model = build_model(space, arch, num_classes=int(metrics["num_classes"]))
    model.load_state_dict(torch.load(path))
    assert metrics["params"] == sum(p.numel() for p in model.parameters())
    data = load_dataset("synthetic", tuple(space.input_shape), num_classes=space.num_classes)
    assert evaluate_accuracy(model, data.x_val, data.y_val) == metrics["accuracy"]

    again = evaluate(space, arch, FAST)
    assert again["latency_cached"] == 1
    assert again["latency_ms"] == metrics["latency_ms"]
    assert again["accuracy_per_epoch"] == metrics["accuracy_per_epoch"]  # same seed
    other = evaluate(space, arch, FAST.model_copy(update={"latency_batch_size": 2}))
    assert other["latency_cached"] == 0


class _NaN(nn.Module):
    def __init__(self, features: int, classes: int) -> None:
        super().__init__()
        self.linear = nn.Linear(features, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x.flatten(1)) * float("nan")


def test_nan_loss_fails_the_evaluation(monkeypatch: pytest.MonkeyPatch) -> None:
    space = load_space("tiny")
    arch = default_arch(space)
    monkeypatch.setattr(nas.space, "build_model", lambda s, a, num_classes=None: _NaN(64, 4))
    with pytest.raises(EvaluationError, match=f"arch {arch.id}.*non-finite loss"):
        evaluate(space, arch, FAST)


def test_build_failure_fails_the_evaluation(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(space, arch, num_classes=None):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(nas.space, "build_model", broken)
    with pytest.raises(EvaluationError, match=r"cannot build .*RuntimeError: out of memory"):
        evaluate(load_space("tiny"), default_arch(load_space("tiny")), FAST)


def test_bad_dataset_is_a_dataset_error() -> None:
    space = load_space("tiny")
    with pytest.raises(DatasetError, match="needs data_dir"):
        evaluate(space, default_arch(space), FAST.model_copy(update={"dataset": "cifar10"}))


def test_default_mobile_arch_learns_the_default_task_with_headroom() -> None:
    """With the defaults, the default `mobile` arch learns the embedded `jittered` digits well
    (chance is 0.1) without saturating them, and its held-out test accuracy agrees."""
    space = load_space("mobile")
    metrics = evaluate(space, default_arch(space, attention="none"))
    assert 0.85 <= metrics["accuracy"] <= 0.98, metrics["accuracy_per_epoch"]
    assert abs(metrics["test_accuracy"] - metrics["accuracy"]) < 0.05
    assert metrics["val_samples"] == metrics["test_samples"] == 4000


def test_blocked_measurement_fails_after_the_timeout(
    monkeypatch: pytest.MonkeyPatch, nas_home: Path
) -> None:
    import nas.evaluation.evaluator as evaluator

    monkeypatch.setattr(evaluator, "LOCK_TIMEOUT_S", 0.05)
    stuck_trainer = MeasurementLock(nas_home / "locks")  # e.g. a stopped process mid-step
    assert stuck_trainer.acquire_shared()
    space = load_space("tiny")
    with pytest.raises(EvaluationError, match="still busy"):
        evaluate(space, default_arch(space), FAST.model_copy(update={"epochs": 1}))
    stuck_trainer.release_shared()


def test_training_seed_never_changes_the_split(monkeypatch) -> None:
    """Every trial and every training seed is scored on the same validation and test sets."""
    import nas.evaluation.evaluator as evaluator

    seen = []
    train = evaluator.train_model

    def spy(model, data, settings, **kwargs):
        seen.append(data)
        return train(model, data, settings, **kwargs)

    monkeypatch.setattr(evaluator, "train_model", spy)
    space = load_space("tiny")
    for seed, attention in ((0, "none"), (1, "none"), (2, "se")):
        settings = FAST.model_copy(update={"seed": seed, "latency_cache": False})
        metrics = evaluate(space, default_arch(space, attention), settings)
        assert 0.0 <= metrics["test_accuracy"] <= 1.0
    first = seen[0]
    for data in seen[1:]:
        for name in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test"):
            assert torch.equal(getattr(data, name), getattr(first, name)), name
    moved = evaluate(space, default_arch(space), FAST.model_copy(update={"split_seed": 1}))
    assert not torch.equal(seen[-1].y_val, first.y_val) or not torch.equal(
        seen[-1].x_val, first.x_val
    )
    assert moved["val_samples"] == len(first.y_val)
