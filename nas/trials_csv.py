"""One CSV writer for trials (``nas trials --format csv``, the MLflow ``trials.csv`` artifact).

Takes any objects with the fields of :class:`nas.search.records.TrialRecord`, so it imports
nothing from the search engine.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable
from typing import Any

__all__ = ["trials_csv"]

_CONFIRMATION = ("accuracy_mean", "accuracy_sd", "n_seeds", "test_accuracy")
_EPOCHS = ("epochs_trained", "stopped_at_epoch")


def _arch_json(record: Any) -> str:
    return json.dumps(record.arch, sort_keys=True) if record.arch else ""


def _cell(value: Any) -> Any:
    if isinstance(value, bool):
        return str(value).lower()
    return "" if value is None else value


def trials_csv(
    records: Iterable[Any],
    objectives: list[str],
    *,
    describe: Callable[[Any], str] = _arch_json,
) -> str:
    """CSV text: one row per trial with state, objectives, seed summary, epochs trained and
    the mo-asha stopping rung, feasibility, arch
    (``describe(record)``, default its JSON), sampled parameters and errors."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    head = ["number", "state", *objectives, "confirmed", *_CONFIRMATION, *_EPOCHS, "feasible"]
    writer.writerow([*head, "arch_id", "arch", "params", "error", "confirm_error"])
    for r in records:
        writer.writerow(
            [
                r.number,
                "INTERRUPTED" if r.interrupted else r.state,
                *[_cell(r.values.get(o)) for o in objectives],
                _cell(bool(getattr(r, "confirmed", False))),
                *[_cell(getattr(r, k, None)) for k in _CONFIRMATION],
                *[_cell(getattr(r, k, None)) for k in _EPOCHS],
                _cell(bool(r.feasible)),
                r.arch_id or "",
                describe(r),
                json.dumps(r.params, sort_keys=True),
                r.error or "",
                getattr(r, "confirm_error", None) or "",
            ]
        )
    return buf.getvalue()
