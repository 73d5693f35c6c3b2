"""What a user sees of a search in MLflow: the experiment opens on its runs, trial runs are
named by trial and architecture, carry only the columns a user compares, and one address lists
a search's trials."""

from __future__ import annotations

import io
import json
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from mlflow.tracking import MlflowClient
from PIL import Image

from nas.search.records import TrialRecord
from nas.space import default_arch, load_space
from nas.tracking import (
    COMPARED_METRICS,
    EXPERIMENT,
    EXPERIMENT_KIND,
    SearchTracker,
    trial_run_name,
)
from nas.tracking_links import results_hint, runs_url

ARCH = default_arch(load_space("tiny"))
METRICS = {
    "accuracy": 0.75,
    "accuracy_per_epoch": [0.5, 0.75],
    "loss": 0.4,
    "loss_per_epoch": [0.9, 0.4],
    "latency_ms": 1.5,
    "latency_p90_ms": 1.8,
    "latency_cached": True,
    "params": 1234,
    "flops": 5678,
    "epochs": 2,
    "num_classes": 10,
    "train_samples": 100,
    "val_samples": 20,
    "hostname": "host-a",
}


@pytest.fixture(scope="module")
def uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"


def _record(number: int, **kw: Any) -> TrialRecord:
    now = datetime.now()
    base: dict[str, Any] = {
        "number": number,
        "state": "COMPLETE",
        "params": {"stage0.attention": "none", "stage1.attention": "none"},
        "arch": ARCH.to_dict(),
        "arch_id": ARCH.id,
        "values": {"accuracy": 0.75, "latency_ms": 1.5},
        "metrics": METRICS,
        "started_at": now,
        "finished_at": now,
    }
    return TrialRecord(**(base | kw))


def _tracker(uri: str, search_id: str) -> SearchTracker:
    tracker = SearchTracker(uri)
    tracker.start_parent(
        search_id=search_id,
        study_name=search_id,
        config={"space": "tiny", "budget": 4, "storage": "sqlite:///o.db", "data_dir": None},
        space={"name": "tiny"},
        versions={"mlflow": "3"},
        storage="sqlite:///o.db",
    )
    return tracker


def test_the_experiment_opens_on_its_runs(uri: str) -> None:
    _tracker(uri, "sview001")
    client = MlflowClient(tracking_uri=uri)
    key, kind = EXPERIMENT_KIND
    assert (
        client.get_experiment_by_name(EXPERIMENT).tags[key] == kind == ("custom_model_development")
    )
    # An experiment made before the tag existed gets it; one tagged by hand keeps its own.
    exp_id = client.get_experiment_by_name(EXPERIMENT).experiment_id
    client.delete_experiment_tag(exp_id, key)
    SearchTracker(uri)
    assert client.get_experiment(exp_id).tags[key] == kind
    client.set_experiment_tag(exp_id, key, "finetuning")
    SearchTracker(uri)
    assert client.get_experiment(exp_id).tags[key] == "finetuning"
    client.set_experiment_tag(exp_id, key, kind)


def test_runs_are_named_and_keep_the_compared_columns(uri: str) -> None:
    tracker = _tracker(uri, "sview002")
    client = MlflowClient(tracking_uri=uri)
    parent = client.get_run(tracker.parent_run_id)
    assert parent.info.run_name == "search sview002 · tiny"
    assert {"config.budget", "space", "version.mlflow"} <= set(parent.data.params)
    assert not {"config.storage", "config.data_dir"} & set(parent.data.params)

    run = client.get_run(tracker.log_trial(_record(12), "sview002"))
    assert run.info.run_name == "trial 12 · none|none" == trial_run_name(_record(12))
    assert set(run.data.params) == {"stage0.attention", "stage1.attention"}
    assert set(run.data.metrics) == {
        "accuracy",
        "loss",
        "latency_ms",
        "latency_p90_ms",
        "params",
        "flops",
        "epoch_accuracy",
        "epoch_loss",
    }
    assert set(run.data.metrics) - {"epoch_accuracy", "epoch_loss"} <= set(COMPARED_METRICS)
    assert run.data.tags["nas.arch_id"] == ARCH.id and run.data.tags["nas.kind"] == "trial"
    assert run.data.tags["nas.hostname"] == "host-a"
    history = client.get_metric_history(run.info.run_id, "epoch_loss")
    assert [(m.step, m.value) for m in history] == [(0, 0.9), (1, 0.4)]
    logged = json.loads(
        Path(client.download_artifacts(run.info.run_id, "metrics.json")).read_text()
    )
    assert logged == METRICS  # nothing is lost: the bookkeeping stays in the artifact


def test_run_names_without_a_readable_arch() -> None:
    assert trial_run_name(_record(3, arch=None, arch_id="abc123")) == "trial 3 · abc123"
    assert trial_run_name(_record(4, arch=None, arch_id=None)) == "trial 4"
    assert trial_run_name(_record(5, arch={"bad": 1}, arch_id="abc")) == "trial 5 · abc"


def test_the_printed_address_lists_the_searchs_trials(uri: str) -> None:
    tracker = _tracker(uri, "sview003")
    ids = {tracker.log_trial(_record(n), "sview003") for n in range(3)}
    _tracker(uri, "sview004").log_trial(_record(0), "sview004")  # another search
    exp_id = tracker.experiment_id

    url = runs_url("http://127.0.0.1:5000/", exp_id, "sview003")
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}/" == "http://127.0.0.1:5000/"
    route, _, query = parts.fragment.partition("?")
    assert route == f"/experiments/{exp_id}/runs"
    q = {k: v[0] for k, v in parse_qs(query).items()}
    assert q["workflowType"] == "machine_learning"
    assert q["orderByKey"] == "metrics.`accuracy`" and q["orderByAsc"] == "false"
    found = MlflowClient(tracking_uri=uri).search_runs([exp_id], q["searchFilter"])
    assert {r.info.run_id for r in found} == ids  # the trials, not the parent, not others

    local = results_hint(uri, "sview003")
    assert local.splitlines()[0].endswith(f"mlflow ui --backend-store-uri {uri}")
    assert local.splitlines()[1].strip() == f"then open {url}"


def test_the_hint_never_raises(tmp_path: Path) -> None:
    hint = results_hint("http://127.0.0.1:9/", "sview005")  # nothing listens there
    assert hint == "MLflow:        http://127.0.0.1:9/ (experiment 'nas')"


def test_finish_logs_the_shared_pareto_plot(uri: str) -> None:
    tracker = _tracker(uri, "sview006")
    trials = [
        _record(0, values={"accuracy": 0.9, "latency_ms": 2.0}),
        _record(1, values={"accuracy": 0.5, "latency_ms": 1.0}),
        _record(2, values={"accuracy": 0.4, "latency_ms": 3.0}),
    ]
    for t in trials:
        t.mlflow_run_id = tracker.log_trial(t, "sview006")
    tracker.finish(
        trials=trials, pareto=trials[:2], objectives=["accuracy", "latency_ms"], state="completed"
    )
    client = MlflowClient(tracking_uri=uri)
    png = Path(client.download_artifacts(tracker.parent_run_id, "pareto.png")).read_bytes()
    assert Image.open(io.BytesIO(png)).size == (640, 480)
    tags = {t.mlflow_run_id: client.get_run(t.mlflow_run_id).data.tags["pareto"] for t in trials}
    assert list(tags.values()) == ["true", "true", "false"]
