"""Inference latency of a model: warm-up, then timed single forward passes.

The model runs in eval mode under ``torch.inference_mode()`` on a fixed batch size, input
shape and CPU thread count. On CUDA each pass is timed with a pair of CUDA events around it
and a synchronisation after it; by default the pass is the replay of a CUDA graph captured from
the forward pass (clock ``cuda-graph``): that is the network's own GPU time, without the
Python and kernel-launch overhead of eager PyTorch, which for a small network at batch 1
dominates the eager time and drifts with the host (``bench/cuda_latency.py`` on an H100: eager
medians of 16 architectures moved ~12% between rounds, Kendall tau between rounds ~0.6; graph
replays moved <0.5%, tau ~0.98). A model that cannot be captured is timed eagerly (clock
``cuda``).
On CPU the clock is either the wall clock
(``time.perf_counter_ns``) or, for a single-threaded measurement, the measuring thread's own
CPU time (``time.thread_time_ns``): on a shared machine a pass's wall time also counts the
time the thread waited for a core while other processes ran, which is noise from the
neighbours, not a property of the model; its CPU time is what the pass costs (``clock="auto"``
picks the CPU-time clock at one thread, the wall clock otherwise). The result holds the median
(the figure to compare), p90, p10, min and the coefficient of variation, and the conditions
they were measured under.

Backends: ``torch`` times the module itself; ``onnxruntime`` (CPU only, the ``[onnx]`` extra)
times the network exported to ONNX in an ONNX Runtime session
(:mod:`nas.evaluation.onnx_latency`), with the same protocol and clocks.
"""

from __future__ import annotations

import contextlib
import gc
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Literal

import torch
from torch import nn

from nas.evaluation.errors import EvaluationError
from nas.evaluation.isolation import MeasurementLock
from nas.evaluation.runtime import cpu_threads, device_name, resolve_device
from nas.evaluation.stats import LatencyStats, summarize

__all__ = [
    "LatencyStats",
    "check_backend",
    "cuda_graph_replay",
    "measure_latency",
    "resolve_clock",
    "summarize",
    "time_cpu",
    "time_cuda",
    "time_passes",
]

DEFAULT_WARMUP = 10
DEFAULT_REPEATS = 60


CLOCKS = {"wall": time.perf_counter_ns, "cpu": time.thread_time_ns}


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


def resolve_clock(device_type: str, clock: str, threads: int, cuda_graph: bool = True) -> str:
    """The clock a measurement asks for: ``cuda-graph`` (or ``cuda`` without the graph) on
    CUDA; on CPU ``cpu`` when asked or at one thread under ``auto``, else ``wall``."""
    if device_type == "cuda":
        return "cuda-graph" if cuda_graph else "cuda"
    return "cpu" if clock == "cpu" or (clock == "auto" and threads == 1) else "wall"


def cuda_graph_replay(
    run: Callable[[], object], warmup: int = 3, cuda: Any = None
) -> Callable[[], object] | None:
    """The replay of a CUDA graph captured from one call of `run`, or None if it can't be.

    `run` is called `warmup` times on a side stream first, as capture requires. A model with
    a host synchronisation or a data-dependent shape in its forward pass cannot be captured.
    `cuda` is the ``torch.cuda`` module (injectable for tests).
    """
    cuda = torch.cuda if cuda is None else cuda
    try:
        stream = cuda.Stream()
        stream.wait_stream(cuda.current_stream())
        with cuda.stream(stream):
            for _ in range(warmup):
                run()
        cuda.current_stream().wait_stream(stream)
        graph = cuda.CUDAGraph()
        with cuda.graph(graph):
            run()
    except RuntimeError:
        cuda.synchronize()
        return None
    return graph.replay


