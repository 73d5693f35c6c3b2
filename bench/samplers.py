"""Hypervolume reached by each sampler (tpe, nsga2, gp, random) at equal budgets.

Objective: a real, low-fidelity one. Each architecture is trained for ``--epochs`` on the
embedded digits dataset by ``nas.evaluation.evaluate`` and its (accuracy, latency_ms) stored
in a JSON table per training seed ($NAS_HOME/bench/samplers-<space>-digits-<epochs>ep[-seedS]
.json, keyed by arch id), so every sampler and seed sees the same value for the same
architecture, as in tabular NAS benchmarks (NAS-Bench-201).

Samplers see one training run (seed 0), as a search does. Short training is noisy: on
``tiny`` at 3 epochs the accuracies of two training seeds of the same architectures correlate
at ~0.3, so most of what one run says about an architecture is luck. Latencies are timed as a
search times them and are repeatable on an idle machine (Spearman 0.99 between two seeds'
tables of ``tiny``), not beside other work (~0.4 for tables filled next to other benchmarks):
the report prints the agreement of the tables, and a fill warns when other work keeps cores
busy. Three hypervolumes are printed for each run:

- ``seen``: of the values the sampler saw, every trial (this counts lucky training runs);
- ``scored``: of every trial, each by its mean over training seeds 0..``--score-seeds``-1
  (accuracy: mean; latency: median of the measurements);
- ``front``: of the Pareto front the run returns (chosen by the values it saw, as ``nas
  pareto`` does), each member by its mean over the held-out training seeds 1..S-1. This is
  what a user gets from a search, judged by runs the search did not see, as NAS-Bench-201
  judges the architecture a search returns by seed-averaged accuracy.

- ``--space tiny`` (1520 architectures, 1x8x8): the whole space is evaluated on first use, for
  each scoring seed (``--jobs`` processes, ~13 minutes per seed on two idle cores at 3 epochs);
  later runs only replay.
- ``--space mobile`` (the default space of ``nas search``, ~7.7e7 architectures, 1x16x16):
  architectures are evaluated when a sampler first proposes them (the scoring seeds after the
  runs); runs are spread over ``--jobs`` processes and the tables grow across invocations.

The samplers come from ``nas.search.samplers.make_sampler`` (what ``run_search`` uses), driven
by Optuna's ask/tell with ``--pending`` trials asked before the oldest is told (2: a search of
concurrency 2 with trials long enough not to be proposed ahead; 3: with one proposed ahead;
1 = sequential). Budgets count trials, repeats included, as in a real search. Hypervolume
(``nas.pareto.hypervolume``, accuracy max, latency_ms min) uses one reference point for every
run: accuracy 0 and 1.1 x the largest latency in the table (for ``mobile``: among the
architectures evaluated so far). Goal: the default sampler (tpe) at 50 trials beats random at
100; the summary compares means, medians, the seeds where the sampler's run beats random's run
of the same seed, the share of all (sampler run, random run) pairs it wins, and the difference
of the means with a 95% bootstrap interval (an interval above zero: the sampler beats random
beyond the spread of the run seeds).

    python bench/samplers.py [--space mobile] [--epochs 1] [--seeds 0 1 2 3 4] [--budget 50]
"""

from __future__ import annotations

import argparse
import json
import os
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
DIRECTIONS = ["maximize", "minimize"]
"""accuracy, latency_ms"""


def _table_path(space: str, epochs: int, seed: int = 0) -> Path:
    from nas import workspace

    suffix = f"-seed{seed}" if seed else ""
    path = workspace.home() / "bench" / f"samplers-{space}-{DATASET}-{epochs}ep{suffix}.json"
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


def _evaluator(space_name: str, epochs: int, seed: int = 0) -> Any:
    """``arch -> [accuracy, latency_ms]`` with the bench's fixed low-fidelity settings.

    Always on the CPU (training and one-thread latency, timed as a search times it), also on
    a machine with a GPU, so that a table means the same wherever it was filled.
    """
    import torch

    from nas.evaluation import EvalSettings, evaluate
    from nas.space import load_space

    torch.set_num_threads(1)
    space = load_space(space_name)
    settings = EvalSettings(
        dataset=DATASET,
        epochs=epochs,
        seed=seed,
        device="cpu",
        latency_cache=False,
    )

    def run(arch: Any) -> list[float]:
        metrics = evaluate(space, arch, settings)
        return [float(metrics["accuracy"]), float(metrics["latency_ms"])]

    return run


