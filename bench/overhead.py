"""Per-trial overhead of ``run_search`` as a search grows, and the floor of each layer under it.

What a user feels: ``(wall - ideal) / trials``, where ideal is ``trials * seconds /
concurrency``, for searches of trials that do no work (``--sizes``, 0-second trials; and
``--slow`` trials of ``--seconds``) on ``mobile`` (a space too large to exhaust), with
``--concurrency`` trials at a time, MLflow and the SQLite study included. Ray is started and
the workspace's MLflow store created before timing (one-time costs, printed apart).

Then each part alone, at the same sizes (``--floor-sizes`` for the quadratic ones):

- ``sampler``: the default sampler's ask + define-by-run + tell, two trials pending, on an
  in-memory study and on the search's storage (SQLite, mirrored in memory as a search does);
- ``optuna``: the same loop with Optuna's default sampler in memory (Optuna's own floor);
- ``tune``: a Ray Tune run of the same number of trials that report at once, proposed by a
  trivial searcher, with the search's Tune settings (Ray Tune's floor);
- ``mlflow``: logging one trial's child run as a search does (``SearchTracker.log_trial``,
  from the tracker a search makes).

    python bench/overhead.py [--sizes 100 1000 5000] [--slow 100] [--seconds 1]
        [--concurrency 2] [--floor-sizes 100 1000] [--mlflow-runs 200]
        [--parts engine sampler optuna tune mlflow]

A quick run: ``--sizes 50 --slow 0 --floor-sizes 50 --mlflow-runs 20``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from typing import Any

PARTS = ("engine", "sampler", "optuna", "tune", "mlflow")
DIRECTIONS = ["maximize", "minimize"]


def make_trial_fn(seconds: float) -> Any:
    """A trial that sleeps, then returns metrics derived from the arch (no training)."""

    def trial_fn(space: Any, arch: Any, settings: Any) -> dict[str, Any]:
        import hashlib
        import time

        time.sleep(seconds)
        digest = int(hashlib.sha256(arch.to_json().encode()).hexdigest()[:6], 16) / 16**6
        used = sum(s["attention"] != "none" for s in arch.to_dict()["stages"])
        return {"accuracy": 0.5 + 0.1 * used + 0.05 * digest, "latency_ms": 1 + used + digest}

    trial_fn.deterministic = True  # type: ignore[attr-defined]
    return trial_fn


def engine(trials: int, seconds: float, concurrency: int) -> float:
    """Wall seconds of ``run_search`` over ``trials`` trials of ``seconds`` each."""
    from nas.search import SearchConfig, run_search

    config = SearchConfig(space="mobile", budget=trials, concurrency=concurrency, confirm_seeds=0)
    started = time.perf_counter()
    result = run_search(config, trial_fn=make_trial_fn(seconds))
    elapsed = time.perf_counter() - started
    finished = sum(t.finished for t in result.trials)
    assert result.state == "completed" and finished == trials, (result.state, finished)
    return elapsed


def sampler_alone(trials: int, where: str, tmp: str, default: bool = False) -> float:
    """Seconds per trial of ask + define-by-run + tell, two trials pending.

    ``where``: ``memory`` or ``sqlite`` (the search's storage: SQLite mirrored in memory).
    ``default``: Optuna's default sampler instead of the search's.
    """
    import optuna

    from nas.search.samplers import make_sampler
    from nas.search.store import get_storage
    from nas.search.study import own_study
    from nas.space import load_space, suggest

    space = load_space("mobile")
    trial_fn = make_trial_fn(0.0)
    sampler = None if default else make_sampler("tpe", seed=0, budget=trials)
    if where == "memory":
        study = optuna.create_study(directions=DIRECTIONS, sampler=sampler)
    else:
        storage = get_storage(f"sqlite:///{tmp}/sampler-{trials}-{time.time_ns()}.db")
        created = optuna.create_study(storage=storage, directions=DIRECTIONS)
        mirrored, mirror = own_study(created, storage)
        study = optuna.load_study(study_name=mirrored.study_name, storage=mirror, sampler=sampler)
    pending: list[tuple[Any, Any]] = []
    started = time.perf_counter()
    for _ in range(trials):
        trial = study.ask()
        pending.append((trial, suggest(trial, space)))
        if len(pending) == 2:
            done, arch = pending.pop(0)
            metrics = trial_fn(space, arch, None)
            study.tell(done, [metrics["accuracy"], metrics["latency_ms"]])
    for done, arch in pending:
        metrics = trial_fn(space, arch, None)
        study.tell(done, [metrics["accuracy"], metrics["latency_ms"]])
    return (time.perf_counter() - started) / trials


def tune_floor(trials: int, concurrency: int, tmp: str) -> float:
    """Wall seconds of a Ray Tune run of ``trials`` trials that report at once."""
    from ray import tune
    from ray.tune.search import Searcher

    class Constant(Searcher):
        """Proposes ``{"x": 1}`` until ``trials`` were given."""

        def __init__(self) -> None:
            super().__init__(metric="y", mode="max")
            self.given = 0

        def suggest(self, trial_id: str) -> dict | None:
            if self.given >= trials:
                return Searcher.FINISHED
            self.given += 1
            return {"x": 1}

        def on_trial_complete(self, trial_id: str, result: dict | None = None, error=False):
            pass

    def trainable(config: dict[str, Any]) -> None:
        tune.report({"y": float(config["x"])})

    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    tuner = tune.Tuner(
        tune.with_resources(trainable, {"cpu": 1}),
        tune_config=tune.TuneConfig(
            search_alg=Constant(),
            num_samples=trials,
            max_concurrent_trials=concurrency,
            reuse_actors=True,
        ),
        run_config=tune.RunConfig(
            name=f"floor-{trials}-{time.time_ns()}",
            storage_path=f"{tmp}/ray_results",
            verbose=0,
            log_to_file=False,
        ),
    )
    started = time.perf_counter()
    tuner.fit()
    return time.perf_counter() - started


def mlflow_floor(runs: int, tmp: str) -> float:
    """Seconds per child run logged by ``SearchTracker.log_trial`` in the workspace store."""
    from nas.search.handoff import make_tracker
    from nas.search.records import TrialRecord

    tracker = make_tracker(None)
    tracker.start_parent(
        search_id="sbench",
        study_name="sbench",
        config={"space": "mobile"},
        space={},
        versions={},
        storage="sqlite://",
        run_id=None,
    )
    stages = [{"attention": "se", "hparams": {"reduction": 16}}] * 4
    started = time.perf_counter()
    for number in range(runs):
        record = TrialRecord(
            number=number,
            state="COMPLETE",
            params={f"stage{i}.attention": "se" for i in range(4)},
            arch={"stages": stages},
            arch_id=f"a{number}",
            values={"accuracy": 0.5, "latency_ms": 1.0},
            metrics={"accuracy": 0.5, "latency_ms": 1.0, "params": 1000},
        )
        tracker.log_trial(record, "sbench")
    return (time.perf_counter() - started) / runs


def _load() -> str:
    return f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}"


def _row(*cells: Any) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def run(args: argparse.Namespace, tmp: str) -> list[str]:
    """Measure the chosen parts; the table rows."""
    rows = []
    if "engine" in args.parts:
        from nas.search import SearchConfig, ensure_ray, run_search

        t0 = time.perf_counter()
        ensure_ray()
        ray_start = time.perf_counter() - t0
        t0 = time.perf_counter()
        run_search(
            SearchConfig(space="mobile", budget=2, confirm_seeds=0), trial_fn=make_trial_fn(0)
        )
        warm = time.perf_counter() - t0
        print(f"one-time: ray.init {ray_start:.1f} s, first search {warm:.1f} s", flush=True)
        runs = [(n, 0.0) for n in args.sizes] + [(n, args.seconds) for n in args.slow]
        for trials, seconds in runs:
            wall = engine(trials, seconds, args.concurrency)
            ideal = trials * seconds / args.concurrency
            over = (wall - ideal) / trials * 1000
            rows.append(
                _row(
                    f"run_search, {seconds:g}-s trials",
                    trials,
                    f"{wall:.1f} s",
                    f"{over:.1f}",
                    _load(),
                )
            )
            print(rows[-1], flush=True)
    for part, label, kwargs, sizes in (
        ("sampler", "default sampler alone, in memory", {"where": "memory"}, args.sizes),
        ("sampler", "default sampler alone, search's storage", {"where": "sqlite"}, args.sizes),
        (
            "optuna",
            "Optuna's default sampler, in memory",
            {"where": "memory", "default": True},
            args.floor_sizes,
        ),
    ):
        if part not in args.parts:
            continue
        for trials in sizes:
            per = sampler_alone(trials, tmp=tmp, **kwargs)
            rows.append(_row(label, trials, f"{per * trials:.1f} s", f"{per * 1000:.1f}", _load()))
            print(rows[-1], flush=True)
    if "tune" in args.parts:
        from nas.search import ensure_ray

        ensure_ray()
        tune_floor(4, args.concurrency, tmp)  # the workers' first start
        for trials in args.floor_sizes:
            wall = tune_floor(trials, args.concurrency, tmp)
            rows.append(
                _row(
                    "Ray Tune, trivial searcher",
                    trials,
                    f"{wall:.1f} s",
                    f"{wall / trials * 1000:.1f}",
                    _load(),
                )
            )
            print(rows[-1], flush=True)
    if "mlflow" in args.parts:
        mlflow_floor(2, tmp)  # the store's schema
        per = mlflow_floor(args.mlflow_runs, tmp)
        rows.append(
            _row(
                "MLflow, one child run",
                args.mlflow_runs,
                f"{per * args.mlflow_runs:.1f} s",
                f"{per * 1000:.1f}",
                _load(),
            )
        )
        print(rows[-1], flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[100, 1000, 5000])
    parser.add_argument("--slow", type=int, nargs="*", default=[100])
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--floor-sizes", type=int, nargs="*", default=[100, 1000])
    parser.add_argument("--mlflow-runs", type=int, default=200)
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS))
    args = parser.parse_args(argv)

    import logging

    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)
    print(f"{os.cpu_count()} CPUs, {_load()}, concurrency {args.concurrency}", flush=True)
    previous = os.environ.get("NAS_HOME")
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["NAS_HOME"] = tmp
        try:
            rows = run(args, tmp)
        finally:
            if previous is None:
                os.environ.pop("NAS_HOME", None)
            else:
                os.environ["NAS_HOME"] = previous
    print("\n| what | trials | wall | ms per trial (overhead) | load |")
    print("|---|---|---|---|---|")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    code = main()
    if "ray" in sys.modules:
        sys.modules["ray"].shutdown()
    sys.exit(code)
