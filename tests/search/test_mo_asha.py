"""The mo-asha promotion rule on hand-made rung tables, and its scheduler's decisions."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import optuna
import pytest
from ray.tune.schedulers import TrialScheduler

from nas.search.attrs import ATTR
from nas.search.mo_asha import (
    MoAshaScheduler,
    RungBook,
    RungEntry,
    book_from_trials,
    promoted,
    ranked,
    rung_epochs,
)
from nas.search.trainable import EPOCH, PARTIAL


def _table(*rows: tuple[float, float]) -> list[RungEntry]:
    """Entries keyed 0, 1, ... from (accuracy, latency_ms) rows."""
    return [RungEntry(i, acc, lat) for i, (acc, lat) in enumerate(rows)]


@pytest.mark.parametrize(
    ("rows", "key", "eta", "expected"),
    [
        # alone at the rung: always continues
        ([(0.5, 9.0)], 0, 3, True),
        # fewer than eta entries: only the best continues (k = ceil(2/3) = 1)
        ([(0.9, 1.0), (0.8, 2.0)], 1, 3, False),
        ([(0.8, 2.0), (0.9, 1.0)], 1, 3, True),
        # dominated stops, non-dominated promotes (k = 1 of 3)
        ([(0.9, 1.0), (0.7, 2.0), (0.6, 3.0)], 0, 3, True),
        ([(0.9, 1.0), (0.7, 2.0), (0.6, 3.0)], 2, 3, False),
        # latency-only difference: equal accuracy, the faster dominates
        ([(0.8, 1.0), (0.8, 1.5), (0.8, 2.0)], 0, 3, True),
        ([(0.8, 1.0), (0.8, 1.5), (0.8, 2.0)], 1, 3, False),
        # accuracy-only difference at equal latency
        ([(0.7, 1.0), (0.9, 1.0), (0.8, 1.0)], 1, 3, True),
        ([(0.7, 1.0), (0.9, 1.0), (0.8, 1.0)], 2, 3, False),
        # exact tie: the earlier trial goes first
        ([(0.8, 1.0), (0.8, 1.0)], 0, 2, True),
        ([(0.8, 1.0), (0.8, 1.0)], 1, 2, False),
        # k = ceil(4/3) = 2: a second-front member does not pass a two-member front
        ([(0.9, 2.0), (0.7, 1.0), (0.8, 2.5), (0.6, 1.5)], 2, 3, False),
        ([(0.9, 2.0), (0.7, 1.0), (0.8, 2.5), (0.6, 1.5)], 1, 3, True),
        # eta = 2 on 4 entries: the top two
        ([(0.9, 1.0), (0.8, 1.1), (0.7, 1.2), (0.6, 1.3)], 1, 2, True),
        ([(0.9, 1.0), (0.8, 1.1), (0.7, 1.2), (0.6, 1.3)], 2, 2, False),
    ],
)
def test_promotion_rule(
    rows: list[tuple[float, float]], key: int, eta: int, expected: bool
) -> None:
    assert promoted(_table(*rows), key, eta) is expected


def test_tie_break_spreads_along_the_front() -> None:
    # One front of five, evenly spaced but with a near-duplicate of the accurate end:
    # the net takes the accurate end, then the fast end, then the middle.
    front = _table((0.90, 4.0), (0.89, 3.9), (0.80, 2.0), (0.70, 1.0), (0.85, 3.0))
    assert [e.key for e in ranked(front)][:3] == [0, 3, 2]
    assert promoted(front, 3, 3)  # k = 2: both ends
    assert not promoted(front, 1, 3)  # next to a chosen point


def test_noise_margin_promotes_entries_within_it() -> None:
    table = _table((0.90, 1.0), (0.88, 1.0), (0.70, 1.0))
    assert not promoted(table, 1, 3)
    assert promoted(table, 1, 3, margin=0.03)
    assert not promoted(table, 2, 3, margin=0.03)


def test_unknown_key_is_an_error() -> None:
    with pytest.raises(ValueError, match="trial 7"):
        promoted(_table((0.5, 1.0)), 7, 3)


@pytest.mark.parametrize(
    ("min_epochs", "eta", "epochs", "expected"),
    [(1, 3, 9, [1, 3]), (1, 3, 10, [1, 3, 9]), (2, 2, 9, [2, 4, 8]), (3, 3, 3, []), (1, 2, 1, [])],
)
def test_rungs_lie_below_the_full_epochs(
    min_epochs: int, eta: int, epochs: int, expected: list[int]
) -> None:
    assert rung_epochs(min_epochs, eta, epochs) == expected


def _result(number: int, epoch: int, accuracy: float, latency: float) -> dict[str, Any]:
    return {
        "nas_number": number,
        EPOCH: epoch,
        PARTIAL: True,
        "accuracy": accuracy,
        "latency_ms": latency,
    }


def test_scheduler_stops_only_at_rungs_and_reports_decisions() -> None:
    decisions: list[tuple[int, int, bool]] = []
    scheduler = MoAshaScheduler(
        RungBook([1, 3], eta=3), lambda n, e, entry, keep: decisions.append((n, e, keep))
    )
    trial = SimpleNamespace(trial_id="t")
    go, stop = TrialScheduler.CONTINUE, TrialScheduler.STOP
    assert scheduler.on_trial_result(None, trial, _result(0, 1, 0.9, 1.0)) == go
    assert scheduler.on_trial_result(None, trial, _result(1, 1, 0.5, 2.0)) == stop
    assert scheduler.on_trial_result(None, trial, _result(1, 2, 0.1, 9.0)) == go  # no rung
    final = _result(1, 9, 0.1, 9.0) | {PARTIAL: False}
    assert scheduler.on_trial_result(None, trial, final) == go
    assert decisions == [(0, 1, True), (1, 1, False)]


def test_resumed_book_keeps_the_earlier_rung_tables() -> None:
    study = optuna.create_study(directions=["maximize", "minimize"])
    for number, (acc, lat) in enumerate([(0.9, 1.0), (0.85, 1.1), (0.8, 0.9)]):
        trial = study.ask()
        trial.set_user_attr(ATTR["rungs"], {"1": [acc, lat]})
        if number:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        else:
            study.tell(trial, [acc, lat])
    book = book_from_trials(study.get_trials(deepcopy=False), [1, 3], eta=3)
    assert sorted(book.tables[1]) == [0, 1, 2] and book.tables[3] == {}
    # A new, dominated trial: first at an empty rung it would continue; here it stops.
    assert RungBook([1, 3], eta=3).decide(1, RungEntry(3, 0.7, 1.2))
    assert not book.decide(1, RungEntry(3, 0.7, 1.2))
