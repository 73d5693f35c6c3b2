"""MLflow tracking of a search: one parent run per search, one nested child run per trial.

The experiment is tagged as a model-training experiment (``mlflow.experimentKind``), so
``mlflow ui`` opens it on its runs rather than on the GenAI overview, and
:func:`nas.tracking_links.results_hint` gives the address of one search's trials. The parent run
(``search <id> · <space>``) holds the space, the settings a user compares and library versions
as params (the whole configuration in ``config.json``), and at the end ``pareto.json``,
``pareto.png`` and ``trials.csv``. Each child run is named by trial and architecture
(``trial 12 · se(r16)|none|ca(r32)``) and carries the parent run id tag (``mlflow.parentRunId``,
which ``mlflow ui`` shows as a tree), every architecture choice as a param, the measurements a
user compares as metrics (:data:`COMPARED_METRICS`: accuracy and loss per epoch, latency
statistics, params, FLOPs...; all of them in ``metrics.json``), ``arch.json`` as an artifact,
``pareto=true|false``, where the trial ran and whether mo-asha stopped it
(:mod:`nas.tracking_trial`; its accuracy per epoch is then a shorter curve). A
confirmed trial's child run also gets its seed summary (``accuracy_mean``, ``accuracy_sd``,
``n_seeds``, ``test_accuracy``; tag ``confirmed``). A resumed search reuses its parent run.
Everything is logged from the driver process through an explicit ``MlflowClient``; trial runs
are written by one background thread (:meth:`SearchTracker.submit_trial`) so that MLflow never
holds up the Ray Tune event loop, and :meth:`SearchTracker.drain` waits for them.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from nas.pareto_plot import PlotPoint, pareto_png
from nas.tracking_trial import PLACEMENT_KEYS, trial_run_name, trial_status, trial_tags
from nas.trials_csv import trials_csv

if TYPE_CHECKING:
    from nas.search.records import TrialRecord

__all__ = [
    "COMPARED_METRICS",
    "EXPERIMENT",
    "EXPERIMENT_KIND",
    "KIND_TAG",
    "PLACEMENT_KEYS",
    "SEARCH_TAG",
    "SearchTracker",
    "plot_points",
    "trial_run_name",
]

EXPERIMENT = "nas"

#: Run tags: the search a run belongs to, and its kind (``search`` or ``trial``).
SEARCH_TAG, KIND_TAG = "nas.search_id", "nas.kind"

#: The experiment tag MLflow 3's UI reads to open an experiment on its runs (the value
#: ``custom_model_development`` is its "Machine learning" kind; GenAI experiments open on
#: traces); an experiment tagged otherwise by hand keeps its tag.
EXPERIMENT_KIND = ("mlflow.experimentKind", "custom_model_development")

#: The trial metrics logged as MLflow metrics (columns of the runs table); the objectives too.
#: Bookkeeping (epochs, sample counts, cache flags) goes to the ``metrics.json`` artifact only.
COMPARED_METRICS = (
    *("accuracy", "test_accuracy", "loss", "train_seconds", "params", "flops"),
    *("latency_ms", "latency_min_ms", "latency_p10_ms", "latency_p90_ms", "latency_cv"),
    *("activation_bytes", "peak_memory_bytes"),
)

#: Search settings that say where or how fast a search ran, not what it searched: kept out of
#: the parent run's params (they stay in ``config.json``).
_PLUMBING = frozenset(
    {
        *("concurrency", "cpus_per_trial", "gpus_per_trial", "data_dir", "mlflow_uri", "name"),
        *("ray_address", "storage"),
    }
)

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

        key, kind = EXPERIMENT_KIND
        exp = self.client.get_experiment_by_name(EXPERIMENT)
        if exp is not None:
            if key not in exp.tags:  # made by an older version: open it on its runs too
                try:
                    self.client.set_experiment_tag(exp.experiment_id, key, kind)
                except Exception as exc:  # a read-only store: the UI just opens elsewhere
                    log.debug("cannot tag experiment %s: %s", exp.experiment_id, exc)
            return exp.experiment_id
        location = None
        if self.uri.startswith(("sqlite:", "file:")) or "://" not in self.uri:
            location = (workspace.home() / "mlartifacts").as_uri()
        try:
            return self.client.create_experiment(
                EXPERIMENT, artifact_location=location, tags={key: kind}
            )
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
        space_name = space.get("name") or config.get("space")
        label = space_name if isinstance(space_name, str) else "inline space"
        run = self.client.create_run(
            self.experiment_id,
            run_name=f"search {search_id} · {label}"[:250],
            tags={SEARCH_TAG: search_id, KIND_TAG: "search", "optuna.study": study_name},
        )
        rid = run.info.run_id
        params = [
            Param(f"config.{k}", _short(v))
            for k, v in config.items()
            if k != "space" and k not in _PLUMBING and v is not None
        ]
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
        start_tags = {
            "mlflow.parentRunId": self.parent_run_id,
            SEARCH_TAG: search_id,
            KIND_TAG: "trial",
            "nas.trial_number": str(record.number),
            "nas.state": record.state,
            "pareto": "false",
        }
        if record.arch_id:
            start_tags["nas.arch_id"] = record.arch_id
        run = self.client.create_run(
            self.experiment_id,
            start_time=_ms(record.started_at),
            run_name=trial_run_name(record),
            tags=start_tags,
        )
        rid = run.info.run_id
        self._pareto_tags[rid] = "false"
        now = int(time.time() * 1000)
        params = [Param(k, _short(v)) for k, v in sorted(record.params.items())]
        metrics = []
        for name, series in (
            ("epoch_accuracy", "accuracy_per_epoch"),
            ("epoch_loss", "loss_per_epoch"),
        ):
            for step, value in enumerate(record.metrics.get(series) or []):
                if _finite(value):
                    metrics.append(Metric(name, float(value), now, step))
        compared = (*COMPARED_METRICS, *(k for k in record.values if k not in COMPARED_METRICS))
        for key in compared:
            value = record.metrics.get(key, record.values.get(key))
            if _finite(value) and not isinstance(value, bool):
                metrics.append(Metric(key, float(value), now, 0))
        tags = [RunTag(k, v) for k, v in trial_tags(record).items()]
        for chunk in range(0, max(len(params), len(metrics)), 100):
            self.client.log_batch(
                rid,
                metrics=metrics[chunk : chunk + 100],
                params=params[chunk : chunk + 100],
                tags=tags if chunk == 0 else [],
            )
        if record.arch is not None:
            self.client.log_dict(rid, record.arch, "arch.json")
        if record.metrics:
            self.client.log_dict(rid, record.metrics, "metrics.json")
        end = _ms(record.finished_at)
        self.client.set_terminated(rid, status=trial_status(record), end_time=end)
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
        self.client.log_text(rid, trials_csv(trials, objectives), "trials.csv")
        png = pareto_png(plot_points(trials, pareto), objectives)
        self.client.log_image(rid, _image(png), "pareto.png")
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


def plot_points(trials: Sequence[TrialRecord], pareto: Sequence[TrialRecord]) -> list[PlotPoint]:
    """The complete trials as :class:`~nas.pareto_plot.PlotPoint` s, front members marked."""
    front = {t.number for t in pareto}
    return [
        PlotPoint(t.number, dict(t.values), t.feasible, t.number in front)
        for t in trials
        if t.state == "COMPLETE"
    ]


def _image(png: bytes) -> Any:
    """PNG bytes as the PIL image ``MlflowClient.log_image`` takes."""
    import io

    from PIL import Image

    return Image.open(io.BytesIO(png))


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(float(value))


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= 6000 else text[:5997] + "..."


def _redact(url: str) -> str:
    import re

    return re.sub(r"//([^:/@]+):[^@]*@", r"//\1:***@", url)
