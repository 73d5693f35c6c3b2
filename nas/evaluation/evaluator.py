"""Evaluate one architecture: measure its latency, parameters and FLOPs, then train it.

This is what a search trial calls. The flat metrics dict it returns is what the trial
reports (``accuracy``, ``accuracy_per_epoch``, ``latency_ms``, ... ; see :func:`evaluate`).
Latency does not depend on the trained weights, so it is measured first: a trial reporting
after every epoch (a search with a scheduler) knows its latency from the first report.
"""

from __future__ import annotations

import copy
import hashlib
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from nas.errors import NasError
from nas.evaluation.cache import LatencyCache
from nas.evaluation.datasets import dataset_for
from nas.evaluation.errors import EvaluationError
from nas.evaluation.isolation import measurement_lock
from nas.evaluation.latency import LatencyStats, measure_latency, resolve_clock
from nas.evaluation.runtime import device_name, resolve_device
from nas.evaluation.settings import EvalSettings
from nas.evaluation.training import EpochCallback, train_model

if TYPE_CHECKING:
    from nas.space import Arch, SearchSpace

__all__ = ["evaluate", "model_key"]

Metrics = dict[str, float | int | list[float]]
LOCK_TIMEOUT_S = 900.0
"""Longest wait for the measurement lock (a stopped process holding a step blocks it)."""


def evaluate(
    space: SearchSpace,
    arch: Arch,
    settings: EvalSettings | None = None,
    *,
    on_epoch: EpochCallback | None = None,
    on_latency: Callable[[float], None] | None = None,
    weights_path: Path | None = None,
) -> Metrics:
    """Measure `arch` from `space` and train it; return the flat metrics of the trial.

    ``on_latency(latency_ms)`` is called once the latency is known, before training;
    ``on_epoch(epoch, accuracy, loss)`` after each epoch (see :func:`train_model`).

    Raises :class:`EvaluationError` when the candidate cannot be built, trained (NaN loss,
    an exception) or measured, and :class:`DatasetError` when the data cannot be loaded
    (a configuration problem that would fail every trial).
    """
    from nas.backbones import profile_model
    from nas.space import build_model

    settings = settings or EvalSettings()
    started = time.perf_counter()
    input_shape = tuple(int(v) for v in space.input_shape)
    data = dataset_for(space, settings)
    num_classes = space.num_classes or data.num_classes
    label = _label(arch)
    try:
        torch.manual_seed(settings.seed)
        model = build_model(space, arch, num_classes=num_classes)
        state = copy.deepcopy(model.state_dict())
        profile = profile_model(model, input_shape, batch_size=1)  # type: ignore[arg-type]
        model.load_state_dict(state)
    except Exception as exc:
        raise EvaluationError(f"{label}: cannot build or profile the model: {_why(exc)}") from exc

    try:  # timed as build_model returns it, before training moves it
        stats, cached = _latency(model, space, arch, input_shape, num_classes, settings)
    except (EvaluationError, TimeoutError) as exc:
        raise EvaluationError(f"{label}: {exc}") from exc
    latency = {
        "latency_ms": stats.median_ms,
        "latency_p90_ms": stats.p90_ms,
        "latency_p10_ms": stats.p10_ms,
        "latency_min_ms": stats.min_ms,
        "latency_cv": stats.cv,
        "latency_cached": int(cached),
    }
    if on_latency is not None:
        on_latency(stats.median_ms)
    # Dropout starts alike whatever blocks were built, and whether latency was measured
    # (its random input draws from the global generator) or read from the cache.
    torch.manual_seed(settings.seed)
    lock = measurement_lock()
    try:
        trained = train_model(model, data, settings, on_epoch=on_epoch, lock=lock)
    except EvaluationError as exc:
        raise EvaluationError(f"{label}: {exc}") from exc
    metrics: Metrics = {
        "accuracy": trained.accuracy,
        "accuracy_per_epoch": list(trained.accuracy_per_epoch),
        "loss": trained.loss_per_epoch[-1],
        "loss_per_epoch": list(trained.loss_per_epoch),
        "epochs": len(trained.accuracy_per_epoch),
        "train_seconds": trained.seconds,
        "params": int(profile.params),
        "flops": int(profile.flops),
        "activation_bytes": int(profile.activation_bytes),
        "num_classes": int(num_classes),
        "train_samples": len(data.y_train),
        "val_samples": len(data.y_val),
        "test_samples": len(data.y_test),
    }
    if trained.test_accuracy is not None:
        metrics["test_accuracy"] = trained.test_accuracy
    if trained.device.startswith("cuda"):
        metrics["peak_memory_bytes"] = int(torch.cuda.max_memory_allocated())
    if weights_path is not None:
        weights_path = Path(weights_path)
        weights_path.parent.mkdir(parents=True, exist_ok=True)
        torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, weights_path)

    metrics.update(latency)
    metrics["eval_seconds"] = time.perf_counter() - started
    return metrics


def model_key(space: SearchSpace, arch: Arch, num_classes: int) -> str:
    """Identifies the network to time: the space's content, the arch id and the class count."""
    document = json.dumps(space.to_dict(), sort_keys=True, default=str)
    fingerprint = hashlib.sha256(document.encode()).hexdigest()[:12]
    return f"{space.name}:{fingerprint}:{arch.id}:{num_classes}"


def _latency(
    model: torch.nn.Module,
    space: SearchSpace,
    arch: Arch,
    input_shape: tuple[int, ...],
    num_classes: int,
    settings: EvalSettings,
) -> tuple[LatencyStats, bool]:
    """Cached stats, or a measurement under the node's exclusive lock (then cached)."""
    device = resolve_device(settings.latency_device or settings.device)
    key = model_key(space, arch, num_classes)
    clock = resolve_clock(
        device.type, settings.latency_clock, settings.latency_threads, settings.latency_cuda_graph
    )
    conditions: dict[str, Any] = {
        "device": str(device),
        "device_name": device_name(device),
        "batch_size": settings.latency_batch_size,
        "input_shape": input_shape,
        "threads": settings.latency_threads,
        "torch_version": torch.__version__,
        "clock": clock,
        "backend": settings.latency_backend,
    }
    cache = LatencyCache() if settings.latency_cache else None
    if cache is not None and (hit := cache.get(key, **conditions)) is not None:
        return hit, True
    with measurement_lock().exclusive(timeout=LOCK_TIMEOUT_S):
        if cache is not None and (hit := cache.get(key, **conditions)) is not None:
            return hit, True
        stats = measure_latency(
            model,
            input_shape,
            device=device,
            batch_size=settings.latency_batch_size,
            threads=settings.latency_threads,
            warmup=settings.latency_warmup,
            repeats=settings.latency_repeats,
            clock=settings.latency_clock,
            cuda_graph=settings.latency_cuda_graph,
            backend=settings.latency_backend,
        )
    if cache is not None:
        cache.put(key, stats, **conditions)
    return stats, False


def _label(arch: Arch) -> str:
    try:
        return f"arch {arch.id} ({arch.describe()})"
    except Exception:
        return f"arch {getattr(arch, 'id', '?')}"


def _why(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, NasError) else f"{type(exc).__name__}: {exc}"
