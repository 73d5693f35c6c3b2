"""The latency cache: keyed by model and conditions, safe across processes."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

from nas.evaluation import LatencyCache, LatencyStats

STATS = LatencyStats(
    median_ms=1.5,
    p90_ms=1.8,
    p10_ms=1.4,
    min_ms=1.3,
    mean_ms=1.55,
    cv=0.04,
    repeats=60,
    warmup=10,
    device="cpu",
    device_name="Some CPU",
    threads=1,
    batch_size=1,
    input_shape=(3, 32, 32),
    torch_version="2.13.0",
)
CONDITIONS = {
    "device": "cpu",
    "device_name": "Some CPU",
    "batch_size": 1,
    "input_shape": (3, 32, 32),
    "threads": 1,
    "torch_version": "2.13.0",
    "clock": "wall",
}


def test_round_trip_and_keys(nas_home: Path) -> None:
    cache = LatencyCache()
    assert cache.path.parent == nas_home
    assert cache.get("m1", **CONDITIONS) is None
    cache.put("m1", STATS)
    assert cache.get("m1", **CONDITIONS) == STATS
    assert cache.get("m2", **CONDITIONS) is None
    for field, value in [
        ("threads", 2),
        ("batch_size", 8),
        ("input_shape", (3, 16, 16)),
        ("device", "cuda:0"),
        ("device_name", "Other CPU"),
        ("torch_version", "2.4.0"),
        ("clock", "cpu"),
    ]:
        assert cache.get("m1", **{**CONDITIONS, field: value}) is None, field
    cache.put("m1", replace(STATS, median_ms=9.0))  # the first measurement stays
    assert cache.get("m1", **CONDITIONS) == STATS
    cache.put("m1", replace(STATS, threads=2))
    assert len(cache) == 2
    assert LatencyCache().get("m1", **{**CONDITIONS, "threads": 2}) == replace(STATS, threads=2)


def test_a_fallback_is_stored_under_the_conditions_asked_for() -> None:
    cache = LatencyCache()
    asked = {**CONDITIONS, "device": "cuda:0", "clock": "cuda-graph"}
    eager = replace(STATS, device="cuda:0", clock="cuda")  # the graph could not be captured
    cache.put("m1", eager, **asked)
    assert cache.get("m1", **asked) == eager
    assert cache.get("m1", **{**asked, "clock": "cuda"}) is None


_WRITER = """
import sys
from dataclasses import replace
from nas.evaluation.cache import LatencyCache
from nas.evaluation.stats import LatencyStats
stats = LatencyStats(1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 5, 1, "cpu", "x", 1, 1, (1, 2, 2), "t")
cache = LatencyCache(sys.argv[1])
for i in range(25):
    cache.put(f"{sys.argv[2]}-{i}", replace(stats, median_ms=float(i)))
    cache.put(f"shared-{i}", stats)
"""


def test_concurrent_processes(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite"
    procs = [
        subprocess.Popen([sys.executable, "-c", _WRITER, str(path), f"p{n}"]) for n in range(3)
    ]
    assert [p.wait(timeout=60) for p in procs] == [0, 0, 0]
    cache = LatencyCache(path)
    assert len(cache) == 3 * 25 + 25
    conditions = {**CONDITIONS, "device_name": "x", "input_shape": (1, 2, 2), "torch_version": "t"}
    assert cache.get("p1-7", **conditions).median_ms == 7.0  # type: ignore[union-attr]
