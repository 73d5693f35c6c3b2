"""Short supervised training of one candidate: AdamW, cosine schedule, in-memory batches.

Data stay tensors on the training device (no DataLoader workers), in channels-last memory
format by default (about twice as fast for these small convolutional nets on CPU). Each
optimisation step holds the node's measurement lock shared (see
:mod:`nas.evaluation.isolation`), so a latency measurement elsewhere on the node pauses this
loop between two steps. BatchNorm statistics are re-estimated before each validation.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from nas.evaluation.datasets import Dataset
from nas.evaluation.errors import EvaluationError
from nas.evaluation.isolation import MeasurementLock
from nas.evaluation.runtime import cpu_threads, resolve_device
from nas.evaluation.settings import EvalSettings

__all__ = [
    "EpochCallback",
    "TrainResult",
    "evaluate_accuracy",
    "recalibrate_batchnorm",
    "train_model",
]

EpochCallback = Callable[[int, float, float], None]
"""``on_epoch(epoch, accuracy, loss)``: epoch counts from 1, loss is the epoch's mean."""

_EVAL_BATCH = 512


@dataclass
class TrainResult:
    """What one training run produced."""

    accuracy_per_epoch: list[float] = field(default_factory=list)
    loss_per_epoch: list[float] = field(default_factory=list)
    test_accuracy: float | None = None
    seconds: float = 0.0
    steps: int = 0
    device: str = "cpu"

    @property
    def accuracy(self) -> float:
        """Validation accuracy after the last epoch."""
        return self.accuracy_per_epoch[-1] if self.accuracy_per_epoch else 0.0


def train_model(
    model: nn.Module,
    data: Dataset,
    settings: EvalSettings | None = None,
    *,
    on_epoch: EpochCallback | None = None,
    lock: MeasurementLock | None = None,
) -> TrainResult:
    """Train `model` in place on `data`, validate after every epoch, then test once.

    A non-finite loss or an exception inside training raises :class:`EvaluationError`;
    an exception raised by `on_epoch` itself propagates unchanged (a caller's stop signal).
    """
    settings = settings or EvalSettings()
    device = resolve_device(settings.device)
    result = TrainResult(device=str(device))
    step_lock = lock.shared if lock is not None else contextlib.nullcontext
    with cpu_threads(settings.threads):
        try:
            fmt = torch.channels_last if settings.channels_last else torch.contiguous_format
            model.to(device=device, memory_format=fmt)
            x_train = data.x_train.to(device).contiguous(memory_format=fmt)
            x_val = data.x_val.to(device).contiguous(memory_format=fmt)
            y_train, y_val = data.y_train.to(device), data.y_val.to(device)
            batch = min(settings.batch_size, len(x_train))
            batches_per_epoch = max(1, len(x_train) // batch)
            total_steps = settings.epochs * batches_per_epoch
            optimizer = torch.optim.AdamW(
                model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay
            )
            scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _cosine(total_steps))
            use_amp = settings.amp and device.type == "cuda"
            scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
            loss_fn = nn.CrossEntropyLoss()
            generator = torch.Generator().manual_seed(settings.seed)
            check_each_step = device.type == "cpu"
        except EvaluationError:
            raise
        except Exception as exc:
            raise EvaluationError(f"training setup failed: {type(exc).__name__}: {exc}") from exc
        start = time.perf_counter()
        for epoch in range(1, settings.epochs + 1):
            try:
                model.train()
                order = torch.randperm(len(x_train), generator=generator).to(device)
                loss_sum = torch.zeros((), device=device)
                for b in range(batches_per_epoch):
                    idx = order[b * batch : (b + 1) * batch]
                    with step_lock():
                        with torch.autocast(device.type, dtype=torch.float16, enabled=use_amp):
                            loss = loss_fn(model(x_train[idx]), y_train[idx])
                        if check_each_step and not math.isfinite(loss.item()):
                            raise _NonFinite(epoch, result.steps + 1)
                        optimizer.zero_grad(set_to_none=True)
                        scaler.scale(loss).backward()
                        scaler.step(optimizer)
                        scaler.update()
                    scheduler.step()
                    result.steps += 1
                    loss_sum += loss.detach().float()
                mean_loss = float(loss_sum) / batches_per_epoch
                if not math.isfinite(mean_loss):
                    raise _NonFinite(epoch, result.steps)
                with step_lock():
                    if settings.bn_recalibration:
                        calib = order[: settings.bn_recalibration]
                        recalibrate_batchnorm(model, x_train[calib], batch, amp=use_amp)
                    accuracy = evaluate_accuracy(model, x_val, y_val, amp=use_amp)
            except _NonFinite as exc:
                raise EvaluationError(str(exc)) from None
            except Exception as exc:
                raise EvaluationError(
                    f"training failed in epoch {epoch}: {type(exc).__name__}: {exc}"
                ) from exc
            result.accuracy_per_epoch.append(accuracy)
            result.loss_per_epoch.append(mean_loss)
            result.seconds = time.perf_counter() - start
            if on_epoch is not None:
                on_epoch(epoch, accuracy, mean_loss)
        if len(data.y_test):
            x_test = data.x_test.to(device).contiguous(memory_format=fmt)
            with step_lock():
                result.test_accuracy = evaluate_accuracy(
                    model, x_test, data.y_test.to(device), amp=use_amp
                )
    return result


def evaluate_accuracy(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, amp: bool = False
) -> float:
    """Top-1 accuracy of `model` on (x, y), in eval mode, batched."""
    model.eval()
    correct = 0
    with torch.inference_mode(), torch.autocast(x.device.type, torch.float16, enabled=amp):
        for start in range(0, len(x), _EVAL_BATCH):
            logits = model(x[start : start + _EVAL_BATCH])
            correct += int((logits.argmax(dim=1) == y[start : start + _EVAL_BATCH]).sum())
    return correct / max(1, len(x))


def recalibrate_batchnorm(
    model: nn.Module, x: torch.Tensor, batch_size: int, *, amp: bool = False
) -> None:
    """Re-estimate BatchNorm running statistics on `x` with the current weights ("precise BN").

    Wu & Johnson, "Rethinking 'Batch' in BatchNorm", 2021 (https://arxiv.org/abs/2105.07576):
    in a short training run the exponential running averages lag behind the fast-changing
    weights, so eval-mode accuracy is misleadingly low; a cumulative average over a few
    training batches taken after the epoch fixes it.
    """
    norms = [
        m
        for m in model.modules()
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats
    ]
    if not norms or len(x) < 2:
        return
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the calibration batches
    model.train()
    try:
        with torch.no_grad(), torch.autocast(x.device.type, torch.float16, enabled=amp):
            for start in range(0, len(x) - 1, max(2, batch_size)):
                model(x[start : start + max(2, batch_size)])
    finally:
        for m, momentum in zip(norms, momenta, strict=True):
            m.momentum = momentum


def _cosine(total_steps: int) -> Callable[[int], float]:
    """Linear warm-up over the first 5% of steps, then cosine decay to zero."""
    warmup = max(1, total_steps // 20)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total_steps - warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return factor


class _NonFinite(Exception):
    def __init__(self, epoch: int, step: int) -> None:
        super().__init__(
            f"training diverged: non-finite loss in epoch {epoch} (step {step}); "
            "lower the learning rate"
        )
