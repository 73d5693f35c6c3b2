"""End-to-end searches on the `tiny` space with stand-in trial functions (fast, no training)."""

from __future__ import annotations

import json
import socket
import uuid
from pathlib import Path
from typing import Any

import optuna
import pytest
from mlflow.tracking import MlflowClient
from search_helpers import counting_trial_fn, make_trial_fn

from nas.pareto import pareto_front
from nas.search import (
    SearchConfig,
    SearchNotFound,
    TrialNotFound,
    list_searches,
    load_search,
    run_search,
    searcher,
)
from nas.search.attrs import ATTR
from nas.search.searcher import ahead_pays
from nas.search.store import get_storage

pytestmark = pytest.mark.usefixtures("ray_session")


def _config(mlflow_uri: str, **kw: Any) -> SearchConfig:
    base = {"space": "tiny", "dataset": "synthetic", "budget": 6, "mlflow_uri": mlflow_uri}
    return SearchConfig(**(base | {"confirm_seeds": 0} | kw))  # confirmation: test_confirm.py


def _expected_front(result: Any) -> list[int]:
    done = [t for t in result.trials if t.state == "COMPLETE"]
    rows = [[t.values[o] for o in result.config.objectives] for t in done]
    idx = pareto_front(rows, result.config.directions(), [t.feasible for t in done])
    return sorted(done[i].number for i in idx)


def _runs(uri: str, search_id: str) -> list[Any]:
    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name("nas")
    return client.search_runs([exp.experiment_id], f"tags.`nas.search_id` = '{search_id}'")


def test_search_end_to_end(mlflow_uri: str, trial_fn: Any) -> None:
    seen: list[int] = []
    progress: list[Any] = []
    result = run_search(
        _config(mlflow_uri, concurrency=2),
        search_id="sgiven0001",  # an unknown id starts a new search under it (the service's way)
        trial_fn=trial_fn,
        on_trial=lambda r: seen.append(r.number),
        on_progress=progress.append,
    )
    assert result.state == "completed"
    assert result.search_id == "sgiven0001"
    import ray

    node = ray.get_runtime_context().get_node_id()  # one local node: the driver's
    assert [t.number for t in result.trials] == list(range(6))
    assert sorted(seen) == list(range(6))
    assert all(t.state == "COMPLETE" for t in result.trials)
    for t in result.trials:
        assert set(t.values) == {"accuracy", "latency_ms"}
        assert t.values["accuracy"] == t.metrics["accuracy"]
        assert t.arch is not None and t.arch_id and t.params["stage0.attention"]
        assert t.metrics["ray_node_id"] == node  # where the trial ran
        assert t.metrics["hostname"] == socket.gethostname()
    assert [t.number for t in result.pareto] == _expected_front(result)
    for t in result.pareto:  # without confirmation: the trial's own seed
        assert (t.confirmed, t.confirm_candidate, t.n_seeds) == (False, False, 1)
        assert t.accuracy_mean == t.values["accuracy"] and t.accuracy_sd is None
    assert [p.done for p in progress] == list(range(1, 7))
    assert {p.phase for p in progress} == {"trials"}
    with pytest.raises(TrialNotFound, match="no trial 6"):
        result.trial(6)
    assert progress[-1].front_size == len(result.pareto)

    # Read back from storage, by another function, as the CLI and the service do.
    again = load_search(result.search_id)
    assert again.model_dump() == result.model_dump()
    listed = {s["search_id"]: s for s in list_searches()}
    assert listed[result.search_id]["complete"] == 6
    assert listed[result.search_id]["state"] == "completed"

    # One Optuna study per search, with named objectives, readable by optuna-dashboard.
    study = optuna.load_study(study_name=result.study_name, storage=get_storage())
    assert study.metric_names == ["accuracy", "latency_ms"]
    assert study.user_attrs[ATTR["id"]] == result.search_id
    # A trial may be asked ahead of its start: it starts on its worker after being asked.
    asked = {t.number: t.datetime_start for t in study.trials}
    for t in result.trials:
        assert asked[t.number] <= t.started_at <= t.finished_at

    # MLflow: a parent run and one nested child run per trial, Pareto members tagged.
    runs = _runs(mlflow_uri, result.search_id)
    parent = [r for r in runs if r.info.run_id == result.mlflow_run_id]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == result.mlflow_run_id]
    assert len(parent) == 1 and parent[0].info.status == "FINISHED"
    assert "version.optuna" in parent[0].data.params
    assert len(children) == 6
    front = {t.number for t in result.pareto}
    client = MlflowClient(tracking_uri=mlflow_uri)
    for child in children:
        number = int(child.data.tags["nas.trial_number"])
        assert child.data.tags["pareto"] == ("true" if number in front else "false")
        assert (
            child.data.params["stage0.attention"]
            == result.trials[number].params["stage0.attention"]
        )
        assert child.data.metrics["latency_ms"] == pytest.approx(
            result.trials[number].values["latency_ms"]
        )
        assert child.data.tags["nas.ray_node_id"] == node
        assert child.data.tags["nas.hostname"] == socket.gethostname()
        assert "ray_node_id" not in child.data.metrics
        history = client.get_metric_history(child.info.run_id, "epoch_accuracy")
        assert [m.step for m in history] == [0, 1]
    arch_path = client.download_artifacts(children[0].info.run_id, "arch.json")
    number = int(children[0].data.tags["nas.trial_number"])
    assert json.loads(Path(arch_path).read_text()) == result.trials[number].arch
    names = {a.path for a in client.list_artifacts(result.mlflow_run_id)}
    assert {"pareto.json", "pareto.png", "trials.csv", "space.json"} <= names
    pareto_json = json.loads(
        Path(client.download_artifacts(result.mlflow_run_id, "pareto.json")).read_text()
    )
    assert sorted(p["number"] for p in pareto_json) == sorted(front)


