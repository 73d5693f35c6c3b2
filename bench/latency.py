"""Latency measurement quality: spread of repeated measurements and rank stability under load.

For N architectures of a space (default `mobile`) this measures each one's latency in R
rounds under up to three conditions, interleaved round by round so that slow drift in the
machine's load affects every condition alike:

- idle: the two trainer processes are stopped (SIGSTOP);
- locked: the trainers train at full load and, like trials, hold the measurement lock shared
  per step; each measurement takes it exclusive (the normal `evaluate` path);
- unlocked (not with --quick): the trainers train and the measurement ignores the lock.

It prints per-architecture medians, the coefficient of variation (CV) of the R repeated
measurements, Kendall's tau between the conditions' rankings, and how long measurements
waited for the lock. ``--evaluate K`` instead times K full `evaluate()` calls of random
candidates with the default settings on one thread.

    python bench/latency.py            # 16 archs, 5 rounds, with the unlocked comparison
    python bench/latency.py --quick    # 12 archs, 3 rounds, idle vs locked only
    python bench/latency.py --evaluate 8
    python bench/latency.py --backends # torch vs ONNX Runtime (bench/latency_backends.py)
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _archs(space, count: int, seed: int) -> list:
    """The default arch plus distinct random ones."""
    import optuna

    from nas.space import default_arch, suggest

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    archs = {default_arch(space).id: default_arch(space)}
    for _ in range(50 * count):
        if len(archs) >= count:
            break
        trial = study.ask()
        arch = suggest(trial, space)
        archs.setdefault(arch.id, arch)
    return list(archs.values())[:count]


def _worker(args: argparse.Namespace) -> int:
    """A trainer: trains the default arch on digits forever, holding the lock per step."""
    import torch

    from nas.evaluation import EvalSettings, load_dataset, measurement_lock, train_model
    from nas.space import build_model, default_arch, load_space

    space = load_space(args.space)
    data = load_dataset("digits", tuple(space.input_shape))
    torch.manual_seed(0)
    model = build_model(space, default_arch(space), num_classes=data.num_classes)
    settings = EvalSettings(epochs=1, threads=1, device="cpu")
    lock = measurement_lock(args.lock_dir)
    steps = 0
    while True:
        steps += train_model(model, data, settings, lock=lock).steps
        Path(args.lock_dir, f"worker{os.getpid()}.steps").write_text(str(steps))


def _kendall(a: list[float], b: list[float]) -> float:
    from scipy.stats import kendalltau

    return float(kendalltau(a, b).statistic)


def _cv(values: list[float]) -> float:
    return statistics.stdev(values) / statistics.fmean(values) if len(values) > 1 else 0.0


def _bench(args: argparse.Namespace) -> int:
    import torch

    from nas.evaluation import measure_latency, measurement_lock
    from nas.space import build_model, load_space

    space = load_space(args.space)
    shape = tuple(space.input_shape)
    archs = _archs(space, args.archs, args.seed)
    models = []
    for i, arch in enumerate(archs):
        torch.manual_seed(i)
        models.append(build_model(space, arch, num_classes=10).eval())
    conditions = ["idle", "locked"] + ([] if args.quick else ["unlocked"])
    lock_dir = tempfile.mkdtemp(prefix="nas-bench-lock-")
    lock = measurement_lock(lock_dir)
    print(
        f"space {space.name} input {shape}: {len(archs)} archs, {args.rounds} rounds, "
        f"warmup {args.warmup}, repeats {args.repeats}, 1 thread, batch 1, clock {args.clock}; "
        f"{args.trainers} trainers; conditions {', '.join(conditions)}",
        flush=True,
    )
    command = [sys.executable, __file__, "--worker", "--lock-dir", lock_dir, "--space", args.space]
    trainers = [subprocess.Popen(command) for _ in range(args.trainers)]
    medians: dict[str, list[list[float]]] = {c: [[] for _ in archs] for c in conditions}
    p10s: dict[str, list[list[float]]] = {c: [[] for _ in archs] for c in conditions}
    run_cvs: dict[str, list[float]] = {c: [] for c in conditions}
    waits: list[float] = []
    rng = random.Random(args.seed)
    started = time.perf_counter()
    try:
        time.sleep(args.settle)  # let the trainers import and load data
        for round_ in range(args.rounds):
            for condition in rng.sample(conditions, len(conditions)):
                for proc in trainers:
                    os.kill(proc.pid, signal.SIGSTOP if condition == "idle" else signal.SIGCONT)
                if condition != "idle":
                    time.sleep(0.5)  # the trainers are back at full speed
                for i in rng.sample(range(len(archs)), len(archs)):
                    if condition == "locked":
                        t0 = time.perf_counter()
                        lock.acquire_exclusive()
                        waits.append(time.perf_counter() - t0)
                    try:
                        stats = measure_latency(
                            models[i],
                            shape,
                            warmup=args.warmup,
                            repeats=args.repeats,
                            clock=args.clock,
                        )
                    finally:
                        if condition == "locked":
                            lock.release_exclusive()
                    medians[condition][i].append(stats.median_ms)
                    p10s[condition][i].append(stats.p10_ms)
                    run_cvs[condition].append(stats.cv)
            print(f"  round {round_ + 1}/{args.rounds} done", flush=True)
    finally:
        for proc in trainers:
            os.kill(proc.pid, signal.SIGCONT)
            proc.terminate()
            proc.wait()
    steps = sum(int(p.read_text()) for p in Path(lock_dir).glob("worker*.steps"))
    elapsed = time.perf_counter() - started

    agg = {c: [statistics.median(m) for m in medians[c]] for c in conditions}
    header = f"{'arch':<12} {'params':>8} " + " ".join(
        f"{c + ' ms':>11} {c[:4] + ' cv':>8}" for c in conditions
    )
    print(f"\n{header}\n" + "-" * len(header))
    for i, arch in enumerate(archs):
        params = sum(p.numel() for p in models[i].parameters())
        cells = " ".join(
            f"{agg[c][i]:>11.3f} {100 * _cv(medians[c][i]):>7.2f}%" for c in conditions
        )
        print(f"{arch.id:<12} {params:>8} {cells}   {arch.describe()}")
    print("\nsummary (CV = spread of the repeated measurements of one arch, median over archs)")
    for c in conditions:
        cvs = [_cv(m) for m in medians[c]]
        p10_cvs = [_cv(m) for m in p10s[c]]
        print(
            f"  {c:<9} median CV across rounds {100 * statistics.median(cvs):5.2f}%  "
            f"(max {100 * max(cvs):5.2f}%; of p10 instead of the median "
            f"{100 * statistics.median(p10_cvs):5.2f}%);  median within-run CV of timings "
            f"{100 * statistics.median(run_cvs[c]):5.2f}%"
        )
    even = [statistics.median(m[0::2]) for m in medians["idle"]]
    odd = [statistics.median(m[1::2]) for m in medians["idle"]] if args.rounds > 1 else even
    print(
        f"  Kendall tau idle vs locked (trainers at full load, lock respected): "
        f"{_kendall(agg['idle'], agg['locked']):.3f}"
    )
    if "unlocked" in agg:
        print(
            f"  Kendall tau idle vs unlocked (same load, lock ignored):          "
            f"{_kendall(agg['idle'], agg['unlocked']):.3f}"
        )
    print(
        f"  Kendall tau idle even rounds vs idle odd rounds (noise floor):     "
        f"{_kendall(even, odd):.3f}"
    )
    print(
        f"  latency range {min(agg['idle']):.2f}-{max(agg['idle']):.2f} ms; lock wait per "
        f"measurement median {1000 * statistics.median(waits):.1f} ms, max "
        f"{1000 * max(waits):.1f} ms; trainers made {steps} steps; {elapsed:.0f} s"
    )
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    """Time full evaluations of random candidates with the default settings."""
    from nas.evaluation import EvalSettings, evaluate
    from nas.space import load_space

    os.environ["NAS_HOME"] = tempfile.mkdtemp(prefix="nas-bench-home-")  # no cached latency
    space = load_space(args.space)
    archs = _archs(space, args.evaluate, args.seed)
    settings = EvalSettings(device="cpu")
    print(
        f"space {space.name}: {len(archs)} candidates, {settings.epochs} epochs, "
        f"batch {settings.batch_size}, lr {settings.lr}, threads {settings.threads}"
    )
    print(
        f"{'arch':<12} {'wall s':>7} {'cpu s':>7} {'train s':>8} {'accuracy':>9} "
        f"{'latency ms':>11}"
    )
    seconds, cpu_seconds, accuracies = [], [], []
    for arch in archs:
        t0, c0 = time.perf_counter(), time.process_time()
        metrics = evaluate(space, arch, settings)
        seconds.append(time.perf_counter() - t0)
        cpu_seconds.append(time.process_time() - c0)
        accuracies.append(float(metrics["accuracy"]))
        print(
            f"{arch.id:<12} {seconds[-1]:>7.2f} {cpu_seconds[-1]:>7.2f} "
            f"{metrics['train_seconds']:>8.2f} "
            f"{metrics['accuracy']:>9.4f} {metrics['latency_ms']:>11.3f}   {arch.describe()}",
            flush=True,
        )
    print(
        f"median evaluation {statistics.median(seconds):.2f} s wall, "
        f"{statistics.median(cpu_seconds):.2f} s CPU (max {max(seconds):.2f} s wall; the first "
        f"includes loading the dataset); median accuracy "
        f"{statistics.median(accuracies):.4f}"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="12 archs, 3 rounds, no unlocked")
    parser.add_argument("--space", default="mobile")
    parser.add_argument("--archs", type=int, default=None, help="architectures (>= 12)")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=60, help="timed passes per measurement")
    parser.add_argument("--trainers", type=int, default=2)
    parser.add_argument(
        "--clock", choices=["auto", "wall", "cpu"], default="auto", help="CPU timing clock"
    )
    parser.add_argument("--settle", type=float, default=6.0, help="seconds for trainers to start")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--evaluate", type=int, default=0, metavar="K")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--lock-dir", help=argparse.SUPPRESS)
    parser.add_argument(
        "--backends",
        action="store_true",
        help="torch vs onnxruntime (the other flags go to bench/latency_backends.py)",
    )
    args, rest = parser.parse_known_args(argv)
    if rest and not args.backends:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    if args.worker:
        return _worker(args)
    if args.backends:
        from latency_backends import main as backends_main

        given = sys.argv[1:] if argv is None else argv
        return backends_main([a for a in given if a != "--backends"])
    if args.evaluate:
        return _evaluate(args)
    args.archs = args.archs or (12 if args.quick else 16)
    args.rounds = args.rounds or (3 if args.quick else 5)
    return _bench(args)


if __name__ == "__main__":
    sys.exit(main())
