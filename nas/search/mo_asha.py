"""Pareto-aware asynchronous successive halving (mo-asha) for accuracy against latency.

ASHA (Li et al., "A System for Massively Parallel Hyperparameter Tuning", MLSys 2020,
https://arxiv.org/abs/1810.05934) checks a trial at rungs of ``min_epochs * eta**k`` epochs
below its full epochs: a trial continues when it is in the top ``1/eta`` of the results
recorded at that rung so far, else it stops. MOASHA (Schmucker et al., "Multi-objective
Asynchronous Successive Halving", 2021, https://arxiv.org/abs/2106.12639) ranks a rung by
non-dominated sorting instead of one metric. Here the two objectives are the validation
accuracy at the rung and the latency, which is measured before training and so is exact at
every rung.

The promotion rule (:func:`promoted`) is a pure function of a rung's table:

- ``k = ceil(n / eta)`` of the ``n`` entries recorded at the rung (the candidate included) are
  promoted, as Ray Tune's ASHA percentile cut-off does; the first trial at a rung always
  continues, and below ``eta`` entries only the best one does.
- Entries are ranked front by front (non-dominated sorting on maximise accuracy, minimise
  latency). Within the front that straddles the cut-off the tie-break is an epsilon-net
  (greedy farthest point, as MOASHA's): the most accurate member first, then repeatedly the
  member farthest from those already chosen, in accuracy and log-latency scaled to the rung's
  range. Crowding distance (NSGA-II) is computed once, so it can keep two neighbours of one
  wide gap and drop the other side of the front; the greedy net re-measures after every pick,
  so ``k`` picks cover the front (a 2-approximation of the best ``k``-centre cover). Exact
  duplicates go to the earlier trial.
- ``margin`` (optional, PASHA's idea: Bohdal et al., 2023, https://arxiv.org/abs/2207.06940)
  also promotes a trial that would be in the top ``k`` with ``margin`` more accuracy: within
  the seed-to-seed noise of the cut-off, a rung cannot tell it from the promoted ones.

:class:`RungBook` holds the rung tables of one search (rebuilt from the study on resume);
:class:`MoAshaScheduler` is the Ray Tune scheduler that consults it.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ray.tune.schedulers import FIFOScheduler, TrialScheduler

from nas.pareto import pareto_front
from nas.search.attrs import ATTR
from nas.search.trainable import EPOCH, PARTIAL

if TYPE_CHECKING:
    from nas.search.run import SearchRun

__all__ = [
    "MoAshaScheduler",
    "RungBook",
    "RungEntry",
    "book_from_trials",
    "make_scheduler",
    "promoted",
    "ranked",
    "rung_epochs",
]

_DIRECTIONS = ("maximize", "minimize")


@dataclass(frozen=True)
class RungEntry:
    """One trial's result at a rung: its key (the Optuna trial number) and objectives."""

    key: int
    accuracy: float
    latency_ms: float


def rung_epochs(min_epochs: int, eta: int, epochs: int) -> list[int]:
    """The rungs ``min_epochs * eta**k`` strictly below ``epochs`` (full training)."""
    if min_epochs < 1 or eta < 2:
        raise ValueError(f"need min_epochs >= 1 and eta >= 2, got {min_epochs} and {eta}")
    rungs: list[int] = []
    epoch = min_epochs
    while epoch < epochs:
        rungs.append(epoch)
        epoch *= eta
    return rungs


def _net_order(front: list[RungEntry], scale: Callable[[RungEntry], tuple[float, float]]) -> list:
    """``front`` in epsilon-net order: most accurate first, then farthest from those chosen."""
    rest = sorted(front, key=lambda e: (-e.accuracy, e.latency_ms, e.key))
    order = [rest.pop(0)]
    points = {e.key: scale(e) for e in front}
    nearest = {e.key: math.dist(points[e.key], points[order[0].key]) for e in rest}
    while rest:
        best = max(rest, key=lambda e: (nearest[e.key], -e.key))
        rest.remove(best)
        order.append(best)
        for e in rest:
            nearest[e.key] = min(nearest[e.key], math.dist(points[e.key], points[best.key]))
    return order


def ranked(entries: Sequence[RungEntry], limit: int | None = None) -> list[RungEntry]:
    """``entries`` in promotion order (fronts in turn, each in epsilon-net order); only the
    first ``limit`` when given (fronts past it are not sorted)."""
    limit = len(entries) if limit is None else limit
    if not entries or limit <= 0:
        return []
    accs = [e.accuracy for e in entries]
    logs = [math.log(max(e.latency_ms, 1e-9)) for e in entries]
    acc_lo, acc_span = min(accs), (max(accs) - min(accs)) or 1.0
    log_lo, log_span = min(logs), (max(logs) - min(logs)) or 1.0

    def scale(e: RungEntry) -> tuple[float, float]:
        return (
            (e.accuracy - acc_lo) / acc_span,
            (math.log(max(e.latency_ms, 1e-9)) - log_lo) / log_span,
        )

    order: list[RungEntry] = []
    remaining = list(entries)
    while remaining and len(order) < limit:
        rows = [(e.accuracy, e.latency_ms) for e in remaining]
        on_front = set(pareto_front(rows, _DIRECTIONS))
        front = [e for i, e in enumerate(remaining) if i in on_front]
        order.extend(_net_order(front, scale))
        remaining = [e for i, e in enumerate(remaining) if i not in on_front]
    return order[:limit]


