"""Latency: statistics, the CPU and CUDA timing logic (with fake clocks), conditions."""

from __future__ import annotations

import contextlib
import itertools
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from pydantic import ValidationError
from torch import nn

from nas.evaluation import (
    EvalSettings,
    EvaluationError,
    LatencyStats,
    MeasurementLock,
    measure_latency,
)
from nas.evaluation.latency import cuda_graph_replay, summarize, time_cpu, time_cuda


def test_summarize_from_definitions() -> None:
    stats = summarize([4.0, 1.0, 3.0, 2.0, 10.0])
    assert stats["median_ms"] == 3.0
    assert stats["min_ms"] == 1.0
    assert stats["mean_ms"] == 4.0
    # numpy's linear interpolation: p90 lies between 4 and 10 at 0.6
    assert stats["p90_ms"] == pytest.approx(4.0 + 0.6 * 6.0)
    assert stats["p10_ms"] == pytest.approx(1.4)
    sample_std = (sum((v - 4.0) ** 2 for v in [4, 1, 3, 2, 10]) / 4) ** 0.5
    assert stats["cv"] == pytest.approx(sample_std / 4.0)
    assert summarize([2.0])["cv"] == 0.0
    with pytest.raises(ValueError):
        summarize([])


def test_time_cpu_times_only_the_repeats() -> None:
    ticks = itertools.count(step=1_500_000)  # each clock read advances 1.5 ms
    calls = []
    times = time_cpu(lambda: calls.append(1), warmup=3, repeats=4, clock=lambda: next(ticks))
    assert len(calls) == 7
    assert times == [1.5, 1.5, 1.5, 1.5]


class _FakeCuda:
    """Stands in for ``torch.cuda``: a GPU clock that advances only when work runs."""

    def __init__(self) -> None:
        self.gpu_ms = 0.0
        self.pending = 0.0  # queued work not yet executed
        self.synchronized = 0

    def run(self, ms: float) -> None:
        self.pending += ms

    def synchronize(self) -> None:
        self.gpu_ms += self.pending
        self.pending = 0.0
        self.synchronized += 1

    def Event(self, enable_timing: bool = False):
        assert enable_timing
        cuda = self

        class Event:
            stamp: float | None = None
            done = False

            def record(self) -> None:
                self.stamp = cuda.gpu_ms + cuda.pending

            def synchronize(self) -> None:
                cuda.synchronize()
                self.done = True

            def elapsed_time(self, end: Event) -> float:
                if not end.done:
                    raise RuntimeError("end event not completed: synchronise first")
                assert self.stamp is not None and end.stamp is not None
                return end.stamp - self.stamp

        return Event()


def test_time_cuda_uses_events_and_synchronises() -> None:
    cuda = _FakeCuda()
    durations = iter([9.0, 9.0, 2.0, 3.0, 4.0])  # two warm-up passes, then three timed
    times = time_cuda(lambda: cuda.run(next(durations)), warmup=2, repeats=3, cuda=cuda)
    assert times == [2.0, 3.0, 4.0]
    assert cuda.synchronized >= 4  # after warm-up and after every timed pass


class _FakeGraphCuda:
    """The graph-capture part of ``torch.cuda``: records the calls, capture may fail."""

    def __init__(self, fail: bool) -> None:
        self.fail = fail
        self.log: list[str] = []
        cuda = self

        class Graph:
            def replay(self) -> None:
                cuda.log.append("replay")

        self.CUDAGraph = Graph

    def Stream(self) -> _FakeGraphCuda:
        return self

    def current_stream(self) -> _FakeGraphCuda:
        return self

    def wait_stream(self, other: object) -> None:
        self.log.append("wait")

    def synchronize(self) -> None:
        self.log.append("synchronize")

    @contextlib.contextmanager
    def stream(self, stream: object) -> Iterator[None]:
        self.log.append("side stream")
        yield
        self.log.append("main stream")

    @contextlib.contextmanager
    def graph(self, graph: object) -> Iterator[None]:
        self.log.append("capture")
        yield
        if self.fail:
            raise RuntimeError("operation not permitted when stream is capturing")
        self.log.append("captured")


def test_cuda_graph_replay_warms_up_on_a_side_stream_then_captures_one_pass() -> None:
    cuda = _FakeGraphCuda(fail=False)
    replay = cuda_graph_replay(lambda: cuda.log.append("run"), warmup=2, cuda=cuda)
    assert replay is not None
    expected = ["wait", "side stream", "run", "run", "main stream", "wait", "capture", "run"]
    assert cuda.log == [*expected, "captured"]
    replay()
    assert cuda.log[-1] == "replay"