def _evaluate_archs(space_name: str, archs: list[str], epochs: int, seed: int) -> Table:
    """Rows for the architectures ``archs`` (their JSON) trained with ``seed``."""
    from nas.space import Arch

    evaluate = _evaluator(space_name, epochs, seed)
    return {arch.id: evaluate(arch) for arch in map(Arch.from_json, archs)}


def load_table(space: str, epochs: int, jobs: int, seed: int = 0) -> Table:
    """The stored table of one training seed; a tabulated space is evaluated whole first."""
    path = _table_path(space, epochs, seed)
    if path.exists():
        return json.loads(path.read_text())
    if space not in TABULATED:
        return {}
    from nas.space import load_space

    started = time.perf_counter()
    archs = sorted(arch.to_json() for arch in all_archs(load_space(space)))
    table = _evaluate_parallel(space, archs, epochs, seed, jobs)
    path.write_text(json.dumps(table))
    print(
        f"evaluated {len(table)} architectures (seed {seed}) in "
        f"{time.perf_counter() - started:.0f} s",
        file=sys.stderr,
    )
    return table


def busy_cores(interval: float = 1.0) -> float | None:
    """Cores kept busy over the next ``interval`` seconds (Linux ``/proc/stat``), else None.

    The load average would also count this bench's own processes of the last minute.
    """

    def sample() -> tuple[int, int]:
        # user nice system idle iowait irq softirq steal (guest time is already in user)
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:9]]
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
        return sum(fields), idle

    try:
        total0, idle0 = sample()
        time.sleep(interval)
        total1, idle1 = sample()
    except (OSError, ValueError, IndexError):
        return None
    if total1 <= total0:
        return None
    return (os.cpu_count() or 1) * (1 - (idle1 - idle0) / (total1 - total0))


def _evaluate_parallel(space: str, archs: list[str], epochs: int, seed: int, jobs: int) -> Table:
    busy = busy_cores()
    if busy is not None and busy >= 0.5:
        print(
            f"warning: {busy:.1f} cores are busy with other work before evaluating "
            f"{len(archs)} architectures: latencies timed beside it are noisy (the "
            f"agreement line of the report shows how much); fill tables on an idle machine",
            file=sys.stderr,
        )
    table: Table = {}
    with ProcessPoolExecutor(jobs) as pool:
        parts = [archs[k::jobs] for k in range(jobs)]
        for part in pool.map(
            _evaluate_archs, [space] * jobs, parts, [epochs] * jobs, [seed] * jobs
        ):
            table.update(part)
    return table


def run(
    space_name: str,
    sampler_name: str,
    seed: int,
    budget: int,
    table: Table,
    pending: int,
    epochs: int,
) -> tuple[list[tuple[str, list[float]]], Table, dict[str, str]]:
    """(arch id, [accuracy, latency_ms]) of each trial in ask order, the new table rows and
    each architecture's JSON by id."""
    import optuna

    from nas.search.samplers import make_sampler
    from nas.space import load_space, suggest

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = load_space(space_name)
    evaluate = None
    new: Table = {}
    study = optuna.create_study(
        directions=DIRECTIONS,
        sampler=make_sampler(sampler_name, seed=seed, budget=budget),
    )
    trials: list[tuple[str, list[float]]] = []
    seen: dict[str, str] = {}
    queue: list[tuple[Any, list[float]]] = []
    for _ in range(budget):
        trial = study.ask()
        arch = suggest(trial, space)
        values = table.get(arch.id) or new.get(arch.id)
        if values is None:
            evaluate = evaluate or _evaluator(space_name, epochs)
            values = new[arch.id] = evaluate(arch)
        trials.append((arch.id, values))
        seen[arch.id] = arch.to_json()
        queue.append((trial, values))
        if len(queue) == pending:
            told, told_values = queue.pop(0)
            study.tell(told, told_values)
    return trials, new, seen


