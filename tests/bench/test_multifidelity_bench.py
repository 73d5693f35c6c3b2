"""bench/multifidelity.py's replay on a made-up table of learning curves (no training)."""

from __future__ import annotations

from typing import Any

import pytest
from bench_loader import bench_module


@pytest.fixture(scope="module")
def bench() -> Any:
    with bench_module("multifidelity") as module:
        yield module


def test_replay_stops_trials_and_confirms_complete_ones_only(bench: Any) -> None:
    from nas.search.mo_asha import RungBook

    curves = bench.curves
    space = curves._space(curves.narrowed_space())
    archs = curves.all_archs(space)
    assert len(archs) == 50
    table = {  # accuracy rising to a level set by the arch's position; latency the reverse
        a.id: {
            "accuracy_per_epoch": [(0.5 + i / 200) * e / 9 for e in range(1, 10)],
            "epoch_seconds": [1.0] * 9,
            "latency_ms": 1.0 + (i % 7) / 10,
        }
        for i, a in enumerate(archs)
    }
    full = bench.replay(table, space, seed=0, budget=12, epochs=9, concurrency=2, book=None)
    asha = bench.replay(
        table, space, seed=0, budget=12, epochs=9, concurrency=2, book=RungBook([1, 3], 3)
    )
    assert full.pruned == 0 and len(full.complete) == 12
    trained = len({arch_id for arch_id, _, _ in full.complete.values()})
    assert full.epochs == 9 * trained  # repeats reuse a result: no epochs
    assert asha.pruned > 0 and len(asha.complete) + asha.pruned == 12
    assert asha.epochs < full.epochs and asha.wall_s < full.wall_s
    chosen = bench.candidates(asha, 10)
    assert chosen and set(chosen) <= set(asha.complete)
    ref = [0.0, 10.0]
    assert bench.confirmed_hypervolume(asha, chosen, [table], ref) > 0
