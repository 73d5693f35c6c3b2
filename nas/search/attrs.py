"""The names of the Optuna study and trial user attributes a search writes and reads.

A module without imports, so that every part of the engine (store, confirm, study, run, ...)
and any reader of a stored search can use the same names without an import circle.
"""

from __future__ import annotations

__all__ = ["ATTR", "CANDIDATES", "CONFIRM_PREFIX"]

#: Keys of the study / trial user attributes this package writes.
ATTR = {
    "id": "nas.search_id",
    "config": "nas.config",
    "space": "nas.space",
    "state": "nas.state",
    "created": "nas.created_at",
    "mlflow": "nas.mlflow_run_id",
    "error": "nas.error",
    "versions": "nas.versions",
    # trial attributes
    "arch": "nas.arch",
    "arch_id": "nas.arch_id",
    "metrics": "nas.metrics",
    "feasible": "nas.feasible",
    "run": "nas.mlflow_run_id",
    "runs": "nas.mlflow_child_runs",  # study attribute: trial number -> child run id
    "interrupted": "nas.interrupted",
    "reused": "nas.reused_from",  # trial number whose training result was reused
    "started": "nas.started_at",  # when the trial began on its worker (asked earlier)
    "rungs": "nas.rungs",  # mo-asha: {epoch: [accuracy, latency_ms]} at each rung reached
    "stopped_at": "nas.stopped_at_epoch",  # mo-asha: the rung a PRUNED trial stopped at
}

#: Prefix of the study attributes of confirmation (:func:`nas.search.confirm.run_key`).
CONFIRM_PREFIX = "nas.confirm."

#: Study attribute: the trials chosen for confirmation.
CANDIDATES = CONFIRM_PREFIX + "candidates"