def promoted(entries: Sequence[RungEntry], key: int, eta: int, margin: float = 0.0) -> bool:
    """Whether the entry ``key`` of a rung's table ``entries`` continues (see the module doc).

    ``entries`` holds every result recorded at the rung, ``key``'s included.
    """
    if not any(e.key == key for e in entries):
        raise ValueError(f"trial {key} is not in the rung's table")
    k = math.ceil(len(entries) / eta)
    if any(e.key == key for e in ranked(entries, k)):
        return True
    if margin <= 0:
        return False
    boosted = [
        RungEntry(e.key, e.accuracy + margin, e.latency_ms) if e.key == key else e for e in entries
    ]
    return any(e.key == key for e in ranked(boosted, k))


class RungBook:
    """The rung tables of one search (epoch -> trial key -> entry) and its decisions."""

    def __init__(self, rungs: Iterable[int], eta: int, margin: float = 0.0) -> None:
        self.rungs = sorted(set(rungs))
        self.eta = eta
        self.margin = margin
        self.tables: dict[int, dict[int, RungEntry]] = {r: {} for r in self.rungs}
        self._lock = threading.Lock()

    def load(self, epoch: int, entry: RungEntry) -> None:
        """Add an entry recorded earlier (a resumed search), without a decision."""
        if epoch in self.tables:
            with self._lock:
                self.tables[epoch][entry.key] = entry

    def decide(self, epoch: int, entry: RungEntry) -> bool:
        """Record ``entry`` at rung ``epoch`` and say whether it continues (True off rungs)."""
        if epoch not in self.tables:
            return True
        with self._lock:
            table = self.tables[epoch]
            table[entry.key] = entry
            rows = list(table.values())
        return promoted(rows, entry.key, self.eta, self.margin)


RungCallback = Callable[[int, int, RungEntry, bool], None]
"""``on_rung(number, epoch, entry, promoted)``: a trial reached a rung."""


class MoAshaScheduler(FIFOScheduler):
    """Ray Tune scheduler: stops a trial at a rung unless :meth:`RungBook.decide` promotes it.

    It reads the per-epoch results of :func:`nas.search.trainable.nas_trainable` (``EPOCH``,
    ``PARTIAL``, ``nas_number``, accuracy and latency) and tells ``on_rung`` each decision
    before Tune acts on it. Like the searcher, a pickled copy (Tune keeps one for
    ``Tuner.restore``, which a search does not use) has no book and lets trials run.
    """

    _supports_buffered_results = False  # decide on every epoch's result as it comes

    def __init__(
        self,
        book: RungBook,
        on_rung: RungCallback | None = None,
        *,
        accuracy: str = "accuracy",
        latency: str = "latency_ms",
    ) -> None:
        super().__init__()
        self._book: RungBook | None = book
        self._on_rung = on_rung
        self._accuracy = accuracy
        self._latency = latency

    def __getstate__(self) -> dict[str, Any]:
        """A copy without the book and the callback (see the class doc)."""
        return self.__dict__ | {"_book": None, "_on_rung": None}

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict) -> str:
        """CONTINUE, or STOP for a trial not promoted at the rung it has just reached."""
        if self._book is None or not result.get(PARTIAL):
            return TrialScheduler.CONTINUE
        epoch = int(result.get(EPOCH, 0))
        accuracy, latency = result.get(self._accuracy), result.get(self._latency)
        if epoch not in self._book.tables or not _finite(accuracy) or not _finite(latency):
            return TrialScheduler.CONTINUE
        entry = RungEntry(int(result["nas_number"]), float(accuracy), float(latency))
        keep = self._book.decide(epoch, entry)
        if self._on_rung is not None:
            self._on_rung(entry.key, epoch, entry, keep)
        return TrialScheduler.CONTINUE if keep else TrialScheduler.STOP

    def debug_string(self) -> str:
        """One line for Tune's status output."""
        rungs = self._book.rungs if self._book is not None else []
        return f"Using mo-asha: rungs at epochs {rungs}."


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(float(value))


def book_from_trials(trials: Iterable[Any], rungs: Iterable[int], eta: int) -> RungBook:
    """A rung book holding the rung results kept in ``trials``' user attributes (a resumed
    search goes on with the tables of its earlier runs; see
    :meth:`nas.search.run.SearchRun.record_rung`)."""
    book = RungBook(rungs, eta)
    for trial in trials:
        for epoch, (accuracy, latency) in (trial.user_attrs.get(ATTR["rungs"]) or {}).items():
            book.load(int(epoch), RungEntry(trial.number, float(accuracy), float(latency)))
    return book


def make_scheduler(run: SearchRun, study: Any, epochs: int) -> MoAshaScheduler | None:
    """The Tune scheduler of ``run``'s config (None: Tune's default, every trial to the end),
    its rung tables rebuilt from ``study``."""
    config = run.config
    if config.scheduler != "mo-asha":
        return None
    rungs = rung_epochs(config.min_epochs, config.eta, epochs)
    book = book_from_trials(study.get_trials(deepcopy=False), rungs, config.eta)
    return MoAshaScheduler(book, run.record_rung)