def test_failing_trials_are_recorded_and_the_search_goes_on(mlflow_uri: str) -> None:
    """Also: objectives other than the default, and the latency budget as a constraint."""
    trial_fn = make_trial_fn(raise_on=("se",), nan_on=("eca",), exit_on=("cbam",))
    result = run_search(
        _config(
            mlflow_uri,
            budget=10,
            sampler="random",
            seed=0,
            concurrency=2,
            objectives=["accuracy", "params", "flops"],
            max_latency_ms=1.8,
        ),
        trial_fn=trial_fn,
    )
    assert result.state == "completed"
    assert len(result.trials) == 10
    for t in result.trials:
        first = t.params["stage0.attention"]
        if first in ("none", "ca"):
            assert t.state == "COMPLETE" and t.error is None
        else:
            assert t.state == "FAIL" and not t.interrupted
            assert t.values == {}
            expected = {
                "se": "deliberate failure",
                "eca": "'accuracy' is nan",
                "cbam": "Ray worker failed",
            }[first]
            assert expected in t.error
            # A failed trial still says where it ran, unless its worker died with it.
            assert ("hostname" in t.metrics) == (first != "cbam"), t.metrics
    seen = {t.params["stage0.attention"] for t in result.trials}
    assert {"se", "eca", "cbam"} <= seen, f"seed 0 no longer samples every failure: {seen}"
    complete = [t for t in result.trials if t.state == "COMPLETE"]
    for t in complete:
        assert set(t.values) == {"accuracy", "params", "flops"}
        assert t.feasible == (t.metrics["latency_ms"] <= 1.8)
    assert {t.feasible for t in complete} == {True, False}  # the constraint bites
    assert all(t.feasible for t in result.pareto)
    assert [t.number for t in result.pareto] == _expected_front(result)
    study = optuna.load_study(study_name=result.study_name, storage=get_storage())
    assert not [t for t in study.trials if t.state.name in ("RUNNING", "WAITING")]
    for t in study.trials:
        assert set(t.constraints) == ({"latency_ms"} if t.state.name == "COMPLETE" else set())
    runs = {
        r.data.tags["nas.trial_number"]: r
        for r in _runs(mlflow_uri, result.search_id)
        if "nas.trial_number" in r.data.tags
    }
    for t in result.trials:
        status = "FINISHED" if t.state == "COMPLETE" else "FAILED"
        assert runs[str(t.number)].info.status == status
    assert all(p.state == "COMPLETE" for p in result.pareto)


