"""bench/fidelity.py end to end on four architectures: tables, rank correlations, reuse."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from bench_loader import bench_module


@pytest.fixture(scope="module")
def fidelity():
    with bench_module("fidelity") as module:
        yield module


ARGS = ["--space", "tiny", "--archs", "4", "--long", "2", "--jobs", "1"]
SETTINGS = ["--set", "dataset=synthetic", "--set", "epochs=1", "--set", "latency_repeats=3"]


def test_four_architectures_smoke_run(fidelity, tmp_path: Path, capsys) -> None:
    out = tmp_path / "figures.json"
    assert fidelity.main([*ARGS, *SETTINGS, "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "seeds 0 vs 1: Spearman" in printed and "default (seed mean) vs long" in printed
    figures = json.loads(out.read_text())
    assert figures["archs"] == 4
    rho, low, high = figures["seed0-seed1"]["spearman"]
    assert -1.0 <= low <= high <= 1.0 and -1.0 <= rho <= 1.0
    assert "spearman" in figures["default-vs-long"]
    assert 0.0 <= figures["accuracy_min"] <= figures["accuracy_max"] <= 1.0

    # a second run trains nothing: every row comes from the stored tables
    assert fidelity.main([*ARGS, *SETTINGS]) == 0
    assert "trained" not in capsys.readouterr().err


def test_random_architectures_are_distinct_and_repeatable(fidelity) -> None:
    from nas.space import load_space

    space = load_space("tiny")
    a = [arch.id for arch in fidelity.sample_archs(space, 12, seed=3)]
    b = [arch.id for arch in fidelity.sample_archs(space, 12, seed=3)]
    assert a == b and len(set(a)) == 12


def test_bad_settings_are_one_line_and_exit_2(fidelity, capsys) -> None:
    assert fidelity.main([*ARGS, "--set", "epochs=0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:")
