"""Confirmed fronts: candidates and seed summaries (pure), then searches on `tiny` whose best
trials are re-trained with more seeds by stand-in trial functions."""

from __future__ import annotations

import statistics
from collections import Counter
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import optuna
import pytest
from mlflow.tracking import MlflowClient
from search_helpers import seeded_trial_fn

from nas.pareto import pareto_front
from nas.search import SearchConfig, TrialRecord, load_search, run_search
from nas.search.attrs import ATTR, CANDIDATES
from nas.search.confirm import (
    Candidates,
    confirmed_front,
    read_outcomes,
    run_key,
    select_candidates,
    summarise,
    summarise_all,
)
from nas.search.store import get_storage
from nas.space import Arch

# --------------------------------------------------------------------------- pure


def _record(number: int, accuracy: float, latency: float, **kw: Any) -> TrialRecord:
    values = {"accuracy": accuracy, "latency_ms": latency}
    fields = {"state": "COMPLETE", "arch_id": f"a{number}", "values": values} | kw
    return TrialRecord(number=number, metrics=dict(values), **fields)


# (accuracy, latency) per trial; front: 0, 1, 2; second layer: 3, 4; third: 5.
POINTS = [(0.9, 3.0), (0.8, 2.0), (0.7, 1.0), (0.85, 3.5), (0.65, 1.5), (0.6, 4.0)]


@pytest.mark.parametrize(
    ("confirm_max", "confirm", "beyond_cap"),
    [
        (10, [0, 1, 2, 3, 4], []),  # the front, then the next layer; never the third
        (4, [0, 1, 2, 3], []),  # the next layer thinned from its best accuracy
        (3, [0, 1, 2], []),
        (2, [0, 2], [1]),  # a front too large: thinned evenly, both ends kept
        (1, [0], [1, 2]),
    ],
)
def test_candidates_are_the_front_then_the_next_layer(
    confirm_max: int, confirm: list[int], beyond_cap: list[int]
) -> None:
    records = [_record(i, a, lat) for i, (a, lat) in enumerate(POINTS)]
    config = SearchConfig(confirm_max=confirm_max)
    chosen = select_candidates(records, config)
    assert chosen == Candidates(confirm, beyond_cap)
    # Front members beyond the cap stay on the reported front, unconfirmed.
    summarised = summarise_all(records, chosen, {}, config)
    front = confirmed_front(summarised, chosen, config)
    assert [t.number for t in front] == [0, 1, 2]
    for number in beyond_cap:
        assert "not confirmed: the front has more than" in summarised[number].confirm_error


def test_candidates_skip_repeats_infeasible_and_unfinished_trials() -> None:
    records = [
        _record(0, 0.9, 3.0),
        _record(1, 0.9, 3.0, arch_id="a0"),  # a repeat of trial 0's architecture
        _record(2, 0.95, 1.0, feasible=False),
        TrialRecord(number=3, state="FAIL", error="boom"),
        _record(4, 0.7, 1.0),
    ]
    assert select_candidates(records, SearchConfig()) == Candidates([0, 4], [])


def test_summary_of_seeds_and_of_a_failed_run() -> None:
    record = _record(0, 0.9, 3.0).model_copy(update={"metrics": {"test_accuracy": 0.8}})
    runs = [{"accuracy": 0.8, "test_accuracy": 0.7}, {"accuracy": 0.7, "test_accuracy": 0.6}]
    done = summarise(record, runs)
    assert (done.confirmed, done.n_seeds, done.confirm_candidate) == (True, 3, True)
    assert done.accuracy_mean == pytest.approx(0.8)
    assert done.accuracy_sd == pytest.approx(0.1)
    assert done.test_accuracy == pytest.approx(0.7)
    assert done.values == record.values  # the trial's own result stays as Optuna has it

    partial = summarise(record, [runs[0], None])
    assert (partial.confirmed, partial.n_seeds) == (False, 2)

    failed = summarise(record, [runs[0], {"error": "RuntimeError: boom"}])
    assert (failed.confirmed, failed.n_seeds, failed.confirm_error) == (
        False,
        1,
        "RuntimeError: boom",
    )
    assert failed.accuracy_mean == 0.9 and failed.accuracy_sd is None
    assert failed.test_accuracy == 0.8


