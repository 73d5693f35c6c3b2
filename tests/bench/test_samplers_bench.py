"""bench/samplers.py end to end on a few cheap trials: tables, confirmed fronts, reuse."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from bench_loader import bench_module

from nas.evaluation import EvalSettings


@pytest.fixture(scope="module")
def samplers():
    with bench_module("samplers") as module:
        yield module


ARGS = ["--space", "mobile", "--dataset", "synthetic", "--epochs", "1", "--jobs", "1"]
RUNS = ["--seeds", "0", "--budget", "2", "--random-budget", "3", "--samplers", "tpe"]
RUNS += ["--score-seeds", "2"]


def test_the_bench_trains_on_the_embedded_default(samplers) -> None:
    assert EvalSettings().dataset == samplers.DATASET


def test_a_small_run_scores_confirmed_fronts_and_reuses_its_tables(
    samplers, capsys, nas_home: Path
) -> None:
    assert samplers.main([*ARGS, *RUNS]) == 0
    out = capsys.readouterr().out
    assert "Hypervolume of the confirmed front of each run" in out
    confirmed = [line for line in out.splitlines() if line.startswith("confirmed tpe")]
    assert len(confirmed) == 1 and "[" in confirmed[0]

    seen = json.loads((nas_home / "bench" / "samplers-mobile-synthetic-1ep.json").read_text())
    held_out = json.loads(
        (nas_home / "bench" / "samplers-mobile-synthetic-1ep-seed1.json").read_text()
    )
    assert 1 <= len(held_out) <= len(seen) <= 5  # held-out seeds: the candidates only
    assert set(held_out) <= set(seen)

    assert samplers.main([*ARGS, *RUNS]) == 0  # a second run trains nothing
    assert "0 new evaluations" in capsys.readouterr().err


def test_confirmation_picks_what_a_search_confirms(samplers) -> None:
    trials = [("a", [0.9, 2.0]), ("b", [0.8, 1.0]), ("c", [0.7, 3.0]), ("a", [0.9, 2.0])]
    assert samplers.confirm_candidates(trials, "mobile") == ["a", "b", "c"]
    means = {"a": [0.7, 2.0], "b": [0.8, 1.0], "c": [0.75, 3.0]}
    assert samplers.confirmed_front(["a", "b", "c"], means) == [[0.8, 1.0]]
