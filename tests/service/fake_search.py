"""A stand-in for ``nas.search.run_search`` with the same contract, for fast worker tests.

Trials are kept in a JSON file per search id in ``$NAS_HOME`` so a second call with the same
id resumes: finished trials are kept, numbering continues, the budget counts finished ones.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from nas.errors import NasError
from nas.workspace import home


@dataclass
class FakeResult:
    search_id: str
    state: str
    trials: list[dict[str, Any]]
    mlflow_run_id: str | None = None
    study_name: str | None = None


def trial_values(number: int) -> dict[str, float]:
    """Objective values with a non-trivial front (accuracy up with latency, mostly)."""
    return {"accuracy": ((number * 7) % 10) / 10.0, "latency_ms": float((number * 3) % 7 + 1)}


def confirmed_accuracy(number: int) -> float:
    """The seed-mean accuracy a confirmation gives trial ``number`` (below its own value)."""
    return trial_values(number)["accuracy"] - 0.05 * (number % 3)


@dataclass
class FakeSearch:
    """Callable like ``run_search``; ``delay`` per trial, ``error`` raised at ``fail_after``.

    With ``confirm``, the first ``confirm`` trials are then confirmed as ``run_search`` does:
    one updated record each (seed summary) and a progress in the ``confirming`` phase.
    """

    delay: float = 0.0
    error: Exception | None = None
    fail_after: int = 0
    confirm: int = 0
    calls: list[str] = field(default_factory=list)
    started: threading.Event = field(default_factory=threading.Event)

    def __call__(
        self,
        config: dict[str, Any],
        *,
        search_id: str,
        on_trial: Any = None,
        on_progress: Any = None,
        should_stop: Any = None,
        trial_fn: Any = None,
    ) -> FakeResult:
        self.calls.append(search_id)
        path = home() / f"fake_{search_id}.json"
        trials: list[dict[str, Any]] = json.loads(path.read_text()) if path.exists() else []
        budget = int(config["budget"])
        state = "completed"
        self.started.set()
        while sum(t["state"] == "COMPLETE" for t in trials) < budget:
            if self.error is not None and len(trials) >= self.fail_after:
                raise self.error
            if should_stop is not None and should_stop():
                state = "cancelled"
                break
            number = len(trials)
            now = datetime.now(UTC).isoformat()
            values = trial_values(number)
            record = {
                "number": number,
                "state": "COMPLETE",
                "params": {"stage0.attention": "se"},
                "arch": {"stages": [{"attention": "se"}]},
                "arch_id": f"a{number:09d}",
                "values": values,
                "metrics": {**values, "params": 1000 + number, "flops": 20000 + number},
                "feasible": True,
                "mlflow_run_id": f"run{number}",
                "started_at": now,
                "finished_at": now,
            }
            time.sleep(self.delay)
            trials.append(record)
            path.write_text(json.dumps(trials))
            if on_trial is not None:
                on_trial(record)
            if on_progress is not None:
                on_progress(type("P", (), {"eta_s": self.delay * (budget - len(trials))})())
        if state == "completed":
            self._confirm(trials, on_trial, on_progress)
            path.write_text(json.dumps(trials))
        return FakeResult(search_id, state, trials, f"parent-{search_id}", f"study-{search_id}")

    def _confirm(self, trials: list[dict[str, Any]], on_trial: Any, on_progress: Any) -> None:
        for done, record in enumerate(trials[: self.confirm], start=1):
            number = record["number"]
            record |= {
                "confirm_candidate": True,
                "confirmed": number != 1,  # trial 1's confirmation "fails"
                "accuracy_mean": confirmed_accuracy(number) if number != 1 else None,
                "accuracy_sd": 0.01 if number != 1 else None,
                "n_seeds": 3 if number != 1 else 1,
                "test_accuracy": 0.5,
                "confirm_error": "RuntimeError: boom" if number == 1 else None,
            }
            if number == 1:
                record["accuracy_mean"] = record["values"]["accuracy"]
            if on_trial is not None:
                on_trial(record)
            if on_progress is not None:
                progress = {"eta_s": 0.0, "phase": "confirming", "confirm_done": 2 * done}
                on_progress(type("P", (), progress | {"confirm_total": 2 * self.confirm})())


def failing(message: str = "space 'x' is broken: fix it") -> FakeSearch:
    return FakeSearch(error=NasError(message))
