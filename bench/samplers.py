"""Hypervolume reached by each sampler (tpe, nsga2, gp, random) at equal budgets.

Objective: a real, low-fidelity one. Each architecture is trained once for ``--epochs`` on the
embedded digits dataset by ``nas.evaluation.evaluate`` (seed 0) and its (accuracy, latency_ms)
stored in a JSON table ($NAS_HOME/bench/samplers-<space>-digits-<epochs>ep.json, keyed by arch
id), so every sampler and seed sees the same value for the same architecture, as in tabular
NAS benchmarks (NAS-Bench-201); latency noise of the machine is frozen into the table.

- ``--space tiny`` (1520 architectures, 1x8x8): the whole space is evaluated on first use
  (``--jobs`` processes, ~20 minutes on two cores at 3 epochs); later runs only replay.
- ``--space mobile`` (the default space of ``nas search``, ~7.7e7 architectures, 1x16x16):
  architectures are evaluated when a sampler first proposes them; runs are spread over
  ``--jobs`` processes and the table grows across invocations.

The samplers come from ``nas.search.samplers.make_sampler`` (what ``run_search`` uses), driven
by Optuna's ask/tell with ``--pending`` trials asked before the oldest is told (2: a search of
concurrency 2 with trials long enough not to be proposed ahead; 3: with one proposed ahead;
1 = sequential). Budgets count trials,
repeats included, as in a real search. Hypervolume (``nas.pareto.hypervolume``, accuracy max,
latency_ms min) uses one reference point for every run: accuracy 0 and 1.1 x the largest
latency in the table (for ``mobile``: among the architectures evaluated so far). Goal: the
default sampler (tpe) at 50 trials beats random at 100.

    python bench/samplers.py [--space mobile] [--epochs 1] [--seeds 0 1 2 3 4] [--budget 50]
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

DATASET = "digits"
TABULATED = {"tiny"}
"""Spaces small enough to evaluate whole before replaying the samplers."""

Table = dict[str, list[float]]


def _table_path(space: str, epochs: int) -> Path:
    from nas import workspace

    path = workspace.home() / "bench" / f"samplers-{space}-{DATASET}-{epochs}ep.json"
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


def _evaluator(space_name: str, epochs: int) -> Any:
    """``arch -> [accuracy, latency_ms]`` with the bench's fixed low-fidelity settings."""
    import torch

    from nas.evaluation import EvalSettings, evaluate
    from nas.space import load_space

    torch.set_num_threads(1)
    space = load_space(space_name)
    settings = EvalSettings(
        dataset=DATASET, epochs=epochs, seed=0, latency_repeats=20, latency_warmup=3
    )

    def run(arch: Any) -> list[float]:
        metrics = evaluate(space, arch, settings)
        return [float(metrics["accuracy"]), float(metrics["latency_ms"])]

    return run


def _evaluate_part(space_name: str, part: int, parts: int, epochs: int) -> Table:
    from nas.space import load_space

    evaluate = _evaluator(space_name, epochs)
    archs = sorted(all_archs(load_space(space_name)), key=lambda a: a.id)[part::parts]
    return {arch.id: evaluate(arch) for arch in archs}


def load_table(space: str, epochs: int, jobs: int) -> Table:
    """The stored table; a tabulated space is evaluated whole on first use."""
    path = _table_path(space, epochs)
    if path.exists():
        return json.loads(path.read_text())
    if space not in TABULATED:
        return {}
    started = time.perf_counter()
    table: Table = {}
    with ProcessPoolExecutor(jobs) as pool:
        parts = [jobs] * jobs
        for part in pool.map(_evaluate_part, [space] * jobs, range(jobs), parts, [epochs] * jobs):
            table.update(part)
    path.write_text(json.dumps(table))
    print(f"evaluated {len(table)} architectures in {time.perf_counter() - started:.0f} s")
    return table


def run(
    space_name: str,
    sampler_name: str,
    seed: int,
    budget: int,
    table: Table,
    pending: int,
    epochs: int,
) -> tuple[list[tuple[str, list[float]]], Table]:
    """(arch id, [accuracy, latency_ms]) of each trial in ask order, and the new table rows."""
    import optuna

    from nas.search.samplers import make_sampler
    from nas.space import load_space, suggest

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = load_space(space_name)
    evaluate = None
    new: Table = {}
    study = optuna.create_study(
        directions=["maximize", "minimize"],
        sampler=make_sampler(sampler_name, seed=seed, budget=budget),
    )
    trials: list[tuple[str, list[float]]] = []
    queue: list[tuple[Any, list[float]]] = []
    for _ in range(budget):
        trial = study.ask()
        arch = suggest(trial, space)
        values = table.get(arch.id) or new.get(arch.id)
        if values is None:
            evaluate = evaluate or _evaluator(space_name, epochs)
            values = new[arch.id] = evaluate(arch)
        trials.append((arch.id, values))
        queue.append((trial, values))
        if len(queue) == pending:
            told, told_values = queue.pop(0)
            study.tell(told, told_values)
    return trials, new


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--space", default="tiny", help="tiny (tabulated) or mobile")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--budget", type=int, default=50)
    parser.add_argument("--random-budget", type=int, default=100)
    parser.add_argument("--samplers", nargs="+", default=["tpe", "nsga2", "gp"])
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--pending", type=int, default=2, help="trials asked before a tell")
    parser.add_argument("--jobs", type=int, default=2, help="evaluating processes")
    args = parser.parse_args()

    from nas.pareto import hypervolume

    table = load_table(args.space, args.epochs, args.jobs)
    before = len(table)
    started = time.perf_counter()
    tasks = [("random", s, args.random_budget) for s in args.seeds]
    tasks += [(name, s, args.budget) for s in args.seeds for name in args.samplers]
    runs: dict[tuple[str, int], list[tuple[str, list[float]]]] = {}
    with ProcessPoolExecutor(args.jobs) as pool:
        futures = {
            pool.submit(run, args.space, name, seed, budget, table, args.pending, args.epochs): (
                name,
                seed,
            )
            for name, seed, budget in tasks
        }
        for done, future in enumerate(futures, 1):
            trials, new = future.result()
            runs[futures[future]] = trials
            for arch_id, values in new.items():
                table.setdefault(arch_id, values)
            if new:
                _table_path(args.space, args.epochs).write_text(json.dumps(table))
            name, seed = futures[future]
            print(
                f"[{done}/{len(tasks)}] {name} seed {seed}: {len(new)} new evaluations, "
                f"{time.perf_counter() - started:.0f} s",
                file=sys.stderr,
                flush=True,
            )

    directions = ["maximize", "minimize"]
    reference = [0.0, 1.1 * max(lat for _, lat in table.values())]
    best = hypervolume(list(table.values()), directions, reference)
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
    whole = "whole space" if args.space in TABULATED else "all evaluated"
    print(
        f"Hypervolume (accuracy x latency_ms, reference {reference[0]:g}, "
        f"{reference[1]:.3f} ms); {args.space} space, {len(table)} architectures in the table "
        f"({len(table) - before} new; {whole}: hypervolume {best:.4f}), {DATASET}, "
        f"{args.epochs} epoch(s); {args.pending} pending; samplers took "
        f"{time.perf_counter() - started:.0f} s"
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
