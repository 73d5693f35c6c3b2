"""Full-fidelity search against mo-asha, replayed from a table of learning curves.

A live search per run seed is too slow on a shared 2-core machine, so both searches are
replayed from the curves of ``bench/curves.py`` (every architecture of a 50-architecture
narrowing of ``tiny``, trained once to the full epochs on the embedded default ``jittered``,
validation accuracy and seconds per epoch, latency). Per run seed:

- the search's own sampler (``nas.search.samplers.make_sampler``, the default one) asks an
  in-memory Optuna study for ``--budget`` trials through ask/tell, the space's define-by-run;
- two trials run at once (``--concurrency``), in simulated time (the table's epoch seconds),
  so results arrive asynchronously as in Ray Tune; an architecture proposed again after it
  completed reuses its result (0 epochs), as the engine does;
- ``full``: every trial trains all epochs; ``mo-asha``: at each rung the trial is kept or
  stopped by the same :class:`nas.search.mo_asha.RungBook` the scheduler uses, stopped trials
  are told PRUNED;
- the front is confirmed as the engine does (:func:`nas.search.confirm.select_candidates`,
  then the front of the candidates on their mean accuracy over the search's training seed and
  ``--confirm-seeds`` more, from the tables of those seeds, trained here when missing);
- the hypervolume of the confirmed front (accuracy seed mean x latency, reference: the
  table's lowest seed-0 accuracy and highest latency) is the figure compared.

Printed per method: total training epochs, simulated wall time with the concurrency, and the
hypervolume, each as the mean over run seeds with a bootstrap 95% interval (2,000 resamples).

    python bench/multifidelity.py [--runs 10] [--budget 20] [--epochs 9] [--min-epochs 1]
        [--eta 3] [--jobs 2]
"""

from __future__ import annotations

import argparse
import heapq
import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

import curves


@dataclass
class Outcome:
    """One replayed search."""

    epochs: int = 0
    wall_s: float = 0.0
    pruned: int = 0
    complete: dict[int, tuple[str, float, float]] = field(default_factory=dict)
    hypervolume: float = 0.0


@dataclass(order=True)
class _Running:
    until: float
    number: int
    epoch: int = field(compare=False)
    trial: Any = field(compare=False)
    arch_id: str = field(compare=False)


def replay(
    table: dict[str, curves.Curve],
    space: Any,
    *,
    seed: int,
    budget: int,
    epochs: int,
    concurrency: int,
    book: Any | None,
) -> Outcome:
    """One search replayed from ``table`` (``book``: a mo-asha rung book, None: full)."""
    import optuna

    from nas.search.mo_asha import RungEntry
    from nas.search.samplers import SAMPLER_FACTORIES, make_sampler
    from nas.space import suggest

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = make_sampler(next(iter(SAMPLER_FACTORIES)), seed=seed, budget=budget)
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
    out, clock, asked = Outcome(), 0.0, 0
    running: list[_Running] = []
    done_archs: dict[str, tuple[float, float]] = {}

    def start() -> None:
        nonlocal asked
        trial = study.ask()
        arch = suggest(trial, space)
        asked += 1
        if arch.id in done_archs:  # reuse: told at once, no training
            study.tell(trial, list(done_archs[arch.id]))
            out.complete[trial.number] = (arch.id, *done_archs[arch.id])
            return
        seconds = table[arch.id]["epoch_seconds"][0]
        heapq.heappush(running, _Running(clock + seconds, trial.number, 1, trial, arch.id))

    while asked < budget and len(running) < concurrency:
        start()
    while running:
        item = heapq.heappop(running)
        clock, out.epochs = item.until, out.epochs + 1
        curve = table[item.arch_id]
        accuracy, latency = curve["accuracy_per_epoch"][item.epoch - 1], curve["latency_ms"]
        if item.epoch == epochs:
            study.tell(item.trial, [accuracy, latency])
            done_archs[item.arch_id] = (accuracy, latency)
            out.complete[item.number] = (item.arch_id, accuracy, latency)
        elif book is not None and not book.decide(
            item.epoch, RungEntry(item.number, accuracy, latency)
        ):
            study.tell(item.trial, state=optuna.trial.TrialState.PRUNED)
            out.pruned += 1
        else:
            item.until = clock + curve["epoch_seconds"][item.epoch]
            item.epoch += 1
            heapq.heappush(running, item)
            continue
        while asked < budget and len(running) < concurrency:
            start()
    out.wall_s = clock
    return out


