"""Confirmed fronts: which trials are re-trained with more seeds, and what the seeds say.

A trial trains once, with the search's ``seed``; on a small validation set its accuracy is
partly luck. After the budget the search re-trains its best trials with ``confirm_seeds``
more training seeds (``seed + 1`` ... ``seed + confirm_seeds``, everything else alike; run by
:mod:`nas.search.confirm_runner`) and reports the front computed on the seed means.

- Candidates (:func:`select_candidates`): the feasible Pareto front of the complete trials,
  then the next non-dominated layer, ``confirm_max`` trials in all, one per architecture. A
  layer that does not fit is thinned evenly along the first objective (its ends kept); front
  members left out stay candidates of the reported front, unconfirmed (``beyond_cap``).
- Storage: study user attributes (a finished trial's own attributes are frozen in Optuna).
  ``nas.confirm.candidates`` holds ``{"numbers": [...], "beyond_cap": [...], "finished": n}``:
  the trials to confirm, front first, and the front members beyond the cap, chosen when ``n``
  trials had finished (more trials since make it stale). Each run's outcome is written as it
  ends under ``nas.confirm.<trial>.<seed>``: ``{"accuracy", "test_accuracy", ...}`` or
  ``{"error"}``, so a resumed search runs only the missing ones.
- Summary (:func:`summarise`): a candidate's ``accuracy_mean``/``accuracy_sd``/``test_accuracy``
  over its own seed and the confirmation seeds done so far; ``confirmed`` once every seed is
  in. A failed run keeps the single-seed result and sets ``confirm_error``.
- Front (:func:`confirmed_front`): :func:`nas.pareto.pareto_front` over the candidates, their
  accuracy replaced by ``accuracy_mean`` (other objectives are the trial's; latency does not
  depend on the training seed).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from nas.pareto import pareto_front
from nas.search.attrs import CANDIDATES, CONFIRM_PREFIX
from nas.search.config import SearchConfig
from nas.search.records import TrialRecord

__all__ = [
    "Candidates",
    "beyond_cap",
    "confirm_seeds",
    "confirmed_front",
    "enabled",
    "estimated_runs",
    "read_outcomes",
    "run_key",
    "select_candidates",
    "stored_candidates",
    "summarise",
    "summarise_all",
]


class Candidates(NamedTuple):
    """Trials to confirm (front first) and front members left unconfirmed by the cap."""

    confirm: list[int]
    beyond_cap: list[int]

    @property
    def pool(self) -> list[int]:
        """The trials the reported front is chosen from."""
        return self.confirm + self.beyond_cap

    def to_attr(self, finished: int) -> dict[str, Any]:
        """The stored form (``finished``: trials finished when they were chosen)."""
        return {"numbers": self.confirm, "beyond_cap": self.beyond_cap, "finished": finished}


def enabled(config: SearchConfig) -> bool:
    """Whether the search confirms its front (seeds asked for, accuracy an objective)."""
    return config.confirm_seeds > 0 and "accuracy" in config.objectives


def confirm_seeds(config: SearchConfig) -> list[int]:
    """The training seeds of the confirmation runs: ``seed + 1`` ... ``seed + confirm_seeds``."""
    return [config.seed + i for i in range(1, config.confirm_seeds + 1)]


def estimated_runs(config: SearchConfig, front_size: int) -> int:
    """Confirmation runs still to come, guessed from the current front (front + next layer)."""
    if not enabled(config):
        return 0
    return config.confirm_seeds * min(config.confirm_max, 2 * front_size)


def run_key(number: int, seed: int) -> str:
    """The study attribute holding the outcome of trial ``number`` trained with ``seed``."""
    return f"{CONFIRM_PREFIX}{number}.{seed}"


def read_outcomes(attrs: Mapping[str, Any]) -> dict[tuple[int, int], dict[str, Any]]:
    """Every stored confirmation outcome, by ``(trial number, seed)``."""
    out: dict[tuple[int, int], dict[str, Any]] = {}
    for key, value in attrs.items():
        if not key.startswith(CONFIRM_PREFIX) or key == CANDIDATES or not isinstance(value, dict):
            continue
        number, _, seed = key[len(CONFIRM_PREFIX) :].partition(".")
        try:
            out[(int(number), int(seed))] = value
        except ValueError:
            continue
    return out


def stored_candidates(
    attrs: Mapping[str, Any], records: Iterable[TrialRecord]
) -> Candidates | None:
    """The stored candidates, or None when none were chosen or trials finished since."""
    value = attrs.get(CANDIDATES)
    if not isinstance(value, dict) or not isinstance(value.get("numbers"), list):
        return None
    if value.get("finished") != sum(r.finished for r in records):
        return None
    beyond = value.get("beyond_cap") or []
    return Candidates([int(n) for n in value["numbers"]], [int(n) for n in beyond])


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _thin(layer: list[TrialRecord], k: int, config: SearchConfig) -> list[TrialRecord]:
    """``k`` members of ``layer`` spread evenly along the first objective (best first)."""
    if len(layer) <= k:
        return layer
    first = config.objectives[0]
    sign = -1.0 if config.directions()[0] == "maximize" else 1.0
    ordered = sorted(layer, key=lambda t: (sign * t.values[first], t.number))
    if k == 1:
        return ordered[:1]
    step = (len(ordered) - 1) / (k - 1)
    return [ordered[round(i * step)] for i in range(k)]


def select_candidates(records: Iterable[TrialRecord], config: SearchConfig) -> Candidates:
    """Trials to confirm: the front, then the next layer, ``confirm_max`` in all."""
    objectives, directions = config.objectives, config.directions()
    seen: set[str] = set()
    pool: list[TrialRecord] = []
    for t in sorted(records, key=lambda r: r.number):
        if t.state != "COMPLETE" or not t.feasible:
            continue
        if not all(_finite(t.values.get(o)) for o in objectives):
            continue
        if t.arch_id is not None and t.arch_id in seen:
            continue  # a repeat reuses its first trial's result: confirm the first only
        if t.arch_id is not None:
            seen.add(t.arch_id)
        pool.append(t)
    chosen: list[TrialRecord] = []
    beyond: list[int] = []
    for layer in range(2):
        room = config.confirm_max - len(chosen)
        if not pool or room <= 0:
            break
        front = set(pareto_front([[t.values[o] for o in objectives] for t in pool], directions))
        members = [t for i, t in enumerate(pool) if i in front]
        kept = _thin(members, room, config)
        chosen += kept
        if layer == 0:
            beyond = sorted({t.number for t in members} - {t.number for t in kept})
        pool = [t for i, t in enumerate(pool) if i not in front]
    return Candidates([t.number for t in chosen], beyond)


def summarise(record: TrialRecord, outcomes: list[dict[str, Any] | None]) -> TrialRecord:
    """``record`` as a candidate, with the outcomes of its confirmation seeds (None: not run)."""
    single = record.values.get("accuracy", record.metrics.get("accuracy"))
    single_test = record.metrics.get("test_accuracy")
    errors = [o["error"] for o in outcomes if o is not None and "error" in o]
    done = [o for o in outcomes if o is not None and "error" not in o]
    if errors or not _finite(single):
        return record.model_copy(
            update={
                "confirm_candidate": True,
                "confirmed": False,
                "confirm_error": str(errors[0]) if errors else "the trial has no accuracy",
                "n_seeds": 1,
                "accuracy_mean": float(single) if _finite(single) else None,
                "accuracy_sd": None,
                "test_accuracy": float(single_test) if _finite(single_test) else None,
            }
        )
    accuracies = [float(single)] + [float(o["accuracy"]) for o in done]
    tests = [single_test, *(o.get("test_accuracy") for o in done)]
    tests = [float(v) for v in tests if _finite(v)]
    return record.model_copy(
        update={
            "confirm_candidate": True,
            "confirmed": len(done) == len(outcomes),
            "confirm_error": None,
            "n_seeds": len(accuracies),
            "accuracy_mean": statistics.fmean(accuracies),
            "accuracy_sd": statistics.stdev(accuracies) if len(accuracies) > 1 else None,
            "test_accuracy": statistics.fmean(tests) if tests else None,
        }
    )


def beyond_cap(record: TrialRecord, config: SearchConfig) -> TrialRecord:
    """``record``, a front member the cap left unconfirmed, as a candidate of the front."""
    return summarise(record, []).model_copy(
        update={
            "confirmed": False,
            "confirm_error": f"not confirmed: the front has more than confirm_max="
            f"{config.confirm_max} members",
        }
    )


def summarise_all(
    records: list[TrialRecord],
    candidates: Candidates,
    outcomes: Mapping[tuple[int, int], dict[str, Any]],
    config: SearchConfig,
) -> list[TrialRecord]:
    """``records`` with each candidate summarised over its stored outcomes."""
    chosen, beyond = set(candidates.confirm), set(candidates.beyond_cap)
    seeds = confirm_seeds(config)
    out = []
    for r in records:
        if r.number in chosen:
            r = summarise(r, [outcomes.get((r.number, s)) for s in seeds])
        elif r.number in beyond:
            r = beyond_cap(r, config)
        out.append(r)
    return out


def confirmed_front(
    records: Iterable[TrialRecord], candidates: Candidates, config: SearchConfig
) -> list[TrialRecord]:
    """The feasible front of the (summarised) candidates on their seed-mean accuracy."""
    chosen = set(candidates.pool)
    pool = [r for r in records if r.number in chosen and r.state == "COMPLETE"]
    rows = [
        [r.accuracy_mean if o == "accuracy" else r.values.get(o) for o in config.objectives]
        for r in pool
    ]
    index = pareto_front(rows, config.directions(), [r.feasible for r in pool]) if pool else []
    return [pool[i] for i in index]
