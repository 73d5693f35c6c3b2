"""The Ray Tune function trainable: evaluates one architecture inside a Ray worker.

It never raises for a bad candidate: an exception, an out-of-memory error or a NaN objective
becomes a result with ``nas_failed=True`` and the error text, which the search's run turns into
a FAIL Optuna trial (:meth:`nas.search.run.SearchRun.finish_trial`; telling Optuna a missing or
NaN objective would fail or mis-mark the trial).
Every result, complete or failed, says where the trial ran (:func:`placement`: the Ray node id
and the host name), as string entries of the trial's metrics.

In a search with a scheduler (``payload["per_epoch"]``) the trial also reports after every
epoch but the last (:class:`EpochReporter`): the accuracy so far and the latency, measured
before training, with ``nas_partial=True``; the scheduler may stop it at any of them.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import socket
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["EpochReporter", "evaluate_candidate", "nas_trainable", "placement", "prepare_worker"]

FAILED = "nas_failed"
ERROR = "nas_error"
METRICS = "nas_metrics"
STARTED = "nas_started"
EPOCH = "nas_epoch"
"""Result key of a per-epoch search: epochs trained when the result was reported."""
PARTIAL = "nas_partial"
"""Result key of a per-epoch search: True for a result before the trial's last epoch."""


def placement() -> dict[str, str]:
    """Where this process runs: ``ray_node_id`` (inside Ray) and ``hostname``."""
    where: dict[str, str] = {}
    try:
        import ray

        if ray.is_initialized():
            where["ray_node_id"] = str(ray.get_runtime_context().get_node_id())
    except Exception:  # outside Ray, or a Ray without a runtime context
        pass
    where["hostname"] = socket.gethostname()
    return where


def evaluate_candidate(
    space: Any,
    arch: Any,
    settings: Any,
    objectives: list[str],
    trial_fn: Callable[..., dict[str, Any]] | None,
    weights_path: Path | None,
    where: dict[str, str] | None = None,
    hooks: dict[str, Callable[..., None]] | None = None,
) -> dict[str, Any]:
    """Run the trial function and turn its outcome into a flat result dict (never raises).

    ``where`` (see :func:`placement`) is added to the metrics, of a failed trial too.
    ``hooks`` (``on_epoch``, ``on_latency``) are passed to ``evaluate`` or ``trial_fn``.
    """
    where = dict(where or {})
    hooks = dict(hooks or {})
    try:
        if trial_fn is None:
            from nas.evaluation import evaluate

            if weights_path is not None:
                weights_path.parent.mkdir(parents=True, exist_ok=True)
            metrics = evaluate(space, arch, settings, weights_path=weights_path, **hooks)
        else:
            metrics = trial_fn(space, arch, settings, **hooks)
        metrics = dict(metrics)
        for name in objectives:
            value = metrics.get(name)
            if not isinstance(value, int | float) or not math.isfinite(float(value)):
                raise ValueError(f"objective {name!r} is {value!r}, not a finite number")
    except BaseException as exc:  # a trial must fail, not the search
        if isinstance(exc, KeyboardInterrupt | SystemExit):
            raise
        kind = "out of memory" if _is_oom(exc) else type(exc).__name__
        text = f"{kind}: {exc}".strip()
        tb = traceback.format_exc(limit=6)
        failed: dict[str, Any] = {FAILED: True, ERROR: text[:2000], "nas_traceback": tb[-4000:]}
        failed[METRICS] = json.dumps(where)
        # Ray Tune insists every result names the metrics; NaN marks them missing.
        return failed | {name: math.nan for name in objectives}
    metrics |= where
    result: dict[str, Any] = {FAILED: False, METRICS: json.dumps(metrics, default=_jsonify)}
    for name in objectives:
        result[name] = float(metrics[name])
    return result


