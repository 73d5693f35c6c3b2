"""Overhead of ``run_search`` (Ray Tune + OptunaSearch + MLflow) against a plain Optuna loop.

The same trial function (sleep ``--seconds``, then metrics derived from the architecture) runs
``--trials`` times on the ``tiny`` space, with ``--concurrency`` trials at a time, through
``nas.search.run_search`` and through ``optuna.Study.optimize(n_jobs=concurrency)`` with the
same sampler and a SQLite study. Ray is started and the MLflow store migrated before timing
(one-time costs of a process / a workspace, printed separately); each search still starts its
own Ray Tune worker processes. Each size runs ``--repeats`` times, the two loops alternating.
Goal: ratio <= 1.15 for 1-second trials at the default budget of a search (50 trials).

    python bench/overhead.py [--trials 20 50] [--seconds 1] [--concurrency 2] [--repeats 2]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from typing import Any


def make_trial_fn(seconds: float) -> Any:
    """A trial that sleeps, then returns metrics derived from the arch (no training)."""

    def trial_fn(space: Any, arch: Any, settings: Any) -> dict[str, Any]:
        import hashlib
        import time

        time.sleep(seconds)
        digest = int(hashlib.sha256(arch.to_json().encode()).hexdigest()[:6], 16) / 16**6
        used = sum(s["attention"] != "none" for s in arch.to_dict()["stages"])
        return {"accuracy": 0.5 + 0.1 * used + 0.05 * digest, "latency_ms": 1 + used + digest}

    return trial_fn


def plain_optuna(trials: int, concurrency: int, seconds: float, storage: str) -> float:
    """Wall time of the same trials in ``study.optimize`` with ``n_jobs=concurrency``."""
    import optuna

    from nas.search.samplers import make_sampler
    from nas.space import load_space, suggest

    space = load_space("tiny")
    trial_fn = make_trial_fn(seconds)
    study = optuna.create_study(
        storage=storage,
        directions=["maximize", "minimize"],
        sampler=make_sampler("tpe", seed=0, budget=trials),
    )

    def objective(trial: optuna.Trial) -> tuple[float, float]:
        metrics = trial_fn(space, suggest(trial, space), None)
        return metrics["accuracy"], metrics["latency_ms"]

    started = time.perf_counter()
    study.optimize(objective, n_trials=trials, n_jobs=concurrency)
    return time.perf_counter() - started


def nas_search(trials: int, concurrency: int, seconds: float) -> float:
    """Wall time of ``run_search`` with the same trial function."""
    from nas.search import SearchConfig, run_search

    config = SearchConfig(space="tiny", budget=trials, concurrency=concurrency)
    started = time.perf_counter()
    result = run_search(config, trial_fn=make_trial_fn(seconds))
    elapsed = time.perf_counter() - started
    assert result.state == "completed" and len(result.trials) == trials, result.state
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, nargs="+", default=[20, 50])
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    import logging

    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["NAS_HOME"] = tmp
        from nas.search import SearchConfig, ensure_ray, run_search

        t0 = time.perf_counter()
        ensure_ray()
        ray_start = time.perf_counter() - t0
        t0 = time.perf_counter()
        run_search(SearchConfig(space="tiny", budget=1), trial_fn=make_trial_fn(0.0))
        warmup = time.perf_counter() - t0
        rows = []
        for trials in args.trials:
            for i in range(args.repeats):
                storage = f"sqlite:///{tmp}/plain-{trials}-{i}.db"
                plain = plain_optuna(trials, args.concurrency, args.seconds, storage)
                engine = nas_search(trials, args.concurrency, args.seconds)
                rows.append((trials, i, plain, engine))

    print(
        f"\n{args.seconds:g}-second trials, concurrency {args.concurrency}, "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}"
    )
    print(f"one-time: ray.init {ray_start:.1f} s; first search (MLflow schema) {warmup:.1f} s")
    print(
        f"{'trials':>6} {'run':>3}  {'ideal (s)':>9}  {'optuna loop (s)':>15}  "
        f"{'run_search (s)':>14}  {'ratio':>6}"
    )
    for trials, i, plain, engine in rows:
        ideal = trials * args.seconds / args.concurrency
        print(
            f"{trials:>6} {i:>3}  {ideal:>9.1f}  {plain:>15.2f}  {engine:>14.2f}  "
            f"{engine / plain:>6.3f}"
        )
    for trials in args.trials:
        mine = [r for r in rows if r[0] == trials]
        best_plain = min(r[2] for r in mine)
        best_engine = min(r[3] for r in mine)
        print(
            f"{trials:>6} best  {'':>9}  {best_plain:>15.2f}  {best_engine:>14.2f}  "
            f"{best_engine / best_plain:>6.3f}"
        )
    import ray

    ray.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