def test_single_seed_summary_without_confirmation() -> None:
    record = _record(0, 0.9, 3.0)
    assert (record.n_seeds, record.accuracy_mean, record.confirmed) == (1, 0.9, False)
    assert TrialRecord(number=1, state="FAIL").n_seeds == 0


def test_outcomes_are_read_back_by_trial_and_seed() -> None:
    attrs = {
        run_key(3, 1): {"accuracy": 0.5},
        run_key(3, -2): {"error": "x"},
        CANDIDATES: {"numbers": [3], "finished": 4},
        ATTR["config"]: {},
    }
    assert read_outcomes(attrs) == {(3, 1): {"accuracy": 0.5}, (3, -2): {"error": "x"}}


# --------------------------------------------------------------------------- searches


def _config(mlflow_uri: str, **kw: Any) -> SearchConfig:
    base = {"space": "tiny", "dataset": "synthetic", "budget": 8, "mlflow_uri": mlflow_uri}
    return SearchConfig(**(base | {"concurrency": 2, "confirm_seeds": 2, "confirm_max": 3} | kw))


def _calls(log: Path) -> Counter:
    if not log.exists():
        return Counter()
    return Counter(tuple(line.split()) for line in log.read_text().splitlines())


def _child_runs(uri: str, search_id: str) -> dict[int, Any]:
    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name("nas")
    runs = client.search_runs([exp.experiment_id], f"tags.`nas.search_id` = '{search_id}'")
    return {
        int(r.data.tags["nas.trial_number"]): r for r in runs if "nas.trial_number" in r.data.tags
    }