def reuse_result(
    reuse: dict[str, Any],
    objectives: list[str],
    weights_path: Path | None,
    where: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The result of an architecture already trained in this search (evaluation is
    deterministic for a given seed, so re-training would give the same weights and metrics).
    ``where`` replaces the earlier trial's placement: it says where this trial ran."""
    source = int(reuse["from"])
    if weights_path is not None:
        trained = weights_path.parent / f"{source}.pt"
        if trained.exists():
            weights_path.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(trained, weights_path)
    metrics = dict(reuse["metrics"]) | {"reused_from_trial": source} | dict(where or {})
    result: dict[str, Any] = {FAILED: False, METRICS: json.dumps(metrics, default=_jsonify)}
    return result | {name: float(metrics[name]) for name in objectives}


def _jsonify(obj: Any) -> Any:
    if hasattr(obj, "tolist"):
        return obj.tolist()
    return str(obj)


def _is_oom(exc: BaseException) -> bool:
    if isinstance(exc, MemoryError):
        return True
    name = type(exc).__name__
    return name == "OutOfMemoryError" or "out of memory" in str(exc).lower()


class EpochReporter:
    """Reports a trial's accuracy after each epoch before its last to Ray Tune, with the
    latency and the other objectives (NaN until known: Tune wants every metric named)."""

    def __init__(self, number: int, objectives: list[str], epochs: int, started: float) -> None:
        self.number = number
        self.objectives = objectives
        self.epochs = epochs
        self.started = started
        self.latency_ms = math.nan
        self.curve: list[float] = []

    def on_latency(self, latency_ms: float) -> None:
        """The latency, measured before training."""
        self.latency_ms = float(latency_ms)

    def on_epoch(self, epoch: int, accuracy: float, loss: float) -> None:
        """Report one epoch (the last one is reported with the full result)."""
        from ray import tune

        self.curve.append(float(accuracy))
        if epoch >= self.epochs:
            return
        metrics = {
            "accuracy": float(accuracy),
            "accuracy_per_epoch": list(self.curve),
            "latency_ms": self.latency_ms,
            "epochs": epoch,
            "loss": float(loss),
        } | placement()
        result: dict[str, Any] = {name: math.nan for name in self.objectives}
        result |= {"accuracy": float(accuracy), "latency_ms": self.latency_ms}
        result |= {FAILED: False, METRICS: json.dumps(metrics), EPOCH: epoch, PARTIAL: True}
        tune.report(result | {"nas_number": self.number, STARTED: self.started})

    def hooks(self) -> dict[str, Callable[..., None]]:
        """The keyword arguments of ``evaluate`` that call this reporter."""
        return {"on_epoch": self.on_epoch, "on_latency": self.on_latency}


def prepare_worker(payload: dict[str, Any]) -> None:
    """Give this Ray worker the search's workspace (its measurement locks and latency cache
    are per node) and its CPU threads; every trial and confirmation run starts with it."""
    os.environ["NAS_HOME"] = payload["nas_home"]
    threads = int(payload["threads"])
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)


def nas_trainable(config: dict[str, Any], payload: dict[str, Any]) -> None:
    """Ray Tune function trainable: one report with every objective, or a failure marker."""
    from ray import tune

    started = time.time()
    prepare_worker(payload)
    weights_dir = payload.get("weights_dir")
    number = int(config["nas_number"])
    weights_path = Path(weights_dir) / f"{number}.pt" if weights_dir else None
    reuse = config.get("nas_reuse")
    if reuse is not None:
        result = reuse_result(reuse, payload["objectives"], weights_path, placement())
        tune.report(result | {"nas_number": number, STARTED: started})
        return
    settings = payload["settings"]
    reporter = None
    if payload.get("per_epoch"):
        reporter = EpochReporter(number, payload["objectives"], settings.epochs, started)
    result = evaluate_candidate(
        payload["space"],
        config["nas_arch"],
        settings,
        payload["objectives"],
        payload.get("trial_fn"),
        weights_path,
        placement(),
        reporter.hooks() if reporter is not None else None,
    )
    result["nas_number"] = number
    result[STARTED] = started
    if reporter is not None:
        result |= {EPOCH: settings.epochs, PARTIAL: False}
    tune.report(result)