def candidates(outcome: Outcome, confirm_max: int) -> list[int]:
    """The trials the engine would confirm (:func:`nas.search.confirm.select_candidates`)."""
    from nas.search.config import SearchConfig
    from nas.search.confirm import select_candidates
    from nas.search.records import TrialRecord

    records = [
        TrialRecord(
            number=n,
            state="COMPLETE",
            arch_id=arch_id,
            values={"accuracy": acc, "latency_ms": lat},
        )
        for n, (arch_id, acc, lat) in outcome.complete.items()
    ]
    config = SearchConfig(confirm_max=confirm_max)
    return select_candidates(records, config).pool


def confirmed_hypervolume(
    outcome: Outcome, chosen: list[int], tables: list[dict[str, curves.Curve]], ref: list[float]
) -> float:
    """Hypervolume of the front of ``chosen`` on seed-mean accuracy (every table's seed)."""
    from nas.pareto import hypervolume, pareto_front

    rows = []
    for number in chosen:
        arch_id, _, latency = outcome.complete[number]
        mean = statistics.fmean(t[arch_id]["accuracy_per_epoch"][-1] for t in tables)
        rows.append([mean, latency])
    front = [rows[i] for i in pareto_front(rows, ["maximize", "minimize"])]
    return hypervolume(front, ["maximize", "minimize"], ref)


def bootstrap(values: list[float], rounds: int = 2000) -> tuple[float, float, float]:
    """Mean and 95% bootstrap interval."""
    import numpy as np

    rng = np.random.default_rng(0)
    data = np.asarray(values, dtype=float)
    means = rng.choice(data, size=(rounds, len(data))).mean(axis=1)
    return float(data.mean()), float(np.quantile(means, 0.025)), float(np.quantile(means, 0.975))


@dataclass(frozen=True)
class Method:
    """One way to search: ``book`` None trains every trial to the end."""

    label: str
    budget: int
    min_epochs: int = 0  # 0: full fidelity
    eta: int = 3
    margin: float = 0.0

    def book(self, epochs: int) -> Any:
        from nas.search.mo_asha import RungBook, rung_epochs

        if not self.min_epochs:
            return None
        return RungBook(rung_epochs(self.min_epochs, self.eta, epochs), self.eta, self.margin)