def test_stopped_search_resumes_to_budget(mlflow_uri: str, trial_fn: Any) -> None:
    finished: list[int] = []

    def on_trial(record: Any) -> None:
        finished.append(record.number)

    first = run_search(
        _config(mlflow_uri, budget=7, concurrency=2),
        trial_fn=trial_fn,
        on_trial=on_trial,
        should_stop=lambda: len(finished) >= 3,
    )
    assert first.state == "cancelled"
    # As if stored before `latency_device` existed: the resume must still load it.
    study = optuna.load_study(study_name=first.study_name, storage=get_storage())
    stored = dict(study.user_attrs[ATTR["config"]])
    del stored["latency_device"]
    study.set_user_attr(ATTR["config"], stored)
    assert load_search(first.search_id).config.latency_device is None
    kept = {t.number: t for t in first.trials if t.finished}
    assert 3 <= len(kept) < 7
    assert all(t.state in ("COMPLETE", "FAIL") for t in first.trials)  # none left RUNNING

    second = run_search(
        _config(mlflow_uri, budget=7, concurrency=2), search_id=first.search_id, trial_fn=trial_fn
    )
    assert second.state == "completed"
    assert second.search_id == first.search_id
    assert second.mlflow_run_id == first.mlflow_run_id
    done = [t for t in second.trials if t.finished]
    assert len(done) == 7  # to the budget: none lost, none extra
    numbers = [t.number for t in second.trials]
    assert len(numbers) == len(set(numbers))
    for number, before in kept.items():  # finished trials are kept as they were
        assert second.trials[number].model_dump() == before.model_dump()
    interrupted = [t for t in second.trials if t.interrupted]
    assert all(t.state == "FAIL" for t in interrupted)
    assert len(second.trials) == 7 + len(interrupted)

    # The MLflow parent run was reused: one child run per finished trial under it.
    runs = _runs(mlflow_uri, first.search_id)
    parents = [r for r in runs if "nas.trial_number" not in r.data.tags]
    children = [r for r in runs if "nas.trial_number" in r.data.tags]
    assert len(parents) == 1
    assert sorted(int(r.data.tags["nas.trial_number"]) for r in children) == sorted(
        t.number for t in done
    )

    # Resuming a finished search runs nothing more.
    third = run_search(
        _config(mlflow_uri, budget=7, concurrency=2), search_id=first.search_id, trial_fn=trial_fn
    )
    assert third.model_dump(exclude={"state"}) == second.model_dump(exclude={"state"})


@pytest.mark.postgres
def test_search_on_postgresql(mlflow_uri: str, trial_fn: Any) -> None:
    url = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
    try:
        storage = get_storage(url)
    except Exception as exc:  # pragma: no cover - depends on the machine
        pytest.skip(f"PostgreSQL not reachable: {exc}")
    name = f"pgtest-{uuid.uuid4().hex[:8]}"
    result = None
    try:
        result = run_search(
            _config(mlflow_uri, budget=4, storage=url, name=name, sampler="nsga2"),
            trial_fn=trial_fn,
        )
        assert result.state == "completed"
        assert result.study_name.startswith(name)
        assert len([t for t in result.trials if t.state == "COMPLETE"]) == 4
        again = load_search(result.search_id, storage=url)
        assert again.model_dump() == result.model_dump()
        assert result.search_id in {s["search_id"] for s in list_searches(url)}
        with pytest.raises(SearchNotFound):
            load_search(result.search_id)  # not in the workspace SQLite
    finally:
        if result is not None:
            optuna.delete_study(study_name=result.study_name, storage=storage)


TWO_ARCHS = {  # an inline space with two architectures: a sampler must repeat itself
    "name": "two",
    "backbone": "mobilenet_v2",
    "input_shape": [1, 8, 8],
    "small_input": True,
    "stem_width": 8,
    "head_width": 16,
    "stages": [
        {"width": 8, "depth": 1, "stride": 1, "expansion": 2, "kernel": 3,
         "attention": ["none", "se"], "hparams": {"se": {"reduction": [4]}}},
    ],
}  # fmt: skip


def test_repeated_architecture_reuses_its_result(mlflow_uri: str, tmp_path: Path) -> None:
    calls = tmp_path / "calls.txt"
    result = run_search(
        _config(mlflow_uri, space=TWO_ARCHS, budget=5, concurrency=1, sampler="random"),
        trial_fn=counting_trial_fn(str(calls)),
    )
    assert result.state == "completed" and len(result.trials) == 5
    trained = calls.read_text().split()
    assert sorted(trained) == sorted(set(trained))  # each architecture trained once
    assert len({t.arch_id for t in result.trials}) == len(trained)
    reused = [t for t in result.trials if "reused_from_trial" in t.metrics]
    assert len(reused) == 5 - len(trained)
    for t in reused:
        source = result.trial(t.metrics["reused_from_trial"])
        assert source.arch_id == t.arch_id and source.values == t.values
        assert t.metrics["ray_node_id"] and t.metrics["hostname"] == socket.gethostname()
    assert result.config.space == TWO_ARCHS


def test_proposes_ahead_only_while_it_pays() -> None:
    assert ahead_pays(0.1, None)  # no trial finished yet
    assert ahead_pays(0.1, 1.0)  # a proposal is 10% of a 1-second trial
    assert not ahead_pays(0.1, 10.0)  # 1% of a 10-second trial: wait for every result


def test_search_that_does_not_propose_ahead(
    mlflow_uri: str, trial_fn: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(searcher, "AHEAD_FRACTION", float("inf"))
    result = run_search(_config(mlflow_uri, budget=5, concurrency=2), trial_fn=trial_fn)
    assert result.state == "completed"
    assert [t.number for t in result.trials] == list(range(5))
    assert all(t.state == "COMPLETE" and t.started_at <= t.finished_at for t in result.trials)


def test_unknown_search() -> None:
    with pytest.raises(SearchNotFound, match="snope"):
        load_search("snope")
