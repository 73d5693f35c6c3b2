"""Searches with the mo-asha scheduler on `tiny`, with a stand-in that reports every epoch."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from typing import Any

import optuna
import pytest
from mlflow.tracking import MlflowClient

from nas.commands._search_output import print_records
from nas.search import SearchConfig, load_search, run_search
from nas.search.attrs import ATTR
from nas.search.store import get_storage
from nas.trials_csv import trials_csv
from service.schemas import TrialPublic

pytestmark = pytest.mark.usefixtures("ray_session")

EPOCHS = 4  # rungs at 1 and 2 epochs with min_epochs 1, eta 2


def epoch_trial_fn() -> Callable[..., dict[str, Any]]:
    """A stand-in for ``evaluate`` that calls ``on_latency`` then ``on_epoch`` per epoch,
    its accuracy rising to a final value set by the arch's attention choices."""

    def trial_fn(
        space: Any,
        arch: Any,
        settings: Any,
        on_epoch: Callable[..., None] | None = None,
        on_latency: Callable[[float], None] | None = None,
    ) -> dict[str, Any]:
        import hashlib

        stages = arch.to_dict()["stages"]
        used = sum(s["attention"] != "none" for s in stages)
        jitter = int(hashlib.sha256(arch.to_json().encode()).hexdigest()[:6], 16) / 16**6
        final = 0.5 + 0.1 * used + 0.1 * jitter
        latency = 1.0 + 0.5 * used + 0.5 * (1 - jitter)
        if on_latency is not None:
            on_latency(latency)
        curve = [final * e / settings.epochs for e in range(1, settings.epochs + 1)]
        for epoch, accuracy in enumerate(curve, 1):
            if on_epoch is not None:
                on_epoch(epoch, accuracy, 1.0 - accuracy)
        return {
            "accuracy": final,
            "accuracy_per_epoch": curve,
            "latency_ms": latency,
            "epochs": settings.epochs,
            "params": 1000 + 100 * used,
            "flops": 5000,
        }

    trial_fn.deterministic = True  # type: ignore[attr-defined]
    return trial_fn


def _config(mlflow_uri: str, **kw: Any) -> SearchConfig:
    base = {
        "space": "tiny",
        "dataset": "synthetic",
        "budget": 10,
        "concurrency": 2,
        "epochs": EPOCHS,
        "scheduler": "mo-asha",
        "min_epochs": 1,
        "eta": 2,
        "confirm_seeds": 0,
        "mlflow_uri": mlflow_uri,
    }
    return SearchConfig(**(base | kw))


def _rungs(study_name: str) -> dict[int, dict[str, list[float]]]:
    study = optuna.load_study(study_name=study_name, storage=get_storage())
    return {t.number: t.user_attrs.get(ATTR["rungs"], {}) for t in study.trials}