def rung_fidelity(tables: list[dict[str, curves.Curve]], epochs: int) -> list[str]:
    """Per epoch: Spearman of seed-0 accuracy there against at the end (95% bootstrap over
    architectures), and the seed-to-seed sd there (architectures with every seed)."""
    import numpy as np
    from scipy.stats import spearmanr

    table = tables[0]
    ids = sorted(table)
    curves_ = np.array([table[i]["accuracy_per_epoch"] for i in ids])
    both = [i for i in ids if all(i in t for t in tables)]
    rng = np.random.default_rng(0)
    lines = [f"| epoch | Spearman with epoch {epochs} [95% CI] | seed sd ({len(both)} archs) |"]
    lines.append("|---|---|---|")
    for e in range(epochs - 1):
        rho = spearmanr(curves_[:, e], curves_[:, -1]).statistic
        boots = []
        for _ in range(1000):
            pick = rng.integers(0, len(ids), len(ids))
            boots.append(spearmanr(curves_[pick, e], curves_[pick, -1]).statistic)
        lo, hi = np.nanquantile(boots, [0.025, 0.975])
        sd = float("nan")
        if len(tables) > 1 and both:
            sd = statistics.fmean(
                statistics.stdev(t[i]["accuracy_per_epoch"][e] for t in tables) for i in both
            )
        lines.append(f"| {e + 1} | {rho:.2f} [{lo:.2f}, {hi:.2f}] | {sd:.4f} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--budget", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=9)
    parser.add_argument("--min-epochs", type=int, default=1)
    parser.add_argument("--eta", type=int, default=3)
    parser.add_argument("--margin", type=float, default=0.02)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--confirm-seeds", type=int, default=2)
    parser.add_argument("--confirm-max", type=int, default=10)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args(argv)

    doc = curves.narrowed_space()
    space = curves._space(doc)
    table = curves.load_table(doc, args.epochs, 0)
    missing = len(curves.all_archs(space)) - len(table)
    if missing:
        print(f"{missing} architectures lack seed-0 curves: run bench/curves.py", file=sys.stderr)
        return 2
    b, m, eta = args.budget, args.min_epochs, args.eta
    more = round(b * 1.35)
    methods = [
        Method("full", b),
        Method(f"mo-asha min {m} eta {eta}", b, m, eta),
        Method(f"mo-asha min {m} eta {eta}, margin {args.margin}", b, m, eta, args.margin),
        Method(f"mo-asha min {m} eta {eta}, budget {more}", more, m, eta),
        Method(f"mo-asha min {m * eta} eta {eta}", b, m * eta, eta),
    ]
    outcomes = {
        method: [
            replay(
                table,
                space,
                seed=run,
                budget=method.budget,
                epochs=args.epochs,
                concurrency=args.concurrency,
                book=method.book(args.epochs),
            )
            for run in range(args.runs)
        ]
        for method in methods
    }
    chosen = {k: [candidates(o, args.confirm_max) for o in outs] for k, outs in outcomes.items()}
    needed = {
        outcomes[k][i].complete[n][0] for k in chosen for i, c in enumerate(chosen[k]) for n in c
    }
    seeds = list(range(1, args.confirm_seeds + 1))
    tables = curves.build_some(args.epochs, seeds, sorted(needed), args.jobs)
    all_tables = [table, *(tables[s] for s in seeds)]
    ref = [
        min(c["accuracy_per_epoch"][-1] for c in table.values()),
        max(c["latency_ms"] for c in table.values()),
    ]
    print(
        f"{args.runs} run seeds, {len(table)} architectures, {args.epochs} epochs, "
        f"concurrency {args.concurrency}, confirmation seeds {seeds}, "
        f"hypervolume reference (accuracy, latency ms) {[round(v, 4) for v in ref]}\n"
    )
    print(
        "| method | trials | stopped | epochs [95% CI] | epochs / full | simulated wall s "
        "[95% CI] | confirmed-front hypervolume [95% CI] |"
    )
    print("|---|---|---|---|---|---|---|")
    full_epochs = statistics.fmean(o.epochs for o in outcomes[methods[0]])
    for method, outs in outcomes.items():
        for o, c in zip(outs, chosen[method], strict=True):
            o.hypervolume = confirmed_hypervolume(o, c, all_tables, ref)
        ep, wall, hv = (
            bootstrap([getattr(o, k) for o in outs]) for k in ("epochs", "wall_s", "hypervolume")
        )
        pruned = statistics.fmean(o.pruned for o in outs)
        print(
            f"| {method.label} | {method.budget} | {pruned:.1f} | {ep[0]:.0f} [{ep[1]:.0f}, "
            f"{ep[2]:.0f}] | {ep[0] / full_epochs:.2f} | {wall[0]:.0f} [{wall[1]:.0f}, "
            f"{wall[2]:.0f}] | {hv[0]:.4f} [{hv[1]:.4f}, {hv[2]:.4f}] |"
        )
    print("\nRank fidelity of a rung (seed 0, every architecture):\n")
    print("\n".join(rung_fidelity(all_tables, args.epochs)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
