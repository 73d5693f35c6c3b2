"""Sample efficiency of a sampler (default: tpe) on ``mobile``, synthetic objective, many seeds.

A focused check that a change of the default sampler's configuration does not cost
hypervolume; the real-objective comparison of samplers is ``bench/samplers.py``. Each
parameter value a trial takes adds a fixed pseudo-random gain to accuracy and a correlated
cost to latency (an additive landscape with a trade-off, the same for every run), trials are
asked two at a time as a concurrency-2 search asks them, and the hypervolume (accuracy up to
its maximum, latency from the reference 20) is recorded at each budget for each run seed.

    python bench/sampler_efficiency.py run --budgets 50 100 --seeds 30 > new.json
    git show <old commit>:nas/search/samplers.py > /tmp/old_samplers.py
    python bench/sampler_efficiency.py run --samplers-file /tmp/old_samplers.py ... > old.json
    python bench/sampler_efficiency.py compare old.json new.json

``--samplers-file`` takes ``make_sampler`` from another version of ``nas/search/samplers.py``.
``--history N`` sets the default sampler's history bound (0: unbounded) where it has one.
``compare`` prints the mean hypervolume of each and the mean of the paired differences (same
run seeds) with a 95% bootstrap interval.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

REFERENCE = (0.0, 20.0)


def _unit(*parts: Any) -> float:
    digest = hashlib.sha256(repr(parts).encode()).digest()
    return int.from_bytes(digest[:6], "big") / 2**48


def objective(params: dict[str, Any]) -> tuple[float, float]:
    """(accuracy, latency): per (name, value) a gain and a cost correlated with it."""
    gain = cost = 0.0
    for name, value in params.items():
        u, v = _unit("gain", name, value), _unit("cost", name, value)
        gain += u
        cost += 0.6 * u + 0.4 * v
    return gain, cost


def _samplers(path: str | None) -> Any:
    """The module ``nas.search.samplers``, or the version of it in file ``path``."""
    if path is None:
        from nas.search import samplers

        return samplers
    import importlib.util

    spec = importlib.util.spec_from_file_location("other_samplers", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def one_run(make_sampler: Any, name: str, seed: int, budget: int) -> list[tuple[float, float]]:
    """Objective values in ask order, two trials pending at a time."""
    import optuna

    from nas.space import load_space, suggest

    space = load_space("mobile")
    sampler = make_sampler(name, seed=seed, budget=budget)
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
    pending: list[Any] = []
    values = []
    for _ in range(budget):
        trial = study.ask()
        suggest(trial, space)
        pending.append(trial)
        if len(pending) == 2:
            done = pending.pop(0)
            result = objective(done.params)
            study.tell(done, list(result))
            values.append(result)
    for done in pending:
        result = objective(done.params)
        study.tell(done, list(result))
        values.append(result)
    return values


def run(args: argparse.Namespace) -> None:
    import optuna

    from nas.pareto import hypervolume

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    samplers = _samplers(args.samplers_file)
    if args.history is not None and hasattr(samplers, "TPE_HISTORY"):
        samplers.TPE_HISTORY = args.history or None
    top = max(args.budgets)
    out: dict[str, Any] = {
        "sampler": args.sampler,
        "samplers": args.samplers_file,
        "history": args.history,
        "runs": {},
    }
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        started = time.perf_counter()
        values = one_run(samplers.make_sampler, args.sampler, seed, top)
        hv = {
            str(b): hypervolume([list(v) for v in values[:b]], ["maximize", "minimize"], REFERENCE)
            for b in args.budgets
        }
        distinct = len({v for v in values})
        seconds = time.perf_counter() - started
        out["runs"][str(seed)] = {"hv": hv, "distinct": distinct, "s": seconds}
        print(f"seed {seed}: {hv} distinct {distinct}/{top}", file=sys.stderr)
    json.dump(out, sys.stdout)


def _interval(diffs: np.ndarray, rng: np.random.Generator) -> tuple[float, float]:
    means = rng.choice(diffs, size=(10000, diffs.size), replace=True).mean(axis=1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def compare(args: argparse.Namespace) -> None:
    a, b = (json.loads(Path(path).read_text()) for path in (args.a, args.b))
    seeds = sorted(set(a["runs"]) & set(b["runs"]), key=int)
    rng = np.random.default_rng(0)
    print(f"{len(seeds)} paired run seeds; A = {args.a}, B = {args.b}")
    print("| budget | A mean HV | B mean HV | B - A [95% bootstrap] | B wins | A s | B s |")
    print("|---|---|---|---|---|---|---|")
    for budget in a["runs"][seeds[0]]["hv"]:
        ha = np.array([a["runs"][s]["hv"][budget] for s in seeds])
        hb = np.array([b["runs"][s]["hv"][budget] for s in seeds])
        lo, hi = _interval(hb - ha, rng)
        wins = int((hb > ha).sum())
        sa = np.mean([a["runs"][s]["s"] for s in seeds])
        sb = np.mean([b["runs"][s]["s"] for s in seeds])
        print(
            f"| {budget} | {ha.mean():.3f} | {hb.mean():.3f} | {(hb - ha).mean():+.3f} "
            f"[{lo:+.3f}, {hi:+.3f}] | {wins}/{len(seeds)} | {sa:.1f} | {sb:.1f} |"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_run = sub.add_parser("run", help="run seeds, print JSON")
    p_run.add_argument("--sampler", default="tpe", help="a make_sampler name")
    p_run.add_argument("--samplers-file", default=None)
    p_run.add_argument("--budgets", type=int, nargs="+", default=[50, 100])
    p_run.add_argument("--seeds", type=int, default=30)
    p_run.add_argument("--first-seed", type=int, default=0)
    p_run.add_argument("--history", type=int, default=None)
    p_cmp = sub.add_parser("compare", help="paired comparison of two JSON outputs")
    p_cmp.add_argument("a")
    p_cmp.add_argument("b")
    args = parser.parse_args()
    run(args) if args.command == "run" else compare(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
