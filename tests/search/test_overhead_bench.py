"""bench/overhead.py end to end on a handful of trials: every part measures and reports."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "overhead.py"


@pytest.fixture(scope="module")
def overhead():
    spec = importlib.util.spec_from_file_location("overhead_bench", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_each_part_reports_a_row(overhead, ray_session, capsys) -> None:
    """Ray Tune's floor is left out: a Tune run of its own costs seconds more."""
    argv = ["--sizes", "2", "--slow", "--floor-sizes", "3", "--mlflow-runs", "2"]
    assert overhead.main([*argv, "--parts", "engine", "sampler", "optuna", "mlflow"]) == 0
    table = capsys.readouterr().out.split("| what |")[1]
    rows = [line for line in table.splitlines() if line.startswith("| ") and "---" not in line]
    labels = [row.split(" | ")[0].lstrip("| ") for row in rows]
    assert labels == [
        "run_search, 0-s trials",
        "default sampler alone, in memory",
        "default sampler alone, search's storage",
        "Optuna's default sampler, in memory",
        "MLflow, one child run",
    ]
    for row in rows:
        cells = row.split(" | ")
        assert re.fullmatch(r"-?\d+\.\d", cells[3]), row  # ms per trial


def test_sizes_are_chosen_on_the_command_line(overhead, capsys) -> None:
    assert overhead.main(["--sizes", "2", "4", "--parts", "sampler"]) == 0
    out = capsys.readouterr().out
    assert out.count("default sampler alone, in memory | 2 |") == 2  # printed, then tabled
    assert "default sampler alone, search's storage | 4 |" in out
    assert "run_search" not in out and "MLflow" not in out
