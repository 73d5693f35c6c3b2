"""The onnxruntime latency backend: same protocol as torch, cached apart, a clear error
without the [onnx] extra."""

from __future__ import annotations

import sys

import pytest
import torch
from torch import nn

from nas.errors import NasError
from nas.evaluation import EvalSettings, LatencyCache, evaluate, measure_latency
from nas.evaluation.cache import cache_key, runtime_version
from nas.evaluation.evaluator import model_key
from nas.evaluation.latency import check_backend
from nas.evaluation.runtime import device_name
from nas.space import default_arch, load_space

SHAPE = (3, 16, 16)
CONDITIONS = {
    "device": "cpu",
    "device_name": "x",
    "batch_size": 1,
    "input_shape": SHAPE,
    "threads": 1,
    "torch_version": "2.13.0",
    "clock": "cpu",
}


def _net() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.BatchNorm2d(8))


@pytest.mark.parametrize(("threads", "clock"), [(1, "cpu"), (2, "wall")])
def test_onnxruntime_backend_times_the_exported_network(threads: int, clock: str) -> None:
    model = _net().train()
    stats = measure_latency(
        model, SHAPE, batch_size=2, threads=threads, warmup=1, repeats=5, backend="onnxruntime"
    )
    assert stats.backend == "onnxruntime" and stats.clock == clock
    assert (stats.repeats, stats.batch_size, stats.threads) == (5, 2, threads)
    assert 0 < stats.min_ms <= stats.median_ms <= stats.p90_ms
    assert model.training  # its mode is restored
    assert measure_latency(model, SHAPE, warmup=0, repeats=3).backend == "torch"


def test_unknown_backend_is_refused() -> None:
    with pytest.raises(ValueError, match="backend must be torch or onnxruntime"):
        measure_latency(_net(), SHAPE, backend="tvm")  # type: ignore[arg-type]


@pytest.mark.parametrize("module", ["onnxruntime", "onnx"])
def test_missing_extra_is_one_clear_error(module: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # import fails as if not installed
    with pytest.raises(NasError, match=r"needs the \[onnx\] extra .*; " + module) as caught:
        measure_latency(_net(), SHAPE, warmup=0, repeats=3, backend="onnxruntime")
    assert not isinstance(caught.value, ImportError)
    assert "\n" not in str(caught.value)


def test_cache_keys_apart_by_backend_and_runtime() -> None:
    torch_key, torch_conditions = cache_key("m", **CONDITIONS)
    assert cache_key("m", **CONDITIONS, backend="torch")[0] == torch_key  # keys from before
    assert "backend" not in torch_conditions
    ort_key, ort_conditions = cache_key("m", **CONDITIONS, backend="onnxruntime")
    assert ort_key != torch_key
    assert runtime_version("onnxruntime") in ort_conditions
    assert "opset 17" in runtime_version("onnxruntime") and runtime_version("torch") == ""


def test_evaluate_measures_and_caches_onnxruntime_latency() -> None:
    space = load_space("tiny")
    arch = default_arch(space, "se")
    base = {
        "dataset": "synthetic",
        "epochs": 1,
        "max_samples": 96,
        "device": "cpu",
        "latency_warmup": 1,
        "latency_repeats": 5,
    }
    ort = EvalSettings(**base, latency_backend="onnxruntime")
    metrics = evaluate(space, arch, ort)
    assert metrics["latency_cached"] == 0 and metrics["latency_ms"] > 0
    assert evaluate(space, arch, ort)["latency_cached"] == 1
    # torch is measured apart, not answered from the onnxruntime entry
    assert evaluate(space, arch, EvalSettings(**base))["latency_cached"] == 0
    key = model_key(space, arch, int(metrics["num_classes"]))
    conditions = {
        **CONDITIONS,
        "input_shape": tuple(space.input_shape),
        "device_name": device_name(torch.device("cpu")),
        "torch_version": torch.__version__,
    }
    cached = LatencyCache().get(key, **conditions, backend="onnxruntime")
    assert cached is not None and cached.backend == "onnxruntime"
    assert cached.median_ms == metrics["latency_ms"]


def test_check_backend_fails_fast(monkeypatch: pytest.MonkeyPatch) -> None:
    check_backend("torch", "cuda")  # torch measures anywhere
    check_backend("onnxruntime", "cpu")
    with pytest.raises(ValueError, match="measures on the CPU, not cuda: set latency_device"):
        check_backend("onnxruntime", "cuda")
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(NasError, match=r"latency_backend 'onnxruntime' needs the \[onnx\] extra"):
        check_backend("onnxruntime")
