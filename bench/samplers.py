"""Hypervolume reached by each sampler (tpe, nsga2, gp, random) at equal budgets.

Objective: a real, low-fidelity one. Each architecture is trained by ``nas.evaluation.evaluate``
on the embedded default task (``jittered``) at the default settings (3 epochs) unless told
otherwise, and its (accuracy, latency_ms) stored in a JSON table per training seed
($NAS_HOME/bench/samplers-<space>-<dataset>-<epochs>ep[-seedS].json, keyed by arch id), so every
sampler and run seed sees the same value for the same architecture, as in tabular NAS
benchmarks (NAS-Bench-201).

Samplers see one training run (seed 0), as a search does. Latencies are timed as a search
times them (one thread's CPU time), and the report prints how well two training seeds' tables
agree. Hypervolumes are printed for each run:

- ``seen``: of the values the sampler saw, every trial (this counts lucky training runs);
- ``confirmed``: of the front the run reports after confirmation, as ``nas search`` does it
  (``nas.search.confirm.select_candidates``: the front by what the run saw, then the next
  layer, 10 in all; each candidate scored by its mean accuracy over training seeds
  0..``--score-seeds``-1 and the median of its latencies; the front of those). This is what a
  user gets from a search;
- ``scored`` (``--score-all``): every trial by its seed mean (needs every trial's held-out
  seeds: costly on ``mobile``).

- ``--space tiny`` (1520 architectures, 1x8x8): the whole space is evaluated on first use for
  training seed 0 (``--jobs`` processes); held-out seeds only for the architectures a view
  needs; later runs only replay.
- ``--space mobile`` (the default space of ``nas search``, ~7.7e7 architectures, 1x16x16):
  architectures are evaluated when a sampler first proposes them; the tables grow across
  invocations.

The samplers come from ``nas.search.samplers.make_sampler`` (what ``run_search`` uses), driven
by Optuna's ask/tell with ``--pending`` trials asked before the oldest is told (2: a search of
concurrency 2 with trials long enough not to be proposed ahead; 3: with one proposed ahead;
1 = sequential). Budgets count trials, repeats included, as in a real search. Hypervolume
(``nas.pareto.hypervolume``, accuracy max, latency_ms min) uses one reference point per view:
accuracy 0 and 1.1 x the largest latency in its values. Goal: the default sampler (tpe) at 50
trials beats random at 100; the summary compares means, medians, the seeds where the sampler's
run beats random's run of the same seed, the share of all (sampler run, random run) pairs it
wins, and the difference of the means with a 95% bootstrap interval (an interval above zero:
the sampler beats random beyond the spread of the run seeds).

    python bench/samplers.py [--space mobile] [--epochs 3] [--seeds 0 1 2 3 4] [--budget 50]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from arch_tables import TABULATED, Table, Tables, agreement, evaluator, seed_mean

DATASET = "jittered"
"""The embedded default task (``EvalSettings``' default; a test checks they agree)."""
DIRECTIONS = ["maximize", "minimize"]
"""accuracy, latency_ms"""


def run(
    tables: Tables,
    sampler_name: str,
    seed: int,
    budget: int,
    table: Table,
    pending: int,
) -> tuple[list[tuple[str, list[float]]], Table, dict[str, str]]:
    """(arch id, [accuracy, latency_ms]) of each trial in ask order, the new table rows and
    each architecture's JSON by id."""
    import optuna

    from nas.search.samplers import make_sampler
    from nas.space import load_space, suggest

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = load_space(tables.space)
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
            evaluate = evaluate or evaluator(tables.space, tables.dataset, tables.epochs)
            values = new[arch.id] = evaluate(arch)
        trials.append((arch.id, values))
        seen[arch.id] = arch.to_json()
        queue.append((trial, values))
        if len(queue) == pending:
            told, told_values = queue.pop(0)
            study.tell(told, told_values)
    return trials, new, seen


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


def confirm_candidates(trials: list[tuple[str, list[float]]], space: str) -> list[str]:
    """Arch ids a search of these trials confirms (``nas.search.confirm.select_candidates``)."""
    from nas.search.config import SearchConfig
    from nas.search.confirm import select_candidates
    from nas.search.records import TrialRecord

    records = [
        TrialRecord(
            number=number,
            state="COMPLETE",
            arch_id=arch_id,
            values={"accuracy": values[0], "latency_ms": values[1]},
        )
        for number, (arch_id, values) in enumerate(trials)
    ]
    chosen = select_candidates(records, SearchConfig(space=space)).confirm
    return [trials[number][0] for number in chosen]


def confirmed_front(candidates: list[str], means: Table) -> list[list[float]]:
    """The front of the candidates by their seed means: what a confirmed search reports."""
    from nas.pareto import pareto_front

    points = [means[arch_id] for arch_id in candidates]
    return [points[i] for i in pareto_front(points, DIRECTIONS)]


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--space", default="tiny", help="tiny (tabulated) or mobile")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--budget", type=int, default=50)
    parser.add_argument("--random-budget", type=int, default=100)
    parser.add_argument("--samplers", nargs="+", default=["tpe", "nsga2", "gp"])
    parser.add_argument("--dataset", default=DATASET, help=f"training data (default: {DATASET})")
    parser.add_argument("--epochs", type=int, default=3, help="training epochs (default: 3)")
    parser.add_argument("--pending", type=int, default=2, help="trials asked before a tell")
    parser.add_argument(
        "--score-seeds",
        type=int,
        default=3,
        help="training seeds of the scored views (seed 0 is what runs see; 1: seen only)",
    )
    parser.add_argument(
        "--score-all",
        action="store_true",
        help="also score every trial by its seed mean (held-out seeds of every trial)",
    )
    parser.add_argument("--jobs", type=int, default=2, help="evaluating processes")
    args = parser.parse_args(argv)

    tables = Tables(args.space, args.dataset, args.epochs, args.jobs)
    table = tables.load()
    before = len(table)
    started = time.perf_counter()
    tasks = [("random", s, args.random_budget) for s in args.seeds]
    tasks += [(name, s, args.budget) for s in args.seeds for name in args.samplers]
    runs: dict[tuple[str, int], list[tuple[str, list[float]]]] = {}
    archs: dict[str, str] = {}
    with ProcessPoolExecutor(args.jobs) as pool:
        futures = {
            pool.submit(run, tables, name, seed, budget, table, args.pending): (
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
                tables.save(table)
            name, seed = futures[future]
            print(
                f"[{done}/{len(tasks)}] {name} seed {seed}: {len(new)} new evaluations, "
                f"{time.perf_counter() - started:.0f} s",
                file=sys.stderr,
                flush=True,
            )
    sampled = time.perf_counter() - started

    checkpoints = sorted({25, args.budget, args.random_budget})
    candidates = {
        (name, seed, k): confirm_candidates(trials[:k], args.space)
        for (name, seed), trials in runs.items()
        for k in checkpoints
        if k <= len(trials)
    }
    needed = (
        archs
        if args.score_all
        else {arch_id: archs[arch_id] for ids in candidates.values() for arch_id in ids}
    )
    others = tables.held_out(args.score_seeds, needed)

    from nas.pareto import hypervolume

    names = ["random", *args.samplers]
    whole = "whole space" if args.space in TABULATED else "all evaluated"
    distinct = {
        name: statistics.mean(len({i for i, _ in runs[(name, s)]}) for s in args.seeds)
        for name in names
    }
    print(
        f"{args.space} space, {args.dataset}, {args.epochs} epoch(s), {args.pending} pending; "
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
    means = seed_mean([table, *others])
    views: dict[str, tuple[str, Any]] = {
        "seen": (
            "the values the samplers saw (training seed 0), every trial",
            lambda name, seed, k: [v for _, v in runs[(name, seed)][:k]],
        ),
    }
    if others:
        views["confirmed"] = (
            f"the confirmed front of each run (seed means over training seeds "
            f"0-{args.score_seeds - 1})",
            lambda name, seed, k: confirmed_front(candidates[(name, seed, k)], means),
        )
    if others and args.score_all:
        views["scored"] = (
            f"every trial, by its mean over training seeds 0-{args.score_seeds - 1}",
            lambda name, seed, k: [means[i] for i, _ in runs[(name, seed)][:k]],
        )
    hv: dict[str, dict[tuple[str, int, int], float]] = {}
    for label, (what, points_of) in views.items():
        points = {(name, seed, k): points_of(name, seed, k) for name, seed, k in candidates}
        reference = [0.0, 1.1 * max(lat for p in points.values() for _, lat in p)]
        hv[label] = {
            (name, k, seed): hypervolume(p, DIRECTIONS, reference)
            for (name, seed, k), p in points.items()
        }
        known = table if label == "seen" else means
        best = hypervolume(list(known.values()), DIRECTIONS, reference)
        _report(
            f"\nHypervolume of {what}; reference accuracy 0, {reference[1]:.3f} ms; "
            f"{whole} ({len(known)} architectures): {best:.4f}",
            hv[label],
            checkpoints,
            names,
            args.seeds,
        )
    rb, b = args.random_budget, args.budget
    print(
        f"\n{'':<9} {'sampler':<7} {'mean@' + str(b):>8} {'vs random@' + str(rb):>12} "
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
                f"{label:<9} {name:<7} {mean:>8.4f} "
                f"{random_mean:>12.4f} {statistics.median(runs_at_b):>7.4f} "
                f"{statistics.median(random_runs):>7.4f} {f'{won}/{len(args.seeds)}':>9} "
                f"{pairs:>17.2f} {f'{mean - random_mean:+.4f} [{low:+.4f}, {high:+.4f}]':>27}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
