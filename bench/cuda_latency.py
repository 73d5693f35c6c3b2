"""CUDA latency: replay of a captured CUDA graph (the default) against eager passes.

For N random architectures of a space (default `mobile`) this measures each one's latency
with ``measure_latency`` in R rounds, the timing modes interleaved round by round, at each
batch size, and prints the range of the medians, how far one architecture's median moves
between rounds (coefficient of variation) and Kendall's tau between the rounds' rankings.
A ranking that changes from round to round cannot separate architectures on a Pareto front.
Needs a CUDA device.

    python bench/cuda_latency.py [--archs 16] [--rounds 5] [--batch-sizes 1 64]
"""

from __future__ import annotations

import argparse
import itertools
import random
import statistics
import sys
import time


class _RandomChoices:
    """A stand-in Optuna trial that picks every choice uniformly at random."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def suggest_categorical(self, name: str, choices: list) -> object:
        return self.rng.choice(choices)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--space", default="mobile")
    parser.add_argument("--archs", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 64])
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    import torch
    from scipy.stats import kendalltau

    from nas.evaluation.latency import measure_latency
    from nas.space import build_model, load_space, suggest

    if not torch.cuda.is_available():
        print("error: this benchmark needs a CUDA device", file=sys.stderr)
        return 2
    space = load_space(args.space)
    rng = random.Random(args.seed)
    models = [
        build_model(space, suggest(_RandomChoices(rng), space), num_classes=10)
        for _ in range(args.archs)
    ]
    print(
        f"{torch.cuda.get_device_name()}, torch {torch.__version__}; {args.archs} random "
        f"{args.space} architectures, {args.rounds} interleaved rounds"
    )
    print(
        f"{'batch':>5} {'timed':<10} {'medians (ms)':>14} {'CV median':>9} {'CV max':>7} "
        f"{'tau mean':>8} {'tau min':>7}"
    )
    for batch in args.batch_sizes:
        medians: dict[bool, list[list[float]]] = {True: [], False: []}
        clocks: dict[bool, set[str]] = {True: set(), False: set()}
        started = time.perf_counter()
        for _ in range(args.rounds):
            for graph in (True, False):
                row = []
                for model in models:
                    stats = measure_latency(
                        model, space.input_shape, "cuda", batch_size=batch, cuda_graph=graph
                    )
                    row.append(stats.median_ms)
                    clocks[graph].add(stats.clock)
                medians[graph].append(row)
        for graph, rounds in medians.items():
            cvs = [statistics.pstdev(v) / statistics.fmean(v) for v in zip(*rounds, strict=True)]
            taus = [kendalltau(a, b).statistic for a, b in itertools.combinations(rounds, 2)]
            low, high = min(map(min, rounds)), max(map(max, rounds))
            print(
                f"{batch:>5} {'/'.join(sorted(clocks[graph])):<10} "
                f"{f'{low:.3f}-{high:.3f}':>14} {statistics.median(cvs):>9.3f} "
                f"{max(cvs):>7.3f} {statistics.fmean(taus):>8.3f} {min(taus):>7.3f}"
            )
        print(f"      ({time.perf_counter() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