def seed_tables(
    space: str, epochs: int, jobs: int, seeds: int, archs: dict[str, str]
) -> list[Table]:
    """The tables of training seeds 1..seeds-1, completed with the architectures in ``archs``
    (the runs') they lack, and stored."""
    tables = []
    for seed in range(1, seeds):
        table = load_table(space, epochs, jobs, seed)
        missing = sorted(json_ for arch_id, json_ in archs.items() if arch_id not in table)
        if missing:
            table.update(_evaluate_parallel(space, missing, epochs, seed, jobs))
            _table_path(space, epochs, seed).write_text(json.dumps(table))
        tables.append(table)
    return tables


def seed_mean(tables: list[Table]) -> Table:
    """[mean accuracy, median latency_ms] over ``tables`` of every architecture all hold."""
    import numpy as np

    return {
        arch_id: [
            float(np.mean([t[arch_id][0] for t in tables])),
            float(np.median([t[arch_id][1] for t in tables])),
        ]
        for arch_id in tables[0]
        if all(arch_id in t for t in tables)
    }


def agreement(a: Table, b: Table) -> tuple[float, float, int]:
    """Spearman correlation of the accuracies and of the latencies of two tables (training
    seeds) over the architectures both hold, and how many those are."""
    from scipy.stats import spearmanr

    common = sorted(set(a) & set(b))
    if len(common) < 3:
        return float("nan"), float("nan"), len(common)
    accuracy, latency = (
        float(spearmanr([a[i][k] for i in common], [b[i][k] for i in common]).statistic)
        for k in (0, 1)
    )
    return accuracy, latency, len(common)


