"""Training loop: learns, is deterministic, reports every epoch, fails clearly."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from nas.evaluation import (
    EvalSettings,
    EvaluationError,
    MeasurementLock,
    load_dataset,
    train_model,
)


def _cnn(classes: int = 4) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(2),
        nn.Flatten(),
        nn.Linear(32, classes),
    )


def _data():
    return load_dataset("synthetic", (1, 8, 8), split_seed=0, num_classes=4, max_samples=160)


SETTINGS = EvalSettings(dataset="synthetic", epochs=3, batch_size=16, lr=0.02, device="cpu")


def test_learns_and_reports_every_epoch() -> None:
    calls: list[tuple[int, float, float]] = []
    torch.manual_seed(0)
    result = train_model(_cnn(), _data(), SETTINGS, on_epoch=lambda *a: calls.append(a))
    assert [c[0] for c in calls] == [1, 2, 3]
    assert [c[1] for c in calls] == result.accuracy_per_epoch
    assert [c[2] for c in calls] == result.loss_per_epoch
    assert result.accuracy > 0.8  # chance is 0.25
    assert result.loss_per_epoch[-1] < result.loss_per_epoch[0]
    assert result.steps == 3 * (len(_data().y_train) // 16)
    assert result.test_accuracy is not None and result.test_accuracy > 0.8
    assert result.device == "cpu"


def test_same_seed_same_result() -> None:
    results = []
    for _ in range(2):
        torch.manual_seed(1)
        model = _cnn()
        results.append((train_model(model, _data(), SETTINGS), model.state_dict()))
    (a, wa), (b, wb) = results
    assert a.loss_per_epoch == b.loss_per_epoch
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_threads_are_restored() -> None:
    before = torch.get_num_threads()
    train_model(_cnn(), _data(), SETTINGS.model_copy(update={"threads": before + 1}))
    assert torch.get_num_threads() == before


class _Broken(nn.Module):
    def __init__(self, output: str) -> None:
        super().__init__()
        self.linear = nn.Linear(64, 4)
        self.output = output

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.output == "raise":
            raise RuntimeError("shape mismatch somewhere")
        return self.linear(x.flatten(1)) * float("nan")


def test_nan_loss_is_an_evaluation_error() -> None:
    with pytest.raises(EvaluationError, match="non-finite loss in epoch 1"):
        train_model(_Broken("nan"), _data(), SETTINGS)


def test_exception_is_an_evaluation_error() -> None:
    with pytest.raises(EvaluationError, match="RuntimeError: shape mismatch somewhere"):
        train_model(_Broken("raise"), _data(), SETTINGS)


def test_callback_exception_propagates_unchanged() -> None:
    class Stop(Exception):
        pass

    def stop(epoch: int, accuracy: float, loss: float) -> None:
        raise Stop

    with pytest.raises(Stop):
        train_model(_cnn(), _data(), SETTINGS, on_epoch=stop)


def test_each_step_holds_the_lock_shared(tmp_path) -> None:
    class Counting(MeasurementLock):
        shared_holds = 0

        def acquire_shared(self, timeout: float | None = None) -> bool:
            Counting.shared_holds += 1
            return super().acquire_shared(timeout)

    lock = Counting(tmp_path / "locks")
    result = train_model(_cnn(), _data(), SETTINGS, lock=lock)
    # one hold per optimisation step, one per validation pass and one for the test pass
    assert Counting.shared_holds == result.steps + SETTINGS.epochs + 1
    assert lock.acquire_exclusive(timeout=0)  # everything was released
    lock.release_exclusive()
