"""Evaluation of candidates: datasets, short training, latency, parameters and FLOPs.

``EvalSettings`` and the errors import without torch; everything else loads on first use,
so command modules can import this package cheaply.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nas._lazy import lazy_getattr
from nas.evaluation.errors import DatasetError, EvaluationError
from nas.evaluation.settings import EvalSettings

if TYPE_CHECKING:
    from nas.evaluation.cache import LatencyCache
    from nas.evaluation.datasets import Dataset, dataset_for, load_dataset
    from nas.evaluation.evaluator import evaluate
    from nas.evaluation.isolation import MeasurementLock, measurement_lock
    from nas.evaluation.latency import measure_latency
    from nas.evaluation.stats import LatencyStats
    from nas.evaluation.training import TrainResult, train_model

__all__ = [
    "Dataset",
    "DatasetError",
    "EvalSettings",
    "EvaluationError",
    "LatencyCache",
    "LatencyStats",
    "MeasurementLock",
    "TrainResult",
    "dataset_for",
    "evaluate",
    "load_dataset",
    "measure_latency",
    "measurement_lock",
    "train_model",
]

_LAZY = {
    "LatencyCache": "cache",
    "Dataset": "datasets",
    "dataset_for": "datasets",
    "load_dataset": "datasets",
    "evaluate": "evaluator",
    "MeasurementLock": "isolation",
    "measurement_lock": "isolation",
    "LatencyStats": "stats",
    "measure_latency": "latency",
    "TrainResult": "training",
    "train_model": "training",
}


__getattr__ = lazy_getattr(__name__, _LAZY)
