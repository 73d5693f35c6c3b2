"""How reproducibly the search's accuracy ranks architectures (fidelity of the objective).

Trains ``--archs`` random architectures of a space (drawn by Optuna's random sampler from the
space's define-by-run choices, seed ``--arch-seed``) at the evaluation settings of a search,
once per training seed (``--seeds``, default 0 and 1), and once more at ``--long`` times the
epochs (training seed 0), all on the same train/validation split. It prints:

- the spread of validation accuracy across architectures and the mean |difference| between
  two training seeds of the same architecture;
- seed-to-seed Spearman and Kendall rank correlations, with 95% bootstrap intervals over
  architectures (resampled 2,000 times);
- the Spearman of the default-settings accuracy (mean over the seeds) against the long
  training's accuracy: does the search rank as longer training would?
- the median seconds per trial (training, test pass and latency, one core): wall time, and
  the process's CPU time, which other work on the machine inflates less.

A rank correlation near 1 means the search's accuracy axis is signal; near 0, a Pareto front
is luck. Results are kept in ``$NAS_HOME/bench/fidelity-*.json`` (keyed by the settings), so
a run with more architectures or seeds reuses what was trained before.

    python bench/fidelity.py [--space mobile] [--archs 48] [--seeds 0 1] [--long 4]
        [--jobs 2] [--set epochs=4 --set lr=0.02 ...]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

Row = dict[str, float]


def sample_archs(space: Any, count: int, seed: int) -> list[Any]:
    """``count`` distinct random architectures of ``space``, the same for the same seed."""
    import optuna

    from nas.space import suggest

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    archs: dict[str, Any] = {}
    for _ in range(count * 20):
        trial = study.ask()
        arch = suggest(trial, space)
        study.tell(trial, 0.0)
        archs.setdefault(arch.id, arch)
        if len(archs) == count:
            break
    return list(archs.values())


def _settings(overrides: dict[str, Any], seed: int, epoch_factor: int) -> Any:
    from nas.evaluation import EvalSettings

    base = EvalSettings(**{**overrides, "device": "cpu", "threads": 1})
    return base.model_copy(update={"seed": seed, "epochs": base.epochs * epoch_factor})


def _evaluate(space_spec: str, arch_json: str, settings_json: str) -> tuple[str, str, Row]:
    import torch

    from nas.evaluation import EvalSettings, evaluate
    from nas.space import Arch, load_space

    torch.set_num_threads(1)
    settings = EvalSettings.model_validate_json(settings_json)
    arch = Arch.from_json(arch_json)
    started, cpu = time.perf_counter(), time.process_time()
    metrics = evaluate(load_space(space_spec), arch, settings)
    row = {
        "cpu_seconds": time.process_time() - cpu,
        "accuracy": float(metrics["accuracy"]),
        "test_accuracy": float(metrics.get("test_accuracy", float("nan"))),
        "latency_ms": float(metrics["latency_ms"]),
        "seconds": time.perf_counter() - started,
    }
    return arch.id, settings_json, row


def _table_path(space: str, settings_json: str) -> Path:
    from nas import workspace

    key = hashlib.sha256(f"{space}\n{settings_json}".encode()).hexdigest()[:12]
    folder = workspace.home() / "bench"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"fidelity-{Path(space).stem}-{key}.json"


def run(
    space_spec: str,
    archs: list[Any],
    settings: list[Any],
    jobs: int,
) -> list[dict[str, Row]]:
    """One table (arch id -> row) per entry of ``settings``, evaluating what is not stored."""
    tables: list[dict[str, Row]] = []
    todo: list[tuple[str, str]] = []
    for s in settings:
        js = s.model_dump_json()
        path = _table_path(space_spec, js)
        table = json.loads(path.read_text()) if path.exists() else {}
        tables.append(table)
        todo += [(a.to_json(), js) for a in archs if a.id not in table]
    index = {s.model_dump_json(): i for i, s in enumerate(settings)}
    started, done = time.perf_counter(), 0
    with ProcessPoolExecutor(jobs) as pool:
        futures = [pool.submit(_evaluate, space_spec, a, js) for a, js in todo]
        for future in as_completed(futures):
            arch_id, js, row = future.result()
            i = index[js]
            tables[i][arch_id] = row
            _table_path(space_spec, js).write_text(json.dumps(tables[i]))
            done += 1
            elapsed = time.perf_counter() - started
            print(
                f"\r{done}/{len(todo)} trained, {elapsed:.0f} s, "
                f"ETA {elapsed / done * (len(todo) - done):.0f} s",
                end="",
                file=sys.stderr,
            )
    if todo:
        print(file=sys.stderr)
    return [{a.id: t[a.id] for a in archs} for t in tables]


def bootstrap(
    x: list[float], y: list[float], statistic: Any, rounds: int = 2000, seed: int = 0
) -> tuple[float, float, float]:
    """``statistic(x, y)`` and its 95% percentile-bootstrap interval over resampled pairs."""
    import numpy as np

    rng = np.random.default_rng(seed)
    xa, ya = np.asarray(x), np.asarray(y)
    values = []
    for _ in range(rounds):
        pick = rng.integers(0, len(xa), len(xa))
        if len(set(xa[pick].tolist())) > 1 and len(set(ya[pick].tolist())) > 1:
            values.append(statistic(xa[pick], ya[pick]))
    low, high = np.percentile(values, [2.5, 97.5])
    return float(statistic(xa, ya)), float(low), float(high)


def spearman(x: Any, y: Any) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(x, y).statistic)


def kendall(x: Any, y: Any) -> float:
    from scipy.stats import kendalltau

    return float(kendalltau(x, y).statistic)


def report(tables: list[dict[str, Row]], long_table: dict[str, Row] | None) -> dict[str, Any]:
    """Print the fidelity figures; return them as a dict."""
    ids = list(tables[0])
    acc = [[t[i]["accuracy"] for i in ids] for t in tables]
    means = [statistics.fmean(col) for col in zip(*acc, strict=True)]
    seconds = [t[i]["seconds"] for t in tables for i in ids]
    cpu = [t[i]["cpu_seconds"] for t in tables for i in ids if "cpu_seconds" in t[i]]
    out: dict[str, Any] = {
        "archs": len(ids),
        "accuracy_min": min(means),
        "accuracy_max": max(means),
        "accuracy_sd_between_archs": statistics.stdev(means),
        "median_trial_s": statistics.median(seconds),
        "median_trial_cpu_s": statistics.median(cpu) if cpu else None,
    }
    print(f"architectures: {len(ids)}; training seeds: {len(tables)}")
    print(
        f"validation accuracy (mean over seeds): {min(means):.4f} - {max(means):.4f}, "
        f"sd between architectures {out['accuracy_sd_between_archs']:.4f}"
    )
    cpu_note = f", CPU {statistics.median(cpu):.1f} s" if cpu else ""
    print(f"median seconds per trial (one core): wall {out['median_trial_s']:.1f} s{cpu_note}")
    for a in range(len(tables)):
        for b in range(a + 1, len(tables)):
            diff = statistics.fmean(abs(u - v) for u, v in zip(acc[a], acc[b], strict=True))
            rho = bootstrap(acc[a], acc[b], spearman)
            tau = bootstrap(acc[a], acc[b], kendall)
            out[f"seed{a}-seed{b}"] = {"spearman": rho, "kendall": tau, "mean_abs_diff": diff}
            print(
                f"seeds {a} vs {b}: Spearman {rho[0]:.3f} [{rho[1]:.3f}, {rho[2]:.3f}], "
                f"Kendall {tau[0]:.3f} [{tau[1]:.3f}, {tau[2]:.3f}], "
                f"mean |difference| {diff:.4f}"
            )
    if long_table is not None:
        long = [long_table[i]["accuracy"] for i in ids]
        rho = bootstrap(means, long, spearman)
        out["default-vs-long"] = {"spearman": rho, "long_accuracy_mean": statistics.fmean(long)}
        print(
            f"default (seed mean) vs long training: Spearman {rho[0]:.3f} "
            f"[{rho[1]:.3f}, {rho[2]:.3f}]; long-training accuracy "
            f"{min(long):.4f} - {max(long):.4f}"
        )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--space", default="mobile", help="space name or YAML path")
    parser.add_argument("--archs", type=int, default=48)
    parser.add_argument("--arch-seed", type=int, default=0)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--long", type=int, default=4, help="epoch factor; 0: skip")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    if len(args.seeds) < 2 or args.archs < 3:
        parser.error("need at least 2 training seeds and 3 architectures")

    from pydantic import ValidationError

    from nas.errors import NasError
    from nas.space import load_space

    overrides: dict[str, Any] = {}
    for item in args.set:
        field, sep, value = item.partition("=")
        if not sep:
            parser.error(f"--set {item!r}: use FIELD=VALUE")
        overrides[field] = json.loads(value) if value[:1] in "0123456789-[{tf" else value
    try:
        space = load_space(args.space)
        settings = [_settings(overrides, s, 1) for s in args.seeds]
        long = _settings(overrides, args.seeds[0], args.long) if args.long else None
    except (NasError, ValidationError) as exc:
        print(f"error: {exc}".splitlines()[0], file=sys.stderr)
        return 2
    archs = sample_archs(space, args.archs, args.arch_seed)
    print(
        f"space {space.name}, {len(archs)} architectures, settings: "
        f"{settings[0].model_dump_json(exclude_defaults=True)}",
        file=sys.stderr,
    )
    tables = run(args.space, archs, [*settings, *([long] if long else [])], args.jobs)
    figures = report(tables[: len(settings)], tables[-1] if long else None)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
