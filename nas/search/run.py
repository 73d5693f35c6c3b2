"""The driver-side state of one ``run_search`` call: records, progress, stop, trial outcomes.

A :class:`SearchRun` lives in the calling process next to the Optuna study; Ray workers never
see it. It tells Optuna each finished trial (every objective, or FAIL: never left RUNNING),
hands the trial to MLflow, and answers the stop requests (``should_stop``, Ctrl-C).
With the mo-asha scheduler it also keeps each trial's rung results in the study
(:meth:`SearchRun.record_rung`) and tells Optuna a trial stopped at a rung as PRUNED.
"""

from __future__ import annotations

import json
import logging
import math
import os
import signal
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from nas.search.attrs import ATTR
from nas.search.config import SearchConfig
from nas.search.confirm import estimated_runs
from nas.search.records import SearchProgress, TrialRecord
from nas.search.store import compute_pareto, jsonable, trial_record
from nas.search.trainable import ERROR, FAILED, METRICS, PARTIAL, STARTED

__all__ = ["SearchRun", "install_sigint"]

log = logging.getLogger(__name__)


class SearchRun:
    """State of one run_search call (driver side)."""

    def __init__(
        self,
        *,
        search_id: str,
        study: Any,
        config: SearchConfig,
        tracker: Any,
        records: list[TrialRecord],
        on_trial: Callable[[TrialRecord], None] | None = None,
        on_progress: Callable[[SearchProgress], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> None:
        self.search_id = search_id
        self.study = study
        self.config = config
        self.tracker = tracker
        self.records = {r.number: r for r in records}
        self.on_trial = on_trial
        self.on_progress = on_progress
        self.should_stop = should_stop
        self.started = time.monotonic()
        self.finished_here = 0
        self.lock = threading.Lock()
        self.run_ids: dict[str, str] = dict(study.user_attrs.get(ATTR["runs"]) or {})
        self.stop_flag = threading.Event()
        self.asked: dict[int, Any] = {}  # trial number -> Optuna trial handed to Tune
        self.stopped: dict[int, int] = {}  # trial number -> rung epoch it stopped at
        self.rungs: dict[int, dict[str, list[float]]] = {}  # trial number -> rung results

    def stop(self) -> bool:
        """Whether the search must stop (asked by ``should_stop`` or Ctrl-C); sticky."""
        if not self.stop_flag.is_set() and self.should_stop is not None and self.should_stop():
            self.stop_flag.set()
        return self.stop_flag.is_set()

    def counts(self) -> tuple[int, int]:
        """Trials finished (budget-counting) and failed (not interrupted)."""
        done = sum(r.finished for r in self.records.values())
        failed = sum(r.state == "FAIL" and not r.interrupted for r in self.records.values())
        return done, failed

    def progress(self) -> SearchProgress:
        """Counts, front size and an ETA from the trials finished in this process."""
        done, failed = self.counts()
        records = list(self.records.values())
        elapsed = time.monotonic() - self.started
        front = compute_pareto(records, self.config.objectives)
        # Confirmation runs follow the budget and take about a trial's time each.
        remaining = max(0, self.config.budget - done) + estimated_runs(self.config, len(front))
        eta = elapsed / self.finished_here * remaining if self.finished_here else None
        return SearchProgress(
            done=done,
            failed=failed,
            budget=self.config.budget,
            front_size=len(front),
            elapsed_s=elapsed,
            eta_s=eta,
            stopped=sum(r.state == "PRUNED" for r in records),
            epochs=sum(r.epochs_trained or 0 for r in records if r.finished),
        )

    def completed_twin(self, arch_id: str) -> TrialRecord | None:
        """A complete trial of this search with the same architecture, if any."""
        with self.lock:
            for record in self.records.values():
                if record.state == "COMPLETE" and record.arch_id == arch_id:
                    return record
        return None

    def _logged(self, number: int, run_id: str) -> None:
        """Remember a trial's MLflow child run (a study attribute: the trial is finished)."""
        with self.lock:
            self.run_ids[str(number)] = run_id
            runs = dict(self.run_ids)
        if number in self.records:
            self.records[number].mlflow_run_id = run_id
        self.study.set_user_attr(ATTR["runs"], runs)

    def remember(self, ot_trial: Any) -> None:
        """Keep the Optuna trial handed to Tune, so rung results can be written to it."""
        with self.lock:
            self.asked[ot_trial.number] = ot_trial

    def record_rung(self, number: int, epoch: int, entry: Any, promoted: bool) -> None:
        """Keep a trial's result at a rung in the study (a resumed search reloads it), and
        whether it stopped there (its outcome is then PRUNED)."""
        with self.lock:
            ot_trial = self.asked.get(number)
            rungs = self.rungs.setdefault(number, {})
            rungs[str(epoch)] = [entry.accuracy, entry.latency_ms]
            rungs = dict(rungs)
            if not promoted:
                self.stopped[number] = epoch
        if ot_trial is None:
            return
        try:
            ot_trial.set_user_attr(ATTR["rungs"], rungs)
        except Exception as exc:  # the decision stands; the record is only for resume
            log.warning("keeping trial %s's rung result failed: %s", number, exc)

    def finish_trial(self, ot_trial: Any, result: dict[str, Any] | None, error: bool) -> None:
        """Record one Ray trial's outcome in Optuna (COMPLETE, PRUNED or FAIL) and MLflow."""
        import optuna

        objectives = self.config.objectives
        metrics: dict[str, Any] = {}
        values: list[float] | None = None
        err: str | None = None
        interrupted = False
        with self.lock:
            self.asked.pop(ot_trial.number, None)
            stopped_at = self.stopped.get(ot_trial.number)
        if result is not None and result.get(PARTIAL):
            if stopped_at is None:  # stopped by the search's end, not by a rung
                result = None
            else:
                self._prune(ot_trial, result, stopped_at)
                return
        if result is not None and result.get(FAILED) is False:
            metrics = json.loads(result[METRICS])
            values = [float(result[o]) for o in objectives]
            if not all(math.isfinite(v) for v in values):
                values, err = None, "an objective is not finite"
        elif result is not None and result.get(FAILED):
            err = str(result.get(ERROR) or "trial failed")
            metrics = json.loads(result.get(METRICS) or "{}")  # where it ran
        elif error:
            err = "the trial's Ray worker failed (crashed, killed or out of memory)"
        else:
            err, interrupted = "interrupted: the search stopped before this trial finished", True
        started_at = _started_at(result, ot_trial)
        ot_trial.set_user_attr(ATTR["metrics"], jsonable(metrics))
        if started_at is not None and started_at != ot_trial.datetime_start:
            ot_trial.set_user_attr(ATTR["started"], started_at.isoformat())
        if err:
            ot_trial.set_user_attr(ATTR["error"], err)
        if interrupted:
            ot_trial.set_user_attr(ATTR["interrupted"], True)
        if values is not None and self.config.max_latency_ms is not None:
            ot_trial.set_constraint(
                "latency_ms", float(metrics["latency_ms"]) - self.config.max_latency_ms
            )
        state = optuna.trial.TrialState.COMPLETE if values else optuna.trial.TrialState.FAIL
        # The record is read back from the finished trial, like every stored one.
        record = trial_record(self.study.tell(ot_trial, values, state=state), objectives)
        self._finished(record, interrupted)

    def _prune(self, ot_trial: Any, result: dict[str, Any], epoch: int) -> None:
        """Tell Optuna a trial stopped at rung ``epoch``: PRUNED, its last accuracy and its
        epochs kept in the metrics attribute (values cannot be told with PRUNED)."""
        import optuna

        metrics = json.loads(result[METRICS]) | {"epochs": epoch, "stopped_at_epoch": epoch}
        ot_trial.set_user_attr(ATTR["metrics"], jsonable(metrics))
        ot_trial.set_user_attr(ATTR["stopped_at"], epoch)
        started_at = _started_at(result, ot_trial)
        if started_at is not None and started_at != ot_trial.datetime_start:
            ot_trial.set_user_attr(ATTR["started"], started_at.isoformat())
        state = optuna.trial.TrialState.PRUNED
        record = trial_record(self.study.tell(ot_trial, state=state), self.config.objectives)
        self._finished(record, False)

    def _finished(self, record: TrialRecord, interrupted: bool) -> None:
        """Hand a told trial to MLflow, the records and the callbacks."""
        if self.tracker is not None and not interrupted:
            self.tracker.submit_trial(record.model_copy(), self.search_id, self._logged)
        with self.lock:
            self.records[record.number] = record
            if not interrupted:
                self.finished_here += 1
        for callback, arg in ((self.on_trial, record), (self.on_progress, None)):
            if callback is None:
                continue
            try:
                callback(arg if arg is not None else self.progress())
            except Exception as exc:
                log.warning("search callback failed: %s", exc)


def _started_at(result: dict[str, Any] | None, ot_trial: Any) -> datetime | None:
    """When the trial began on its worker; Optuna's start is when it was asked."""
    started = (result or {}).get(STARTED)
    if isinstance(started, int | float) and math.isfinite(started):
        return datetime.fromtimestamp(started)
    return ot_trial.datetime_start


def install_sigint(flag: threading.Event) -> Callable[[], None]:
    """First Ctrl-C: stop cleanly (flag); second: KeyboardInterrupt. Main thread only.

    Returns the function that restores the previous handler.
    """
    os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = signal.getsignal(signal.SIGINT)

    def handler(signum: int, frame: Any) -> None:
        if flag.is_set():
            raise KeyboardInterrupt
        flag.set()

    signal.signal(signal.SIGINT, handler)
    return lambda: signal.signal(signal.SIGINT, previous)