def difference_interval(
    a: list[float], b: list[float], rounds: int = 10_000, seed: int = 0
) -> tuple[float, float]:
    """95% bootstrap interval of mean(a) - mean(b), the runs of each resampled with
    replacement (the runs of two samplers are independent)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    means_a = rng.choice(np.asarray(a), (rounds, len(a))).mean(axis=1)
    means_b = rng.choice(np.asarray(b), (rounds, len(b))).mean(axis=1)
    low, high = np.percentile(means_a - means_b, [2.5, 97.5])
    return float(low), float(high)


def returned_front(values: list[list[float]]) -> list[int]:
    """Indices of the trials a run returns: its Pareto front by the values it saw."""
    from nas.pareto import pareto_front

    return pareto_front(values, DIRECTIONS)


def _report(
    title: str,
    hv: dict[tuple[str, int, int], float],
    checkpoints: list[int],
    names: list[str],
    seeds: list[int],
) -> None:
    """Print the mean (and per-seed) hypervolume of each sampler at each checkpoint."""
    print(title)
    print(f"{'sampler':<8} {'seed':>4} " + " ".join(f"{'@' + str(k):>8}" for k in checkpoints))
    for name in names:
        for seed in [*seeds, None]:
            cells = []
            for k in checkpoints:
                vals = [
                    hv[(name, k, s)]
                    for s in (seeds if seed is None else [seed])
                    if (name, k, s) in hv
                ]
                cells.append(f"{statistics.mean(vals):>8.4f}" if vals else f"{'':>8}")
            print(f"{name:<8} {'mean' if seed is None else seed:>4} " + " ".join(cells))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--space", default="tiny", help="tiny (tabulated) or mobile")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--budget", type=int, default=50)
    parser.add_argument("--random-budget", type=int, default=100)
    parser.add_argument("--samplers", nargs="+", default=["tpe", "nsga2", "gp"])
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--pending", type=int, default=2, help="trials asked before a tell")
    parser.add_argument(
        "--score-seeds",
        type=int,
        default=3,
        help="training seeds of the scored views (seed 0 is what runs see; 1: seen only)",
    )
    parser.add_argument("--jobs", type=int, default=2, help="evaluating processes")
    args = parser.parse_args()

    table = load_table(args.space, args.epochs, args.jobs)
    before = len(table)
    started = time.perf_counter()
    tasks = [("random", s, args.random_budget) for s in args.seeds]
    tasks += [(name, s, args.budget) for s in args.seeds for name in args.samplers]
    runs: dict[tuple[str, int], list[tuple[str, list[float]]]] = {}
    archs: dict[str, str] = {}
    with ProcessPoolExecutor(args.jobs) as pool:
        futures = {
            pool.submit(run, args.space, name, seed, budget, table, args.pending, args.epochs): (
                name,
                seed,
            )
            for name, seed, budget in tasks
        }
        for done, future in enumerate(futures, 1):
            trials, new, seen = future.result()
            runs[futures[future]] = trials
            archs.update(seen)
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
    sampled = time.perf_counter() - started
    others = seed_tables(args.space, args.epochs, args.jobs, args.score_seeds, archs)

    from nas.pareto import hypervolume

    checkpoints = sorted({25, args.budget, args.random_budget})
    names = ["random", *args.samplers]
    whole = "whole space" if args.space in TABULATED else "all evaluated"
    distinct = {
        name: statistics.mean(len({i for i, _ in runs[(name, s)]}) for s in args.seeds)
        for name in names
    }
    print(
        f"{args.space} space, {DATASET}, {args.epochs} epoch(s), {args.pending} pending; "
        f"{len(table)} architectures in the table ({len(table) - before} new); samplers took "
        f"{sampled:.0f} s; mean distinct architectures per run: "
        + ", ".join(f"{name} {count:.1f}" for name, count in distinct.items())
    )
    for seed, other in enumerate(others, 1):
        accuracy, latency, n = agreement(table, other)
        print(
            f"training seeds 0 and {seed} agree on {n} architectures: Spearman {accuracy:.2f} "
            f"(accuracy), {latency:.2f} (latency)"
        )
    held_out = (
        f"training seeds 1-{args.score_seeds - 1}" if args.score_seeds > 2 else "training seed 1"
    )
    views = {
        "seen": (table, False, "the values the samplers saw (training seed 0), every trial"),
    }
    if others:
        views["scored"] = (
            seed_mean([table, *others]),
            False,
            f"every trial, by its mean over training seeds 0-{args.score_seeds - 1}",
        )
        views["front"] = (
            seed_mean(others),
            True,
            f"the front each run returns (by what it saw), by its mean over {held_out}",
        )
    hv: dict[str, dict[tuple[str, int, int], float]] = {}
    for label, (values, front_only, what) in views.items():
        reference = [0.0, 1.1 * max(lat for _, lat in values.values())]
        hv[label] = {}
        for (name, seed), trials in runs.items():
            for k in checkpoints:
                if k > len(trials):
                    continue
                ids = [arch_id for arch_id, _ in trials[:k]]
                if front_only:
                    ids = [ids[i] for i in returned_front([v for _, v in trials[:k]])]
                points = [values[arch_id] for arch_id in ids]
                hv[label][(name, k, seed)] = hypervolume(points, DIRECTIONS, reference)
        best = hypervolume(list(values.values()), DIRECTIONS, reference)
        _report(
            f"\nHypervolume of {what}; reference accuracy 0, {reference[1]:.3f} ms; "
            f"{whole}: {best:.4f}",
            hv[label],
            checkpoints,
            names,
            args.seeds,
        )
    rb, b = args.random_budget, args.budget
    print(
        f"\n{'':<6} {'sampler':<7} {'mean@' + str(b):>8} {'vs random@' + str(rb):>12} "
        f"{'median':>7} {'vs':>7} {'seeds won':>9} {'P(run beats run)':>17} "
        f"{'mean difference [95% CI]':>27}"
    )
    for label in hv:
        random_runs = [hv[label][("random", rb, s)] for s in args.seeds]
        random_mean = statistics.mean(random_runs)
        for name in args.samplers:
            runs_at_b = [hv[label][(name, b, s)] for s in args.seeds]
            won = sum(x > y for x, y in zip(runs_at_b, random_runs, strict=True))
            pairs = sum(x > y for x in runs_at_b for y in random_runs) / len(runs_at_b) ** 2
            mean = statistics.mean(runs_at_b)
            low, high = difference_interval(runs_at_b, random_runs)
            print(
                f"{label:<6} {name:<7} {mean:>8.4f} "
                f"{random_mean:>12.4f} {statistics.median(runs_at_b):>7.4f} "
                f"{statistics.median(random_runs):>7.4f} {f'{won}/{len(args.seeds)}':>9} "
                f"{pairs:>17.2f} {f'{mean - random_mean:+.4f} [{low:+.4f}, {high:+.4f}]':>27}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
