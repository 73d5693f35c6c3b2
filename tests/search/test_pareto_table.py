"""The Pareto table lists each architecture once, naming the trials that repeated it."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from nas.commands._search_output import _collapse_repeats, print_records


def _record(number: int, arch_id: str | None, accuracy: float = 0.9) -> SimpleNamespace:
    return SimpleNamespace(
        number=number,
        arch_id=arch_id,
        arch=None,
        state="COMPLETE",
        interrupted=False,
        values={"accuracy": accuracy, "latency_ms": 1.0},
        feasible=True,
        error=None,
    )


def test_repeats_collapse_onto_the_first_trial_of_an_architecture() -> None:
    records = [
        _record(3, "a"),
        _record(5, "b"),
        _record(7, "a"),
        _record(9, "a"),
        _record(11, None),
    ]
    kept, repeats = _collapse_repeats(records)
    assert [r.number for r in kept] == [3, 5, 11]
    assert repeats == {3: [7, 9], 5: [], 11: []}


def test_pareto_table_counts_distinct_architectures(capsys: pytest.CaptureFixture[str]) -> None:
    records = [_record(1, "a"), _record(2, "a"), _record(4, "b", 0.95)]
    print_records(records, ["accuracy", "latency_ms"], "Pareto front", collapse=True)
    out = capsys.readouterr().out
    assert "(3 trials, 2 distinct architectures)" in out
    assert "same architecture as trial 2" in out
    lines = [line.split()[0] for line in out.splitlines()[3:] if line.strip()]
    assert lines == ["1", "4"]


def test_trials_table_keeps_every_trial(capsys: pytest.CaptureFixture[str]) -> None:
    records = [_record(1, "a"), _record(2, "a")]
    print_records(records, ["accuracy", "latency_ms"], "Trials")
    out = capsys.readouterr().out
    assert "(2 trials)" in out
    assert "same architecture" not in out
