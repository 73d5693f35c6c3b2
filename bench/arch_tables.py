"""Tables of evaluated architectures, one per training seed, shared by the sampler benches.

A table maps an arch id to ``[accuracy, latency_ms]`` for one (space, dataset, epochs,
training seed), trained by ``nas.evaluation.evaluate`` on the CPU with one thread and timed as
a search times it, and is stored as JSON in ``$NAS_HOME/bench``
(``samplers-<space>-<dataset>-<epochs>ep[-seedS].json``) so that every run of a bench sees the
same value for the same architecture, as in tabular NAS benchmarks (NAS-Bench-201).
"""

from __future__ import annotations

import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

Table = dict[str, list[float]]

TABULATED = {"tiny"}
"""Spaces small enough to evaluate whole (training seed 0) before replaying the samplers."""


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


def evaluator(space_name: str, dataset: str, epochs: int, seed: int = 0) -> Any:
    """``arch -> [accuracy, latency_ms]`` at the bench's settings, always on the CPU (training
    and one-thread latency), so that a table means the same wherever it was filled."""
    import torch

    from nas.evaluation import EvalSettings, evaluate
    from nas.space import load_space

    torch.set_num_threads(1)
    space = load_space(space_name)
    settings = EvalSettings(
        dataset=dataset, epochs=epochs, seed=seed, device="cpu", latency_cache=False
    )

    def run(arch: Any) -> list[float]:
        metrics = evaluate(space, arch, settings)
        return [float(metrics["accuracy"]), float(metrics["latency_ms"])]

    return run


def _evaluate_archs(
    space_name: str, dataset: str, archs: list[str], epochs: int, seed: int
) -> Table:
    """Rows for the architectures ``archs`` (their JSON) trained with ``seed``."""
    from nas.space import Arch

    evaluate = evaluator(space_name, dataset, epochs, seed)
    return {arch.id: evaluate(arch) for arch in map(Arch.from_json, archs)}


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


@dataclass(frozen=True)
class Tables:
    """The stored tables of one (space, dataset, epochs), one per training seed."""

    space: str
    dataset: str
    epochs: int
    jobs: int = 2

    def path(self, seed: int = 0) -> Path:
        from nas import workspace

        suffix = f"-seed{seed}" if seed else ""
        name = f"samplers-{self.space}-{self.dataset}-{self.epochs}ep{suffix}.json"
        path = workspace.home() / "bench" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def load(self, seed: int = 0) -> Table:
        """The stored table of ``seed``; a tabulated space is evaluated whole for seed 0."""
        path = self.path(seed)
        if path.exists():
            return json.loads(path.read_text())
        if self.space not in TABULATED or seed:
            return {}  # held-out seeds: only what a view needs (see held_out)
        from nas.space import load_space

        started = time.perf_counter()
        archs = sorted(arch.to_json() for arch in all_archs(load_space(self.space)))
        table = self.evaluate(archs, seed)
        self.save(table, seed)
        print(
            f"evaluated {len(table)} architectures (seed {seed}) in "
            f"{time.perf_counter() - started:.0f} s",
            file=sys.stderr,
        )
        return table

    def save(self, table: Table, seed: int = 0) -> None:
        self.path(seed).write_text(json.dumps(table))

    def evaluate(self, archs: list[str], seed: int) -> Table:
        """Rows for ``archs`` (JSON), over ``jobs`` processes."""
        busy = busy_cores()
        if busy is not None and busy >= 0.5:
            print(
                f"warning: {busy:.1f} cores are busy with other work before evaluating "
                f"{len(archs)} architectures: latencies timed beside it are noisy (the "
                f"agreement line of the report shows how much); fill tables on an idle machine",
                file=sys.stderr,
            )
        table: Table = {}
        with ProcessPoolExecutor(self.jobs) as pool:
            parts = [archs[k :: self.jobs] for k in range(self.jobs)]
            n = self.jobs
            for part in pool.map(
                _evaluate_archs,
                [self.space] * n,
                [self.dataset] * n,
                parts,
                [self.epochs] * n,
                [seed] * n,
            ):
                table.update(part)
        return table

    def held_out(self, seeds: int, archs: dict[str, str]) -> list[Table]:
        """The tables of training seeds 1..seeds-1, completed with the architectures in
        ``archs`` (id -> JSON) they lack, and stored."""
        tables = []
        for seed in range(1, seeds):
            table = self.load(seed)
            missing = sorted(json_ for arch_id, json_ in archs.items() if arch_id not in table)
            if missing:
                table.update(self.evaluate(missing, seed))
                self.save(table, seed)
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
