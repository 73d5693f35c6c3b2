"""MLflow tracking of a search: one parent run per search, one nested child run per trial.

The parent run holds the space, the settings and library versions, and at the end
``pareto.json``, ``pareto.png`` and ``trials.csv``. Each child run carries the parent run id
tag (``mlflow.parentRunId``, which ``mlflow ui`` shows as a tree), every architecture choice
as a param, per-epoch accuracy, latency statistics, params and FLOPs as metrics, ``arch.json``
as an artifact, ``pareto=true|false`` and where the trial ran (``nas.ray_node_id``,
``nas.hostname``). A confirmed trial's child run also gets its seed summary (``accuracy_mean``,
``accuracy_sd``, ``n_seeds``, ``test_accuracy``; tag ``confirmed``). A resumed search reuses
its parent run.
Everything is logged from the driver process through an explicit ``MlflowClient``; trial runs
are written by one background thread (:meth:`SearchTracker.submit_trial`) so that MLflow never
holds up the Ray Tune event loop, and :meth:`SearchTracker.drain` waits for them.
"""

from __future__ import annotations

import json
import logging
import math
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nas.search.records import TrialRecord

__all__ = ["EXPERIMENT", "PLACEMENT_KEYS", "SearchTracker", "pareto_plot", "trials_table"]

EXPERIMENT = "nas"

#: Entries of a trial's metrics that say where it ran; logged as ``nas.<key>`` tags.
PLACEMENT_KEYS = ("ray_node_id", "hostname")

log = logging.getLogger(__name__)


def _ms(dt: Any) -> int | None:
    return int(dt.timestamp() * 1000) if dt is not None else None


