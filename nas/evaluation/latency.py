"""Inference latency of a model: warm-up, then timed single forward passes.

The model runs in eval mode under ``torch.inference_mode()`` on a fixed batch size, input
shape and CPU thread count. On CPU each pass is timed with ``time.perf_counter_ns``; on CUDA
with a pair of CUDA events around each pass and a synchronisation after it. The result holds
the median (the figure to compare), p90, p10, min and the coefficient of variation, and the
conditions they were measured under.
"""

from __future__ import annotations

import contextlib
import gc
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
from torch import nn

from nas.evaluation.errors import EvaluationError
from nas.evaluation.isolation import MeasurementLock
from nas.evaluation.runtime import cpu_threads, device_name, resolve_device
from nas.evaluation.stats import LatencyStats, summarize

__all__ = ["LatencyStats", "measure_latency", "summarize", "time_cpu", "time_cuda"]

DEFAULT_WARMUP = 10
DEFAULT_REPEATS = 60


def time_cpu(
    run: Callable[[], object],
    warmup: int,
    repeats: int,
    clock: Callable[[], int] = time.perf_counter_ns,
) -> list[float]:
    """Call `run` `warmup` times untimed, then `repeats` times; each duration in ms."""
    for _ in range(warmup):
        run()
    times = []
    for _ in range(repeats):
        start = clock()
        run()
        times.append((clock() - start) / 1e6)
    return times


def time_cuda(
    run: Callable[[], object], warmup: int, repeats: int, cuda: Any = None
) -> list[float]:
    """Like :func:`time_cpu` with CUDA events: record, run, record, synchronise, per pass.

    `cuda` is the ``torch.cuda`` module (injectable for tests).
    """
    cuda = torch.cuda if cuda is None else cuda
    for _ in range(warmup):
        run()
    cuda.synchronize()
    times = []
    for _ in range(repeats):
        start, end = cuda.Event(enable_timing=True), cuda.Event(enable_timing=True)
        start.record()
        run()
        end.record()
        end.synchronize()
        times.append(float(start.elapsed_time(end)))
    return times


def measure_latency(
    model: nn.Module,
    input_shape: Sequence[int],
    device: str | torch.device = "cpu",
    batch_size: int = 1,
    threads: int = 1,
    warmup: int = DEFAULT_WARMUP,
    repeats: int = DEFAULT_REPEATS,
    *,
    lock: MeasurementLock | None = None,
) -> LatencyStats:
    """Time `model` on a random (batch_size, *input_shape) input.

    The model is moved to `device` and put in eval mode for the measurement (its previous
    mode is restored). When `lock` is given the measurement holds it exclusive, pausing the
    cooperating training loops on this node.
    """
    if repeats < 1 or warmup < 0 or batch_size < 1 or threads < 1:
        raise ValueError("need repeats >= 1, warmup >= 0, batch_size >= 1, threads >= 1")
    target = resolve_device(device)
    shape = tuple(int(v) for v in input_shape)
    was_training = model.training
    try:
        model.to(target).eval()
        x = torch.randn((batch_size, *shape), generator=torch.Generator().manual_seed(0))
        x = x.to(target)

        def run() -> object:
            return model(x)

        hold = lock.exclusive() if lock is not None else contextlib.nullcontext()
        with cpu_threads(threads), torch.inference_mode(), _quiet(target), hold:
            if target.type == "cuda":
                times = time_cuda(run, warmup, repeats)
            else:
                times = time_cpu(run, warmup, repeats)
    except (ValueError, TimeoutError):
        raise
    except Exception as exc:
        raise EvaluationError(f"latency measurement failed: {type(exc).__name__}: {exc}") from exc
    finally:
        model.train(was_training)
    return LatencyStats(
        **summarize(times),
        repeats=repeats,
        warmup=warmup,
        device=str(target),
        device_name=device_name(target),
        threads=threads,
        batch_size=batch_size,
        input_shape=shape,
        torch_version=torch.__version__,
    )


@contextlib.contextmanager
def _quiet(device: torch.device) -> Iterator[None]:
    """No garbage collection pauses and no denormal slow paths while timing."""
    gc_was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    flushed = device.type == "cpu" and torch.set_flush_denormal(True)
    try:
        yield
    finally:
        if flushed:
            torch.set_flush_denormal(False)
        if gc_was_enabled:
            gc.enable()
