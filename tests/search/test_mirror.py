"""MirroredStorage: the mirrored study reads from memory and stays equal to the SQL study."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.trial import TrialState

from nas.search.mirror import MirroredStorage


def _fields(trial: optuna.trial.FrozenTrial) -> dict[str, Any]:
    return {
        "number": trial.number,
        "state": trial.state,
        "values": trial.values,
        "params": trial.params,
        "distributions": trial.distributions,
        "user_attrs": trial.user_attrs,
        "system_attrs": trial.system_attrs,
        "intermediate_values": trial.intermediate_values,
        "datetime_start": trial.datetime_start,
        "datetime_complete": trial.datetime_complete,
    }


def _from_sql(url: str, name: str) -> list[dict[str, Any]]:
    """The study's trials read by a fresh storage, as another process would."""
    study = optuna.load_study(study_name=name, storage=optuna.storages.RDBStorage(url))
    return [_fields(t) for t in study.get_trials(deepcopy=False)]


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'optuna.db'}"


def _mirrored(url: str, name: str) -> tuple[optuna.Study, MirroredStorage]:
    backend = optuna.storages.RDBStorage(url)
    optuna.create_study(storage=backend, study_name=name, directions=["maximize"] * 2)
    mirror = MirroredStorage(backend, backend.get_study_id_from_name(name))
    return optuna.load_study(study_name=name, storage=mirror), mirror


def _sid(storage: optuna.storages.BaseStorage, study: optuna.Study) -> int:
    return storage.get_study_id_from_name(study.study_name)


def _tid(storage: optuna.storages.BaseStorage, study: optuna.Study, number: int) -> int:
    return storage.get_trial_id_from_study_id_trial_number(_sid(storage, study), number)


def test_every_write_reaches_sql_and_memory(url: str) -> None:
    study, mirror = _mirrored(url, "s")
    finished = study.ask()  # the sampler asks, writes params and attributes, the trial ends
    finished.suggest_categorical("block", ["se", "eca", "none"])
    finished.suggest_float("lr", 1e-4, 1e-1, log=True)
    finished.set_user_attr("arch", {"stages": [{"attention": "se"}]})
    mirror.set_trial_system_attr(_tid(mirror, study, finished.number), "sampler", [1, 2])
    mirror.set_trial_intermediate_value(_tid(mirror, study, finished.number), 0, 0.5)
    study.tell(finished, [0.9, 0.1])
    running = study.ask()
    running.suggest_categorical("block", ["se", "eca", "none"])
    failed = study.ask()
    study.tell(failed, state=TrialState.FAIL)
    study.enqueue_trial({"block": "eca"})  # a WAITING trial, made RUNNING by the next ask
    enqueued = study.ask()
    assert enqueued.suggest_categorical("block", ["se", "eca", "none"]) == "eca"

    in_memory = [_fields(t) for t in mirror.get_all_trials(_sid(mirror, study), deepcopy=False)]
    assert in_memory == _from_sql(url, "s")
    assert [t["state"] for t in in_memory] == [
        TrialState.COMPLETE,
        TrialState.RUNNING,
        TrialState.FAIL,
        TrialState.RUNNING,
    ]
    assert set(in_memory[0]["params"]) == {"block", "lr"}
    assert in_memory[0]["user_attrs"]["arch"] == {"stages": [{"attention": "se"}]}
    assert in_memory[0]["intermediate_values"] == {0: 0.5}
    assert mirror.get_trial(_tid(mirror, study, running.number)).params == running.params
    complete = mirror.get_all_trials(_sid(mirror, study), states=(TrialState.COMPLETE,))
    assert [t.number for t in complete] == [0]
    backend = optuna.storages.RDBStorage(url)
    assert _tid(mirror, study, failed.number) == _tid(backend, study, failed.number)


def test_reads_do_not_touch_sql(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    study, mirror = _mirrored(url, "s")
    for _ in range(3):
        trial = study.ask()
        study.tell(trial, [trial.suggest_float("x", 0, 1), 0.0])

    def no_sql(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("read from SQL")

    monkeypatch.setattr(mirror._backend, "get_all_trials", no_sql)
    monkeypatch.setattr(mirror._backend, "get_trial", no_sql)
    assert len(study.get_trials()) == 3
    assert len(study.best_trials) >= 1
    assert mirror.get_trial(_tid(mirror, study, 1)).number == 1


def test_lists_handed_out_are_not_changed_by_later_writes(url: str) -> None:
    study, mirror = _mirrored(url, "s")
    trial_id = _tid(mirror, study, study.ask().number)
    before = mirror.get_all_trials(_sid(mirror, study), deepcopy=False)
    mirror.set_trial_param(trial_id, "block", 0, CategoricalDistribution(["se", "none"]))
    mirror.set_trial_user_attr(trial_id, "arch", "se")
    mirror.set_trial_state_values(trial_id, TrialState.COMPLETE, [1.0, 2.0])
    assert before[0].params == {} and before[0].user_attrs == {}
    assert before[0].state == TrialState.RUNNING
    after = mirror.get_all_trials(_sid(mirror, study))[0]
    assert (after.params, after.user_attrs) == ({"block": "se"}, {"arch": "se"})
    assert after.state == TrialState.COMPLETE and after.datetime_complete is not None


def test_starts_from_the_stored_trials_and_leaves_other_studies_alone(url: str) -> None:
    backend = optuna.storages.RDBStorage(url)
    first = optuna.create_study(storage=backend, study_name="a", directions=["minimize"])
    first.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    other = optuna.create_study(storage=backend, study_name="b")
    mirror = MirroredStorage(backend, _sid(backend, first))
    study = optuna.load_study(study_name="a", storage=mirror)
    assert [t.number for t in study.trials] == [0, 1]
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=1)
    assert [_fields(t) for t in study.get_trials()] == _from_sql(url, "a")

    other.optimize(lambda t: t.suggest_float("y", 0, 1), n_trials=2)  # written elsewhere
    seen = mirror.get_all_trials(_sid(backend, other))
    assert [t.params.keys() for t in seen] == [{"y": 0}.keys()] * 2
    assert mirror.get_study_name_from_id(_sid(backend, other)) == "b"
    assert mirror.get_trial(_tid(backend, other, 1)).params.keys() == {"y"}  # not mirrored


def test_pickles(url: str) -> None:
    study, mirror = _mirrored(url, "s")
    study.tell(study.ask(), [1.0, 1.0])
    copy = pickle.loads(pickle.dumps(mirror))
    sid = _sid(mirror, study)
    assert [t.number for t in copy.get_all_trials(sid)] == [0]
    copy.set_trial_param(copy.create_new_trial(sid), "z", 0.5, FloatDistribution(0, 1))
    assert copy.get_all_trials(sid)[1].params == {"z": 0.5}


def test_trials_stored_before_it_are_mirrored_when_first_written(url: str) -> None:
    backend = optuna.storages.RDBStorage(url)
    before = optuna.create_study(storage=backend, study_name="a", directions=["minimize"])
    before.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=1)
    left = before.ask()  # left RUNNING, as by a crash
    mirror = MirroredStorage(backend, _sid(backend, before))
    study = optuna.load_study(study_name="a", storage=mirror)
    trial_id = _tid(mirror, study, left.number)
    mirror.set_trial_user_attr(trial_id, "nas.interrupted", True)
    study.tell(left.number, state=TrialState.FAIL)
    assert [_fields(t) for t in study.get_trials()] == _from_sql(url, "a")
    assert study.trials[1].user_attrs == {"nas.interrupted": True}
    assert mirror.get_trial(_tid(backend, before, 0)).number == 0
