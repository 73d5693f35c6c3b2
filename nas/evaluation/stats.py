"""Latency statistics: the summary of a list of timings and the conditions behind it.

Kept free of torch so that the latency cache and its tools import quickly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

__all__ = ["LatencyStats", "summarize"]


@dataclass(frozen=True)
class LatencyStats:
    """Latency figures in milliseconds and the conditions they were measured under
    (``backend``: ``torch`` or ``onnxruntime``, the runtime that ran the passes)."""

    median_ms: float
    p90_ms: float
    p10_ms: float
    min_ms: float
    mean_ms: float
    cv: float
    repeats: int
    warmup: int
    device: str
    device_name: str
    threads: int
    batch_size: int
    input_shape: tuple[int, ...]
    torch_version: str
    clock: str = "wall"
    backend: str = "torch"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        data = asdict(self)
        data["input_shape"] = list(self.input_shape)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LatencyStats:
        """Inverse of :meth:`to_dict`."""
        return cls(**{**data, "input_shape": tuple(data["input_shape"])})


def summarize(times_ms: Sequence[float]) -> dict[str, float]:
    """Median, p90, p10, min, mean and coefficient of variation (std / mean) of timings."""
    if len(times_ms) == 0:
        raise ValueError("no timings to summarise")
    values = np.asarray(times_ms, dtype=np.float64)
    mean = float(values.mean())
    std = float(values.std(ddof=1)) if len(values) > 1 else 0.0
    return {
        "median_ms": float(np.median(values)),
        "p90_ms": float(np.percentile(values, 90)),
        "p10_ms": float(np.percentile(values, 10)),
        "min_ms": float(values.min()),
        "mean_ms": mean,
        "cv": std / mean if mean > 0 else 0.0,
    }