@pytest.mark.usefixtures("ray_session")
def test_confirmation_resumes_with_only_the_missing_runs(mlflow_uri: str, tmp_path: Path) -> None:
    """Stopped after its first confirmation run, the search resumes straight into
    confirmation, runs the other runs once each, and reports the front on seed means."""
    first_log, second_log = tmp_path / "first.txt", tmp_path / "second.txt"
    progress: list[Any] = []
    stop = {"now": False}

    def on_progress(p: Any) -> None:
        progress.append(p)
        stop["now"] = stop["now"] or p.confirm_done >= 1

    first = run_search(
        _config(mlflow_uri),
        trial_fn=seeded_trial_fn(str(first_log)),
        on_progress=on_progress,
        should_stop=lambda: stop["now"],
    )
    assert first.state == "cancelled"  # the budget is done, the confirmation is not
    assert sum(t.finished for t in first.trials) == 8
    confirming = [p for p in progress if p.phase == "confirming"]
    assert confirming and confirming[0].confirm_done == 0 and confirming[0].eta_s is not None
    total = confirming[0].confirm_total
    assert total == 2 * 3
    study = optuna.load_study(study_name=first.study_name, storage=get_storage())
    stored = read_outcomes(study.user_attrs)
    assert len(stored) == 1
    candidates = study.user_attrs[CANDIDATES]["numbers"]
    beyond = study.user_attrs[CANDIDATES]["beyond_cap"]  # front members over confirm_max
    assert len(candidates) == 3

    updates: list[TrialRecord] = []
    second = run_search(
        _config(mlflow_uri, concurrency=2),
        search_id=first.search_id,
        trial_fn=seeded_trial_fn(str(second_log)),
        on_trial=updates.append,
    )
    assert second.state == "completed"
    by_arch = {t.arch_id: t.number for t in second.trials}
    wanted = {(n, s) for n in candidates for s in (1, 2)} - set(stored)
    ran = _calls(second_log)
    assert all(count == 1 for count in ran.values())  # each missing run once, nothing else
    assert {(by_arch[a], int(s)) for a, s in ran} == wanted

    trial_calls = {(a, s) for a, s in _calls(first_log) if s == "0"}
    for number in candidates:
        t = second.trial(number)
        assert (t.confirm_candidate, t.confirmed, t.n_seeds, t.confirm_error) == (
            True,
            True,
            3,
            None,
        )
        assert (t.arch_id, "0") in trial_calls
        fn = seeded_trial_fn(str(tmp_path / "again.txt"))
        arch = Arch.from_dict(t.arch)
        seeds = [fn(None, arch, SimpleNamespace(seed=s)) for s in (0, 1, 2)]
        assert t.accuracy_mean == pytest.approx(statistics.fmean(m["accuracy"] for m in seeds))
        assert t.accuracy_sd == pytest.approx(statistics.stdev(m["accuracy"] for m in seeds))
        assert t.test_accuracy == pytest.approx(
            statistics.fmean(m["test_accuracy"] for m in seeds)
        )
        assert t.values["accuracy"] == pytest.approx(seeds[0]["accuracy"])  # Optuna's value
    for number in beyond:
        t = second.trial(number)
        assert (t.confirm_candidate, t.confirmed, t.n_seeds) == (True, False, 1)
        assert "confirm_max=3" in t.confirm_error
    pool = [second.trial(n) for n in candidates + beyond]
    others = [t for t in second.trials if t not in pool and t.state == "COMPLETE"]
    assert all(not t.confirm_candidate and t.n_seeds == 1 for t in others)

    # The front: non-dominated candidates on their seed means.
    rows = [[t.accuracy_mean, t.values["latency_ms"]] for t in pool]
    expected = sorted(pool[i].number for i in pareto_front(rows, ["maximize", "minimize"]))
    assert sorted(t.number for t in second.pareto) == expected
    assert load_search(second.search_id).model_dump() == second.model_dump()
    assert {u.number for u in updates if u.confirmed} == set(candidates)

    # MLflow: the seed summary on each candidate's child run; the front tagged on means.
    children = _child_runs(mlflow_uri, second.search_id)
    for number in candidates:
        data = children[number].data
        assert data.metrics["n_seeds"] == 3
        assert data.metrics["accuracy_mean"] == pytest.approx(second.trial(number).accuracy_mean)
        assert data.tags["confirmed"] == "true"
    front = {t.number for t in second.pareto}
    assert {n for n, r in children.items() if r.data.tags["pareto"] == "true"} == front

    # Resuming again runs nothing.
    third = run_search(
        _config(mlflow_uri), search_id=first.search_id, trial_fn=seeded_trial_fn(str(second_log))
    )
    assert third.state == "completed" and sum(_calls(second_log).values()) == len(wanted)


@pytest.mark.usefixtures("ray_session")
def test_failing_confirmation_keeps_the_single_seed_result(
    mlflow_uri: str, tmp_path: Path
) -> None:
    result = run_search(
        _config(mlflow_uri, budget=4, confirm_seeds=1),
        trial_fn=seeded_trial_fn(str(tmp_path / "log.txt"), fail_confirmations=True),
    )
    assert result.state == "completed"
    assert all(t.state == "COMPLETE" for t in result.trials)
    study = optuna.load_study(study_name=result.study_name, storage=get_storage())
    candidates = study.user_attrs[CANDIDATES]["numbers"]
    assert candidates and study.user_attrs[ATTR["state"]] == "completed"
    for number in candidates:
        t = result.trial(number)
        assert (t.confirmed, t.n_seeds, t.accuracy_sd) == (False, 1, None)
        assert "deliberate failure of seed 1" in t.confirm_error
        assert t.accuracy_mean == t.values["accuracy"]
        assert t.test_accuracy == t.metrics["test_accuracy"]
    rows = [[t.values["accuracy"], t.values["latency_ms"]] for t in result.trials]
    plain = pareto_front(rows, ["maximize", "minimize"])
    assert [t.number for t in result.pareto] == [result.trials[i].number for i in plain]
    children = _child_runs(mlflow_uri, result.search_id)
    assert {children[n].data.tags["confirmed"] for n in candidates} == {"false"}