class SearchTracker:
    """Logs one search into MLflow (``uri`` None: the workspace store)."""

    def __init__(self, uri: str | None = None) -> None:
        from mlflow.tracking import MlflowClient

        from nas import workspace

        self.uri = uri or workspace.mlflow_tracking_uri()
        self.client = MlflowClient(tracking_uri=self.uri)
        self.experiment_id = self._experiment()
        self.parent_run_id: str | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._pending: list[Future] = []
        self._pareto_tags: dict[str, str] = {}  # child run id -> "pareto" tag it was given

    def _experiment(self) -> str:
        from nas import workspace

        exp = self.client.get_experiment_by_name(EXPERIMENT)
        if exp is not None:
            return exp.experiment_id
        location = None
        if self.uri.startswith(("sqlite:", "file:")) or "://" not in self.uri:
            location = (workspace.home() / "mlartifacts").as_uri()
        try:
            return self.client.create_experiment(EXPERIMENT, artifact_location=location)
        except Exception:  # created concurrently by another search
            exp = self.client.get_experiment_by_name(EXPERIMENT)
            if exp is None:
                raise
            return exp.experiment_id

    def start_parent(
        self,
        *,
        search_id: str,
        study_name: str,
        config: dict[str, Any],
        space: dict[str, Any],
        versions: dict[str, str],
        storage: str,
        run_id: str | None = None,
    ) -> str:
        """Create the search's parent run, or reopen ``run_id`` when resuming."""
        from mlflow.entities import Param, RunTag

        if run_id is not None:
            try:
                self.client.update_run(run_id, status="RUNNING")
                self.client.set_tag(run_id, "nas.resumed_at", time.strftime("%Y-%m-%dT%H:%M:%S"))
                self.parent_run_id = run_id
                return run_id
            except Exception as exc:  # another tracking store, or the run was deleted
                log.warning("parent run %s not found (%s); starting a new one", run_id, exc)
        run = self.client.create_run(
            self.experiment_id,
            run_name=study_name,
            tags={"nas.search_id": search_id, "nas.kind": "search", "optuna.study": study_name},
        )
        rid = run.info.run_id
        params = [Param(f"config.{k}", _short(v)) for k, v in config.items() if k != "space"]
        params.append(Param("space", _short(config.get("space"))))
        params += [Param(f"version.{k}", v) for k, v in versions.items()]
        tags = [RunTag("optuna.storage", _redact(storage))]
        for chunk in range(0, len(params), 100):
            self.client.log_batch(rid, params=params[chunk : chunk + 100])
        self.client.log_batch(rid, tags=tags)
        self.client.log_dict(rid, space, "space.json")
        self.client.log_dict(rid, config, "config.json")
        self.parent_run_id = rid
        return rid

    def _submit(self, work: Callable[[], Any]) -> Future:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nas-mlflow")
        future = self._executor.submit(work)
        self._pending.append(future)
        return future

    def submit_trial(
        self,
        record: TrialRecord,
        search_id: str,
        on_logged: Callable[[int, str], None] | None = None,
    ) -> Future:
        """Log a trial's child run in the background; ``on_logged(number, run_id)`` after."""

        def work() -> str | None:
            try:
                run_id = self.log_trial(record, search_id)
            except Exception as exc:
                log.warning("MLflow logging of trial %s failed: %s", record.number, exc)
                return None
            if on_logged is not None:
                on_logged(record.number, run_id)
            return run_id

        return self._submit(work)

    def submit_confirmation(self, record: TrialRecord) -> Future:
        """Log a trial's confirmation onto its child run in the background (never raises)."""

        def work() -> None:
            try:
                self.log_confirmation(record)
            except Exception as exc:
                log.warning(
                    "MLflow logging of trial %s's confirmation failed: %s", record.number, exc
                )

        return self._submit(work)

    def log_confirmation(self, record: TrialRecord) -> None:
        """The seed summary on the trial's child run: ``accuracy_mean``, ``accuracy_sd``,
        ``n_seeds``, ``test_accuracy`` (the seed mean, at step 1; step 0 is the trial's own
        seed) and tags ``confirmed`` and ``confirm_error``."""
        from mlflow.entities import Metric, RunTag

        if not record.mlflow_run_id:
            return
        now = int(time.time() * 1000)
        metrics = [Metric("n_seeds", float(record.n_seeds), now, 0)]
        for key, value, step in (
            ("accuracy_mean", record.accuracy_mean, 0),
            ("accuracy_sd", record.accuracy_sd, 0),
            ("test_accuracy", record.test_accuracy, 1),
        ):
            if _finite(value):
                metrics.append(Metric(key, float(value), now, step))
        tags = [RunTag("confirmed", str(record.confirmed).lower())]
        if record.confirm_error:
            tags.append(RunTag("confirm_error", record.confirm_error[:5000]))
        self.client.log_batch(record.mlflow_run_id, metrics=metrics, tags=tags)

    def drain(self) -> None:
        """Wait until every submitted trial is logged."""
        for future in self._pending:
            future.result()
        self._pending.clear()
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

    def log_trial(self, record: TrialRecord, search_id: str) -> str:
        """A finished child run for one trial; returns its run id."""
        from mlflow.entities import Metric, Param, RunTag

        assert self.parent_run_id is not None
        run = self.client.create_run(
            self.experiment_id,
            start_time=_ms(record.started_at),
            run_name=f"trial-{record.number}",
            tags={
                "mlflow.parentRunId": self.parent_run_id,
                "nas.search_id": search_id,
                "nas.trial_number": str(record.number),
                "nas.state": record.state,
                "pareto": "false",
            },
        )
        rid = run.info.run_id
        self._pareto_tags[rid] = "false"
        now = int(time.time() * 1000)
        params = [Param(k, _short(v)) for k, v in sorted(record.params.items())]
        params.append(Param("trial_number", str(record.number)))
        if record.arch_id:
            params.append(Param("arch_id", record.arch_id))
        metrics = []
        for step, acc in enumerate(record.metrics.get("accuracy_per_epoch") or []):
            if _finite(acc):
                metrics.append(Metric("epoch_accuracy", float(acc), now, step))
        for key, value in sorted(record.metrics.items()):
            if _finite(value) and not isinstance(value, bool):
                metrics.append(Metric(key, float(value), now, 0))
        tags = [RunTag("feasible", str(record.feasible).lower())]
        for key in PLACEMENT_KEYS:  # where the trial ran (strings: not metrics)
            value = record.metrics.get(key)
            if isinstance(value, str) and value:
                tags.append(RunTag(f"nas.{key}", value[:5000]))
        if record.error:
            tags.append(RunTag("error", record.error[:5000]))
        for chunk in range(0, max(len(params), len(metrics)), 100):
            self.client.log_batch(
                rid,
                metrics=metrics[chunk : chunk + 100],
                params=params[chunk : chunk + 100],
                tags=tags if chunk == 0 else [],
            )
        if record.arch is not None:
            self.client.log_dict(rid, record.arch, "arch.json")
        status = "FINISHED" if record.state == "COMPLETE" else "FAILED"
        self.client.set_terminated(rid, status=status, end_time=_ms(record.finished_at))
        return rid

    def finish(
        self,
        *,
        trials: Sequence[TrialRecord],
        pareto: Sequence[TrialRecord],
        objectives: list[str],
        state: str,
    ) -> None:
        """Tag the Pareto members and attach the front, its plot and the trials table."""
        assert self.parent_run_id is not None
        self.drain()
        members = {t.number for t in pareto}
        for t in trials:
            if not t.mlflow_run_id:
                continue
            flag = "true" if t.number in members else "false"
            try:
                tagged = self._pareto_tags.get(t.mlflow_run_id)
                if tagged is None:  # logged by an earlier run of this search
                    tagged = self.client.get_run(t.mlflow_run_id).data.tags.get("pareto")
                if tagged != flag:
                    self.client.set_tag(t.mlflow_run_id, "pareto", flag)
                    self._pareto_tags[t.mlflow_run_id] = flag
            except Exception:  # a child run deleted by hand must not break the search
                continue
        rid = self.parent_run_id
        self.client.log_dict(rid, [t.model_dump(mode="json") for t in pareto], "pareto.json")
        self.client.log_text(rid, trials_table(trials, objectives), "trials.csv")
        with tempfile.TemporaryDirectory() as tmp:
            png = Path(tmp) / "pareto.png"
            pareto_plot(trials, pareto, objectives, png)
            self.client.log_artifact(rid, str(png))
        done = sum(t.state == "COMPLETE" for t in trials)
        failed = sum(t.state == "FAIL" and not t.interrupted for t in trials)
        now = int(time.time() * 1000)
        from mlflow.entities import Metric

        self.client.log_batch(
            rid,
            metrics=[
                Metric("trials_complete", done, now, 0),
                Metric("trials_failed", failed, now, 0),
                Metric("pareto_size", len(pareto), now, 0),
            ],
        )
        self.client.set_tag(rid, "nas.state", state)
        status = {"completed": "FINISHED", "cancelled": "KILLED"}.get(state, "FAILED")
        self.client.set_terminated(rid, status=status)