def test_cuda_graph_replay_is_none_when_capture_fails() -> None:
    cuda = _FakeGraphCuda(fail=True)
    assert cuda_graph_replay(lambda: cuda.log.append("run"), warmup=1, cuda=cuda) is None
    assert cuda.log[-1] == "synchronize" and "captured" not in cuda.log


class _Probe(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.seen: list[tuple[bool, bool, tuple[int, ...], int]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(
            (
                self.training,
                torch.is_inference_mode_enabled(),
                tuple(x.shape),
                torch.get_num_threads(),
            )
        )
        return self.conv(x)


def test_measure_latency_conditions_and_modes() -> None:
    model = _Probe()
    threads_before = torch.get_num_threads()
    stats = measure_latency(model, (3, 10, 12), batch_size=2, threads=1, warmup=2, repeats=5)
    assert len(model.seen) == 7
    assert set(model.seen) == {(False, True, (2, 3, 10, 12), 1)}
    assert model.training  # restored
    assert torch.get_num_threads() == threads_before
    assert stats.repeats == 5 and stats.warmup == 2
    assert stats.device == "cpu" and stats.device_name
    assert (stats.threads, stats.batch_size, stats.input_shape) == (1, 2, (3, 10, 12))
    assert stats.torch_version == torch.__version__
    assert 0 < stats.min_ms <= stats.p10_ms <= stats.median_ms <= stats.p90_ms
    assert LatencyStats.from_dict(stats.to_dict()) == stats


def test_measure_latency_holds_the_lock_exclusive(tmp_path: Path) -> None:
    ours, trainer = MeasurementLock(tmp_path), MeasurementLock(tmp_path)  # two open files
    blocked = []

    class Spy(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            got = trainer.acquire_shared(timeout=0)
            if got:
                trainer.release_shared()
            blocked.append(not got)
            return x

    measure_latency(Spy(), (1, 2, 2), warmup=1, repeats=3, lock=ours)
    assert blocked == [True] * 4
    assert trainer.acquire_shared(timeout=0)
    trainer.release_shared()


def test_failures_are_evaluation_errors() -> None:
    class Boom(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            raise RuntimeError("boom")

    with pytest.raises(EvaluationError, match="RuntimeError: boom"):
        measure_latency(Boom(), (1, 2, 2), repeats=3)
    if not torch.cuda.is_available():
        with pytest.raises(EvaluationError, match="CUDA is not available"):
            measure_latency(nn.Identity(), (1, 2, 2), device="cuda", repeats=3)
    with pytest.raises(ValueError):
        measure_latency(nn.Identity(), (1, 2, 2), repeats=0)


class _Sleeper(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        time.sleep(0.02)  # waiting, like a thread that is preempted, costs no CPU time
        return x


def test_clock_choice() -> None:
    wall = measure_latency(_Sleeper(), (1, 2, 2), warmup=0, repeats=3, clock="wall")
    cpu = measure_latency(_Sleeper(), (1, 2, 2), warmup=0, repeats=3, clock="cpu")
    assert (wall.clock, cpu.clock) == ("wall", "cpu")
    assert wall.min_ms >= 20.0
    assert cpu.median_ms < 10.0
    assert measure_latency(nn.Identity(), (1, 2, 2), repeats=3).clock == "cpu"
    assert measure_latency(nn.Identity(), (1, 2, 2), threads=2, repeats=3).clock == "wall"
    with pytest.raises(ValueError, match="threads=1"):
        measure_latency(nn.Identity(), (1, 2, 2), threads=2, clock="cpu")
    with pytest.raises(ValidationError, match="latency_threads=1"):
        EvalSettings(latency_clock="cpu", latency_threads=2)


class _HostSync(nn.Module):
    """A forward pass that reads a value back to the host: cannot be captured in a graph."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * float(x.sum().item())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_latency_times_a_graph_replay_or_eager_passes() -> None:
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 8, 3))
    graph = measure_latency(model, (3, 16, 16), device="cuda", warmup=2, repeats=5)
    eager = measure_latency(model, (3, 16, 16), device="cuda", repeats=5, cuda_graph=False)
    fallback = measure_latency(_HostSync(), (3, 16, 16), device="cuda", repeats=5)
    assert (graph.clock, eager.clock, fallback.clock) == ("cuda-graph", "cuda", "cuda")
    assert graph.device.startswith("cuda") and graph.min_ms > 0
    assert fallback.min_ms > 0
    assert model.training