def time_passes(
    run: Callable[[], object],
    target: torch.device,
    threads: int,
    warmup: int,
    repeats: int,
    clock: str,
    *,
    cuda_graph: bool = True,
    lock: MeasurementLock | None = None,
) -> tuple[list[float], str]:
    """The timing protocol of :func:`measure_latency` around a prepared pass `run`: at
    `threads` threads, in inference mode, without garbage collection, holding `lock`
    exclusive; warm-up, then timed passes with `clock` (a resolved one, see
    :func:`resolve_clock`). Returns the timings in ms and the clock used."""
    hold = lock.exclusive() if lock is not None else contextlib.nullcontext()
    with cpu_threads(threads), torch.inference_mode(), _quiet(target), hold:
        if target.type == "cuda":
            replay = cuda_graph_replay(run) if cuda_graph else None
            times = time_cuda(replay or run, warmup, repeats)
            return times, "cuda-graph" if replay is not None else "cuda"
        return time_cpu(run, warmup, repeats, clock=CLOCKS[clock]), clock


def measure_latency(
    model: nn.Module,
    input_shape: Sequence[int],
    device: str | torch.device = "cpu",
    batch_size: int = 1,
    threads: int = 1,
    warmup: int = DEFAULT_WARMUP,
    repeats: int = DEFAULT_REPEATS,
    *,
    clock: Literal["auto", "wall", "cpu"] = "auto",
    cuda_graph: bool = True,
    lock: MeasurementLock | None = None,
    backend: Literal["torch", "onnxruntime"] = "torch",
) -> LatencyStats:
    """Time `model` on a random (batch_size, *input_shape) input.

    The model is moved to `device` and put in eval mode for the measurement (its previous
    mode is restored). `clock` (CPU only): ``"cpu"`` times the thread's CPU time, valid at
    one thread; ``"auto"`` uses it at one thread and the wall clock otherwise. `cuda_graph`
    (CUDA only): time the replay of a captured CUDA graph, falling back to eager passes for a
    model that cannot be captured; the stats' ``clock`` says which was timed. When `lock` is
    given the measurement holds it exclusive, pausing the cooperating training loops on this
    node. `backend` ``"onnxruntime"`` times the network exported to ONNX in an ONNX Runtime
    session on the CPU instead of the module (the export happens before the lock is taken).
    """
    if repeats < 1 or warmup < 0 or batch_size < 1 or threads < 1:
        raise ValueError("need repeats >= 1, warmup >= 0, batch_size >= 1, threads >= 1")
    if clock not in ("auto", "wall", "cpu"):
        raise ValueError(f"clock must be auto, wall or cpu, got {clock!r}")
    if clock == "cpu" and threads != 1:
        raise ValueError("the cpu clock counts one thread's time: use it with threads=1")
    target = resolve_device(device)
    check_backend(backend, target)
    clock_used = resolve_clock(target.type, clock, threads, cuda_graph)
    shape = tuple(int(v) for v in input_shape)
    was_training = model.training
    try:
        model.to(target).eval()
        x = torch.randn((batch_size, *shape), generator=torch.Generator().manual_seed(0))
        x = x.to(target)

        def run() -> object:
            return model(x)

        if backend == "onnxruntime":
            from nas.evaluation.onnx_latency import onnx_runner

            run = onnx_runner(model, x, threads)

        times, clock_used = time_passes(
            run, target, threads, warmup, repeats, clock_used, cuda_graph=cuda_graph, lock=lock
        )
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
        clock=clock_used,
        device=str(target),
        device_name=device_name(target),
        threads=threads,
        batch_size=batch_size,
        input_shape=shape,
        torch_version=torch.__version__,
        backend=backend,
    )


def check_backend(backend: str, device: str | torch.device = "cpu") -> None:
    """Fail fast on a latency backend that cannot run: ``onnxruntime`` needs the ``[onnx]``
    extra (a :class:`NasError` naming it) and measures on the CPU (a ``ValueError`` for
    another `device`). A search's preflight can call this so that no trial starts."""
    if backend == "torch":
        return
    if backend != "onnxruntime":
        raise ValueError(f"backend must be torch or onnxruntime, got {backend!r}")
    from nas.onnx_export import require_onnx

    require_onnx("latency_backend 'onnxruntime'")
    target = torch.device(device)
    if target.type != "cpu":
        raise ValueError(
            f"latency_backend 'onnxruntime' measures on the CPU, not {target}: "
            "set latency_device cpu"
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
