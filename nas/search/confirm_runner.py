"""Runs the confirmation of a search whose budget is done (see :mod:`nas.search.confirm`).

Each confirmation run is a Ray task with a trial's resources (``cpus_per_trial``, the GPUs a
trial gets), at most as many at once as trials run, calling the trial function
(:func:`nas.search.trainable.evaluate_candidate`: ``nas.evaluation.evaluate`` or the run's
``trial_fn``) in a worker prepared as a trial's is (:func:`~nas.search.trainable.prepare_worker`),
with the trial's :class:`~nas.evaluation.EvalSettings` except ``seed``. A run never fails the
search: an error, a crashed worker or a failure of Ray itself is stored as that run's outcome.
A stop (``should_stop``, Ctrl-C) cancels the runs in flight; they run again on resume.
"""

from __future__ import annotations

import json
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from nas.search import confirm
from nas.search.records import SearchProgress, TrialRecord
from nas.search.store import jsonable
from nas.search.trainable import ERROR, FAILED, METRICS

if TYPE_CHECKING:
    from nas.search.run import SearchRun

__all__ = ["confirm_search", "confirm_task"]

log = logging.getLogger(__name__)

#: Entries of a run's metrics kept in its stored outcome (the rest equal the trial's).
KEPT = ("accuracy", "test_accuracy", "loss", "train_seconds", "eval_seconds")
KEPT_TEXT = ("hostname", "ray_node_id")
WAIT_S = 0.5
"""How often the driver checks for a stop while runs are in flight."""


def confirm_task(payload: dict[str, Any], arch: dict[str, Any], seed: int) -> dict[str, Any]:
    """One confirmation run inside a Ray worker: the trial function with training ``seed``."""
    from nas.search.trainable import evaluate_candidate, placement, prepare_worker
    from nas.space import Arch

    prepare_worker(payload)
    settings = payload["settings"].model_copy(update={"seed": seed})
    started = time.time()
    result = evaluate_candidate(
        payload["space"],
        Arch.from_dict(arch),
        settings,
        payload["objectives"],
        payload["trial_fn"],
        None,
        placement(),
    )
    return result | {"nas_seconds": time.time() - started}


def outcome_of(result: dict[str, Any]) -> dict[str, Any]:
    """The stored outcome of a run from :func:`confirm_task`'s result."""
    metrics = json.loads(result.get(METRICS) or "{}")
    where = {k: metrics[k] for k in KEPT_TEXT if isinstance(metrics.get(k), str)}
    if result.get(FAILED) is not False:
        return {"error": str(result.get(ERROR) or "the confirmation run failed")[:2000]} | where
    kept = {k: metrics[k] for k in KEPT if k in metrics}
    return jsonable(kept | where | {"seconds": result.get("nas_seconds")})


def confirm_search(
    run: SearchRun, space: Any, trial_fn: Callable[..., dict[str, Any]] | None
) -> bool:
    """Confirm the best trials of ``run`` (its budget done); False when stopped before the end.

    Never raises but for KeyboardInterrupt: a failure of the machinery becomes the outcome of
    every run it left undone.
    """
    if not confirm.enabled(run.config):
        return True
    run.tracker.drain()  # every trial's MLflow run id known before logging onto it
    try:
        confirmation = _Confirmation(run)
        todo = confirmation.todo()
        confirmation.publish(confirmation.chosen.pool)
    except Exception:  # the storage failed: the front stays unconfirmed; a resume retries
        log.exception("search %s: could not start its confirmation", run.search_id)
        return True
    if not todo:
        return True
    if run.stop():
        return False
    try:
        return confirmation.execute(todo, space, trial_fn)
    except KeyboardInterrupt:
        raise
    except Exception as exc:
        log.exception("confirmation of search %s failed", run.search_id)
        error = f"confirmation could not run: {type(exc).__name__}: {exc}"
        for number, seed in todo:
            if (number, seed) not in confirmation.outcomes:
                confirmation.store(number, seed, {"error": error[:2000]})
        return True


