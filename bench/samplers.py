"""Hypervolume reached by each sampler (tpe, nsga2, gp, random) at equal budgets.

Objective: a real, low-fidelity one. The `tiny` space (two MobileNetV2-style stages, 1520
architectures, 1x8x8 input) trained for 1 epoch on the embedded digits dataset (8x8
handwritten digits, its native size) by ``nas.evaluation.evaluate``; objectives accuracy (max)
and latency_ms (min), as in a default search. Each architecture is evaluated once and cached
(JSON in $NAS_HOME/bench/samplers-cache.json, keyed by arch id): every sampler and seed sees
the same objective function, and reruns are cheap. Latency noise on a loaded machine is frozen
into the cache, so it affects all samplers alike.

The samplers come from ``nas.search.samplers.make_sampler`` (what ``run_search`` uses), driven
by a sequential Optuna loop (the engine's Ray plumbing adds nothing to a sampler comparison).
Hypervolume (``nas.pareto.hypervolume``) uses one reference point for all runs: accuracy 0
and 1.1 x the largest latency seen. Goal: the default sampler (tpe) at 50 trials beats
random at 100.

    python bench/samplers.py [--seeds 0 1 2] [--budget 50] [--random-budget 100]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any


def _cache_path() -> Path:
    from nas import workspace

    path = workspace.home() / "bench" / "samplers-cache.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def run(
    sampler_name: str, seed: int, budget: int, cache: dict[str, Any], epochs: int
) -> list[tuple[float, float]]:
    """(accuracy, latency_ms) of each trial, in order."""
    import optuna

    from nas.evaluation import EvalSettings, evaluate
    from nas.search.samplers import make_sampler
    from nas.space import load_space, suggest

    space = load_space("tiny")
    settings = EvalSettings(
        dataset="digits", epochs=epochs, seed=0, latency_repeats=20, latency_warmup=3
    )
    study = optuna.create_study(
        directions=["maximize", "minimize"],
        sampler=make_sampler(sampler_name, seed=seed, budget=budget),
    )
    points = []
    for _ in range(budget):
        trial = study.ask()
        arch = suggest(trial, space)
        if arch.id not in cache:
            metrics = evaluate(space, arch, settings)
            cache[arch.id] = [metrics["accuracy"], metrics["latency_ms"]]
            _cache_path().write_text(json.dumps(cache))
        accuracy, latency = cache[arch.id]
        study.tell(trial, [accuracy, latency])
        points.append((accuracy, latency))
    return points


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--budget", type=int, default=50)
    parser.add_argument("--random-budget", type=int, default=100)
    parser.add_argument("--samplers", nargs="+", default=["tpe", "nsga2"])
    parser.add_argument("--epochs", type=int, default=1)
    args = parser.parse_args()

    import optuna

    from nas.pareto import hypervolume

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    path = _cache_path()
    cache: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    started = time.perf_counter()
    runs: dict[tuple[str, int], list[tuple[float, float]]] = {}
    for seed in args.seeds:
        runs[("random", seed)] = run("random", seed, args.random_budget, cache, args.epochs)
        for name in args.samplers:
            runs[(name, seed)] = run(name, seed, args.budget, cache, args.epochs)
        print(f"seed {seed} done, {len(cache)} architectures evaluated", file=sys.stderr)

    worst = max(lat for pts in runs.values() for _, lat in pts)
    reference = [0.0, 1.1 * worst]
    directions = ["maximize", "minimize"]

    def hv(points: list[tuple[float, float]], k: int) -> float:
        return hypervolume([list(p) for p in points[:k]], directions, reference)

    checkpoints = sorted({25, args.budget, args.random_budget})
    names = ["random", *args.samplers]
    print(
        f"\nHypervolume (accuracy x latency_ms, reference {reference[0]:g}, "
        f"{reference[1]:.3f} ms); tiny space, digits, {args.epochs} epoch; "
        f"{len(cache)} distinct architectures evaluated; {time.perf_counter() - started:.0f} s"
    )
    header = f"{'sampler':<8} {'seed':>4} " + " ".join(f"{'@' + str(k):>8}" for k in checkpoints)
    print(header)
    table: dict[tuple[str, int], float] = {}
    for name in names:
        for seed in args.seeds:
            points = runs[(name, seed)]
            cells = []
            for k in checkpoints:
                if k <= len(points):
                    table[(name, k, seed)] = hv(points, k)  # type: ignore[index]
                    cells.append(f"{table[(name, k, seed)]:>8.4f}")  # type: ignore[index]
                else:
                    cells.append(f"{'':>8}")
            print(f"{name:<8} {seed:>4} " + " ".join(cells))
    for name in names:
        cells = []
        for k in checkpoints:
            vals = [table.get((name, k, s)) for s in args.seeds]  # type: ignore[arg-type]
            vals = [v for v in vals if v is not None]
            cells.append(f"{statistics.mean(vals):>8.4f}" if vals else f"{'':>8}")
        print(f"{name:<8} {'all':>4} " + " ".join(cells))
    rb, b = args.random_budget, args.budget
    for name in args.samplers:
        wins = sum(
            table[(name, b, s)] > table[("random", rb, s)]  # type: ignore[index]
            for s in args.seeds
        )
        print(f"{name}@{b} beats random@{rb} in {wins}/{len(args.seeds)} seeds")
    return 0


if __name__ == "__main__":
    sys.exit(main())