def trials_table(trials: Sequence[TrialRecord], objectives: list[str]) -> str:
    """CSV text, one row per trial (:func:`nas.trials_csv.trials_csv`)."""
    from nas.trials_csv import trials_csv

    return trials_csv(trials, objectives)


def pareto_plot(
    trials: Sequence[TrialRecord],
    pareto: Sequence[TrialRecord],
    objectives: list[str],
    path: Path,
) -> Path:
    """Scatter of the complete trials on the first two objectives, the front highlighted."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    done = [t for t in trials if t.state == "COMPLETE"]
    front = {t.number for t in pareto}
    fig, ax = plt.subplots(figsize=(6, 4.5), dpi=100)
    if len(objectives) >= 2:
        y_name, x_name = objectives[0], objectives[1]

        def xy(ts: Sequence[TrialRecord]) -> tuple[list[float], list[float]]:
            return [t.values[x_name] for t in ts], [t.values[y_name] for t in ts]
    else:
        y_name, x_name = objectives[0], "trial"

        def xy(ts: Sequence[TrialRecord]) -> tuple[list[float], list[float]]:
            return [float(t.number) for t in ts], [t.values[y_name] for t in ts]

    groups = [
        ("infeasible", [t for t in done if not t.feasible], "#bbbbbb", "x"),
        ("trial", [t for t in done if t.feasible and t.number not in front], "#4c72b0", "o"),
    ]
    for label, ts, color, marker in groups:
        if ts:
            ax.scatter(*xy(ts), c=color, marker=marker, label=label, alpha=0.7)
    members = sorted((t for t in done if t.number in front), key=lambda t: xy([t])[0][0])
    if members:
        ax.plot(*xy(members), "-o", color="#c44e52", label="Pareto front")
    ax.set_xlabel(x_name)
    ax.set_ylabel(y_name)
    ax.set_title(f"{len(done)} complete trials, {len(members)} on the front")
    ax.grid(alpha=0.3)
    if done:
        ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(float(value))


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= 6000 else text[:5997] + "..."


def _redact(url: str) -> str:
    import re

    return re.sub(r"//([^:/@]+):[^@]*@", r"//\1:***@", url)