def test_mo_asha_search_stops_trials_that_never_reach_the_front(
    mlflow_uri: str, capsys: pytest.CaptureFixture[str]
) -> None:
    progress: list[Any] = []
    result = run_search(
        _config(mlflow_uri), trial_fn=epoch_trial_fn(), on_progress=progress.append
    )
    assert result.state == "completed"
    pruned = [t for t in result.trials if t.state == "PRUNED"]
    complete = [t for t in result.trials if t.state == "COMPLETE"]
    assert pruned and complete
    assert len(pruned) + len(complete) == 10
    front = {t.number for t in result.pareto}
    assert front and not front & {t.number for t in pruned}
    for t in pruned:
        assert t.stopped_at_epoch in (1, 2)
        assert t.epochs_trained == t.stopped_at_epoch
        assert t.values == {}
        assert t.metrics["accuracy"] > 0 and t.metrics["epochs"] == t.stopped_at_epoch
    for t in complete:
        assert t.epochs_trained in (EPOCHS, 0)  # 0: a repeated architecture reused a result
        assert t.stopped_at_epoch is None
    rungs = _rungs(result.study_name)
    for t in pruned:  # every rung it reached is kept, the stopping one last
        assert max(int(e) for e in rungs[t.number]) == t.stopped_at_epoch
    trained = [t for t in complete if t.epochs_trained]
    assert all(set(rungs[t.number]) == {"1", "2"} for t in trained)
    # Read back from storage, the records say the same.
    again = load_search(result.search_id)
    assert [t.model_dump() for t in again.trials] == [t.model_dump() for t in result.trials]
    _check_visible(result, progress[-1], mlflow_uri)
    capsys.readouterr()
    print_records(result.trials, result.config.objectives, "Trials")  # as `nas trials` does
    lines = capsys.readouterr().out.strip().splitlines()
    header = lines[1].split()
    assert "EPOCHS" in header and "STOPPED_AT" in header
    for t, line in zip(result.trials, lines[2:], strict=True):
        cells = line.split()
        assert cells[:2] == [str(t.number), t.state]
        if t.state == "PRUNED":  # the accuracy it had at its rung
            assert cells[2].endswith(f"@{t.stopped_at_epoch}")
        at = header.index("STOPPED_AT") - 3  # the header ACCURACY (MEAN ± SD) is four words
        assert cells[at] == (str(t.stopped_at_epoch) if t.stopped_at_epoch else "-")


def _check_visible(result: Any, last: Any, mlflow_uri: str) -> None:
    """Progress, the trials CSV, the service's trial schema and MLflow show the stops."""
    pruned = {t.number: t for t in result.trials if t.state == "PRUNED"}
    assert last.stopped == len(pruned)
    assert last.epochs == sum(t.epochs_trained for t in result.trials)
    rows = list(csv.DictReader(io.StringIO(trials_csv(result.trials, ["accuracy"]))))
    for row in rows:
        expected = pruned.get(int(row["number"]))
        assert row["stopped_at_epoch"] == (str(expected.stopped_at_epoch) if expected else "")
    for t in result.trials:
        public = TrialPublic(
            trial_id=1,
            number=t.number,
            state=t.state,
            params={},
            values={},
            metrics=t.metrics,
            feasible=True,
            on_front=False,
        )
        assert (public.epochs_trained, public.stopped_at_epoch) == (
            t.epochs_trained,
            t.stopped_at_epoch,
        )
    client = MlflowClient(tracking_uri=mlflow_uri)
    for number, t in pruned.items():
        run = client.get_run(t.mlflow_run_id)
        assert run.info.status == "KILLED"
        assert run.data.tags["stopped"] == "true"
        assert run.data.tags["nas.stopped_at_epoch"] == str(t.stopped_at_epoch)
        curve = client.get_metric_history(run.info.run_id, "epoch_accuracy")
        assert len(curve) == t.stopped_at_epoch, number


def test_resumed_mo_asha_search_keeps_its_rung_records(mlflow_uri: str) -> None:
    finished: list[int] = []
    first = run_search(
        _config(mlflow_uri),
        trial_fn=epoch_trial_fn(),
        on_trial=lambda r: finished.append(r.number),
        should_stop=lambda: len(finished) >= 3,
    )
    assert first.state == "cancelled"
    before = _rungs(first.study_name)
    assert sum(bool(r) for r in before.values()) >= 3
    interrupted = [t for t in first.trials if t.interrupted]
    assert all(t.state == "FAIL" and t.stopped_at_epoch is None for t in interrupted)

    second = run_search(_config(mlflow_uri), search_id=first.search_id, trial_fn=epoch_trial_fn())
    assert second.state == "completed"
    assert sum(t.finished for t in second.trials) == 10
    after = _rungs(second.study_name)
    for number, rungs in before.items():  # earlier rung results, mid-rung ones too, stay
        assert after[number] == rungs
    assert not {t.number for t in second.pareto} & {
        t.number for t in second.trials if t.state == "PRUNED"
    }
