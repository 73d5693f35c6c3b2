"""StudySearcher and RunStopper: Optuna's ask and tell through Ray Tune's Searcher interface,
and the pickled copies Tune keeps (inert: no driver-side references)."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from nas.search.attrs import ATTR
from nas.search.config import SearchConfig
from nas.search.searcher import RunStopper, StudySearcher
from nas.search.study import mark_interrupted


class FakeRun:
    """The parts of a SearchRun the searcher uses; tells Optuna like finish_trial does."""

    def __init__(self, study: optuna.Study) -> None:
        self.config = SearchConfig(space="tiny", dataset="synthetic", budget=3)
        self.study = study
        self.stopped = False
        self.finished: list[tuple[int, Any, bool]] = []

    def stop(self) -> bool:
        return self.stopped

    def finish_trial(self, ot_trial: optuna.Trial, result: Any, error: bool) -> None:
        self.finished.append((ot_trial.number, result, error))
        self.study.tell(ot_trial, [0.5, 1.0])


def _searcher(total: int = 3) -> tuple[StudySearcher, FakeRun, optuna.Study]:
    study = optuna.create_study(directions=["maximize", "minimize"])
    run = FakeRun(study)

    def define(trial: optuna.Trial) -> dict[str, Any]:
        trial.suggest_categorical("block", ["se", "none"])
        trial.set_user_attr(ATTR["arch_id"], "a1")
        return {"nas_number": trial.number}

    return StudySearcher(run, study, define, total=total), run, study  # type: ignore[arg-type]


def test_asks_the_study_and_tells_each_trial_once() -> None:
    searcher, run, study = _searcher()
    assert searcher.metric == ["accuracy", "latency_ms"] and searcher.mode == ["max", "min"]
    config = searcher.suggest("t1")
    assert config is not None and config["nas_number"] == 0 and config["block"] in {"se", "none"}
    searcher.join_ahead()  # the first proposal is made ahead (no trial finished yet)
    searcher.on_trial_complete("t1", {"time_total_s": 1.0})
    searcher.on_trial_complete("t1", {"time_total_s": 1.0})  # a repeat is ignored
    assert [n for n, _, _ in run.finished] == [0]
    assert study.trials[0].state == TrialState.COMPLETE
    assert study.trials[0].user_attrs == {ATTR["arch_id"]: "a1"}
    run.stopped = True
    assert searcher.suggest("t2") == StudySearcher.FINISHED


def test_pickled_copies_hold_no_driver_state() -> None:
    searcher, run, _ = _searcher()
    searcher.suggest("t1")
    copy = pickle.loads(pickle.dumps(searcher))
    assert copy.suggest("t9") == StudySearcher.FINISHED
    copy.on_trial_complete("t1", {})  # nothing to tell: the live searcher does that
    assert run.finished == []
    stopper = RunStopper(run)  # type: ignore[arg-type]
    assert not stopper.stop_all()
    assert pickle.loads(pickle.dumps(stopper)).stop_all()
    run.stopped = True
    assert stopper.stop_all()
    searcher.join_ahead()


def test_running_trials_become_interrupted_failures(tmp_path: Path) -> None:
    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'optuna.db'}")
    study = optuna.create_study(storage=storage, study_name="s")
    study.tell(study.ask(), 1.0)
    study.ask()  # left RUNNING, as by a crash
    mark_interrupted(study, storage)
    done, left = optuna.load_study(study_name="s", storage=storage).trials
    assert done.state == TrialState.COMPLETE and ATTR["interrupted"] not in done.user_attrs
    assert left.state == TrialState.FAIL
    assert left.user_attrs[ATTR["interrupted"]] is True
    assert left.user_attrs[ATTR["error"]].startswith("interrupted")