class _Confirmation:
    """The candidates of one run, their outcomes so far, and the progress it reports."""

    def __init__(self, run: SearchRun) -> None:
        self.run = run
        self.config = run.config
        records = list(run.records.values())
        self.chosen = confirm.select_candidates(records, self.config)
        self.candidates = self.chosen.confirm
        finished = sum(r.finished for r in records)
        run.study.set_user_attr(confirm.CANDIDATES, self.chosen.to_attr(finished))
        for number in self.chosen.beyond_cap:
            with run.lock:
                run.records[number] = confirm.beyond_cap(run.records[number], self.config)
        self.seeds = confirm.confirm_seeds(self.config)
        self.outcomes = confirm.read_outcomes(run.study.user_attrs)
        self.total = self.done = 0
        self.started = time.monotonic()
        self.done_here = 0

    def failed(self, number: int) -> bool:
        return any("error" in self.outcomes.get((number, s), {}) for s in self.seeds)

    def todo(self) -> list[tuple[int, int]]:
        """The runs without an outcome, of candidates none of whose runs failed."""
        missing = [
            (n, s)
            for n in self.candidates
            for s in self.seeds
            if (n, s) not in self.outcomes and not self.failed(n)
        ]
        self.total = len(self.candidates) * len(self.seeds)
        self.done = self.total - len(missing)
        return missing

    def summary(self, number: int) -> TrialRecord:
        record = self.run.records[number]
        if number not in self.candidates:  # beyond the cap: summarised once, never run
            return record
        return confirm.summarise(record, [self.outcomes.get((number, s)) for s in self.seeds])

    def settled(self, number: int) -> bool:
        """Whether a candidate's summary is final (every run in, one failed, or none to run)."""
        if number not in self.candidates or self.failed(number):
            return True
        return all((number, s) in self.outcomes for s in self.seeds)

    def publish(self, numbers: list[int]) -> None:
        """Update the run's records and tell the callbacks and MLflow about them."""
        for number in numbers:
            record = self.summary(number)
            with self.run.lock:
                self.run.records[number] = record
            if self.settled(number) and record.mlflow_run_id:
                self.run.tracker.submit_confirmation(record)
            self._call(self.run.on_trial, record)

    def store(self, number: int, seed: int, outcome: dict[str, Any]) -> None:
        """Keep one run's outcome durably (a study attribute), then report it."""
        try:
            self.run.study.set_user_attr(confirm.run_key(number, seed), outcome)
        except Exception as exc:  # kept in memory; a resume would run it again
            log.warning("could not store confirmation %s/%s: %s", number, seed, exc)
        self.outcomes[(number, seed)] = outcome
        self.done += 1
        self.done_here += 1
        if self.settled(number):
            self.publish([number])
        self._call(self.run.on_progress, self.progress())

    def progress(self) -> SearchProgress:
        records = list(self.run.records.values())
        front = confirm.confirmed_front(records, self.chosen, self.config)
        remaining = self.total - self.done
        if self.done_here:
            per_run = (time.monotonic() - self.started) / self.done_here
        elif self.run.finished_here:
            per_run = (time.monotonic() - self.run.started) / self.run.finished_here
        else:
            per_run = None
        base = self.run.progress()
        return base.model_copy(
            update={
                "phase": "confirming",
                "confirm_done": self.done,
                "confirm_total": self.total,
                "front_size": len(front),
                "eta_s": per_run * remaining if per_run is not None else None,
            }
        )

    def _call(self, callback: Callable[[Any], None] | None, arg: Any) -> None:
        if callback is None:
            return
        try:
            callback(arg)
        except Exception as exc:
            log.warning("search callback failed: %s", exc)

    def execute(
        self,
        todo: list[tuple[int, int]],
        space: Any,
        trial_fn: Callable[..., dict[str, Any]] | None,
    ) -> bool:
        """Run ``todo`` on the Ray cluster, ``concurrency`` at once; False when stopped."""
        import ray

        from nas import workspace
        from nas.search.resources import ensure_ray, eval_settings, resolve_resources

        ensure_ray(self.config.ray_address)
        device, gpus, concurrency = resolve_resources(self.config)
        payload = ray.put(
            {
                "space": space,
                "settings": eval_settings(self.config, device),
                "objectives": list(self.config.objectives),
                "trial_fn": trial_fn,
                "nas_home": str(workspace.home()),
                "threads": self.config.cpus_per_trial,
            }
        )
        task = ray.remote(confirm_task).options(
            num_cpus=self.config.cpus_per_trial, num_gpus=gpus, max_retries=0
        )
        self._call(self.run.on_progress, self.progress())
        queue = deque(todo)
        pending: dict[Any, tuple[int, int]] = {}
        try:
            while queue or pending:
                if self.run.stop():
                    return False
                while queue and len(pending) < concurrency:
                    number, seed = queue.popleft()
                    if self.failed(number):  # its single-seed result stands: skip the rest
                        self.done += 1
                        continue
                    arch = self.run.records[number].arch
                    pending[task.remote(payload, arch, seed)] = (number, seed)
                if not pending:
                    continue
                ready, _ = ray.wait(list(pending), num_returns=1, timeout=WAIT_S)
                for ref in ready:
                    number, seed = pending.pop(ref)
                    try:
                        outcome = outcome_of(ray.get(ref))
                    except Exception as exc:  # the worker died (killed, out of memory)
                        outcome = {"error": f"the run's Ray worker failed: {exc}"[:2000]}
                    self.store(number, seed, outcome)
            return True
        finally:
            for ref in pending:
                try:
                    ray.cancel(ref, force=True)
                except Exception as exc:
                    log.debug("could not cancel a confirmation run: %s", exc)
