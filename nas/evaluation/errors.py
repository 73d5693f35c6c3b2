"""Errors raised while loading data, training a candidate or measuring its latency."""

from __future__ import annotations

from nas.errors import NasError

__all__ = ["DatasetError", "EvaluationError"]


class DatasetError(NasError, ValueError):
    """A dataset name, folder or file is wrong; the message says which layout was expected."""


class EvaluationError(NasError):
    """Training or measuring one candidate failed (NaN loss, an exception): the trial fails."""
