"""Hypervolume reached by each sampler (tpe, nsga2, gp, random) at equal budgets.

Objective: a real, low-fidelity one, made tabular. Every architecture of the `tiny` space (two
MobileNetV2-style stages, 1520 architectures, 1x8x8 input) is trained once for 1 epoch on the
embedded digits dataset (8x8 handwritten digits, its native size) by
``nas.evaluation.evaluate`` and its (accuracy, latency_ms) stored in a JSON table
($NAS_HOME/bench/samplers-tiny-digits-1ep.json, keyed by arch id). The first run fills it
(``--jobs`` processes, ~10 minutes on two cores); later runs only replay samplers against it,
so many seeds are cheap. As in tabular NAS benchmarks (NAS-Bench-201), every sampler and seed
sees exactly the same objective; latency noise of the loaded machine is frozen into the table.

The samplers come from ``nas.search.samplers.make_sampler`` (what ``run_search`` uses), driven
by Optuna's ask/tell with ``--pending`` trials asked before the oldest is told (Ray's
OptunaSearch asks one trial per free slot; 1 = sequential). Budgets count trials, repeats
included, as in a real search. Hypervolume (``nas.pareto.hypervolume``, accuracy max,
latency_ms min) uses one reference point fixed by the table, not by the runs: accuracy 0 and
1.1 x the largest latency in the space; the table also gives the best reachable value (the
hypervolume of the whole space). Goal: the default sampler (tpe) at 50 trials beats random at
100.

    python bench/samplers.py [--seeds 0 1 2 3 4] [--budget 50] [--random-budget 100]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

SPACE = "tiny"
DATASET = "digits"


def _table_path(epochs: int) -> Path:
    from nas import workspace

    path = workspace.home() / "bench" / f"samplers-{SPACE}-{DATASET}-{epochs}ep.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


class _Walk:
    """A stand-in Optuna trial that follows given choice indices (0 past their end)."""

    def __init__(self, prefix: list[int]) -> None:
        self.prefix = prefix
        self.sizes: list[int] = []

    def suggest_categorical(self, name: str, choices: list[Any]) -> Any:
        i = len(self.sizes)
        self.sizes.append(len(choices))
        return choices[self.prefix[i] if i < len(self.prefix) else 0]


def all_archs(space: Any) -> list[Any]:
    """Every architecture of ``space``: a depth-first walk of its define-by-run choices."""
    from nas.space import suggest

    archs, stack = [], [[]]
    while stack:
        walk = _Walk(stack.pop())
        archs.append(suggest(walk, space))
        n = len(walk.prefix)
        path = walk.prefix + [0] * (len(walk.sizes) - n)
        for i in range(n, len(walk.sizes)):
            stack.extend([*path[:i], k] for k in range(1, walk.sizes[i]))
    return archs


def _evaluate_part(part: int, parts: int, epochs: int) -> dict[str, list[float]]:
    import torch

    from nas.evaluation import EvalSettings, evaluate
    from nas.space import load_space

    torch.set_num_threads(1)
    space = load_space(SPACE)
    settings = EvalSettings(
        dataset=DATASET, epochs=epochs, seed=0, latency_repeats=20, latency_warmup=3
    )
    archs = sorted(all_archs(space), key=lambda a: a.id)[part::parts]
    out = {}
    for arch in archs:
        metrics = evaluate(space, arch, settings)
        out[arch.id] = [float(metrics["accuracy"]), float(metrics["latency_ms"])]
    return out


def load_table(epochs: int, jobs: int) -> dict[str, list[float]]:
    """(accuracy, latency_ms) of every architecture, evaluated on first use."""
    path = _table_path(epochs)
    if path.exists():
        return json.loads(path.read_text())
    started = time.perf_counter()
    table: dict[str, list[float]] = {}
    with ProcessPoolExecutor(jobs) as pool:
        for part in pool.map(_evaluate_part, range(jobs), [jobs] * jobs, [epochs] * jobs):
            table.update(part)
    path.write_text(json.dumps(table))
    print(
        f"evaluated {len(table)} architectures in {time.perf_counter() - started:.0f} s",
        file=sys.stderr,
    )
    return table


def run(
    sampler_name: str, seed: int, budget: int, table: dict[str, list[float]], pending: int
) -> list[tuple[str, list[float]]]:
    """(arch id, [accuracy, latency_ms]) of each trial, in ask order."""
    import optuna

    from nas.search.samplers import make_sampler
    from nas.space import load_space, suggest

    space = load_space(SPACE)
    study = optuna.create_study(
        directions=["maximize", "minimize"],
        sampler=make_sampler(sampler_name, seed=seed, budget=budget),
    )
    trials: list[tuple[str, list[float]]] = []
    queue: list[tuple[Any, str]] = []
    for _ in range(budget):
        trial = study.ask()
        arch = suggest(trial, space)
        trials.append((arch.id, table[arch.id]))
        queue.append((trial, arch.id))
        if len(queue) == pending:
            told, arch_id = queue.pop(0)
            study.tell(told, table[arch_id])
    return trials


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--budget", type=int, default=50)
    parser.add_argument("--random-budget", type=int, default=100)
    parser.add_argument("--samplers", nargs="+", default=["tpe", "nsga2", "gp"])
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--pending", type=int, default=2, help="trials asked before a tell")
    parser.add_argument("--jobs", type=int, default=2, help="processes filling the table")
    args = parser.parse_args()

    import optuna

    from nas.pareto import hypervolume

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    table = load_table(args.epochs, args.jobs)
    reference = [0.0, 1.1 * max(lat for _, lat in table.values())]
    directions = ["maximize", "minimize"]
    best = hypervolume(list(table.values()), directions, reference)

    started = time.perf_counter()
    runs: dict[tuple[str, int], list[tuple[str, list[float]]]] = {}
    for seed in args.seeds:
        runs[("random", seed)] = run("random", seed, args.random_budget, table, args.pending)
        for name in args.samplers:
            runs[(name, seed)] = run(name, seed, args.budget, table, args.pending)

    checkpoints = sorted({25, args.budget, args.random_budget})
    names = ["random", *args.samplers]
    hv: dict[tuple[str, int, int], float] = {}
    distinct: dict[tuple[str, int], int] = {}
    for (name, seed), trials in runs.items():
        for k in checkpoints:
            if k <= len(trials):
                hv[(name, k, seed)] = hypervolume(
                    [v for _, v in trials[:k]], directions, reference
                )
        distinct[(name, seed)] = len({arch_id for arch_id, _ in trials})
    print(
        f"Hypervolume (accuracy x latency_ms, reference {reference[0]:g}, "
        f"{reference[1]:.3f} ms); {SPACE} space ({len(table)} architectures, whole-space "
        f"hypervolume {best:.4f}), {DATASET}, {args.epochs} epoch; {args.pending} pending; "
        f"samplers took {time.perf_counter() - started:.0f} s"
    )
    print(
        f"{'sampler':<8} {'seed':>4} "
        + " ".join(f"{'@' + str(k):>8}" for k in checkpoints)
        + f" {'distinct':>8}"
    )
    for name in names:
        for seed in [*args.seeds, None]:
            seeds = args.seeds if seed is None else [seed]
            cells = []
            for k in checkpoints:
                vals = [hv[(name, k, s)] for s in seeds if (name, k, s) in hv]
                cells.append(f"{statistics.mean(vals):>8.4f}" if vals else f"{'':>8}")
            count = statistics.mean(distinct[(name, s)] for s in seeds)
            label = "mean" if seed is None else str(seed)
            print(f"{name:<8} {label:>4} " + " ".join(cells) + f" {count:>8.1f}")
    rb, b = args.random_budget, args.budget
    for name in args.samplers:
        beats = [s for s in args.seeds if hv[(name, b, s)] > hv[("random", rb, s)]]
        print(
            f"{name}@{b} beats random@{rb} in {len(beats)}/{len(args.seeds)} seeds "
            f"({' '.join(map(str, beats)) or 'none'})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
