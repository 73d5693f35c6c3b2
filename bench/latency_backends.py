"""Latency backends side by side: PyTorch eager against ONNX Runtime (``--latency-backend``).

Two tables (``python bench/latency.py --backends``, or this file directly):

1. Per block, at each place the `mobile` space puts it (the input a block sees in the network
   with that block on every stage): median latency of the block alone in torch and in ORT.
2. On N random `mobile` architectures (default 48), R rounds in which every architecture is
   measured by both backends under two conditions, interleaved: idle (the trainer processes
   stopped) and locked (two trainers at full load holding the measurement lock per step, as
   trials do). Per backend: the median CV of the repeated measurements (repeatability),
   Kendall tau of the locked against the idle ranking, and the idle even-vs-odd-rounds tau
   (the noise floor); and Kendall tau between the two backends' idle rankings. 95% intervals
   come from a bootstrap over the architectures.

Every measurement follows the protocol of :func:`nas.evaluation.measure_latency` (one thread,
batch 1, thread CPU-time clock, :func:`nas.evaluation.latency.time_passes`). In table 2 each
architecture is exported and its ORT session made once, then reused across rounds (a trial
exports once per measurement; the export is not timed either way).
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
from typing import Any

BACKENDS = ("torch", "onnxruntime")


def _block_inputs(space: Any, name: str) -> list[tuple[Any, tuple[int, ...]]]:
    """(block module, input shape without batch) of each distinct place `name` sits."""
    import torch

    from nas.blocks import get_spec
    from nas.space import build_model, default_arch

    model = build_model(space, default_arch(space, name), num_classes=10).eval()
    cls = get_spec(name).cls
    seen: dict[tuple[int, ...], Any] = {}

    def keep(module: Any, args: tuple[Any, ...]) -> None:
        seen.setdefault(tuple(args[0].shape[1:]), module)

    hooks = [m.register_forward_pre_hook(keep) for m in model.modules() if type(m) is cls]
    with torch.no_grad():
        model(torch.zeros(1, *space.input_shape))
    for hook in hooks:
        hook.remove()
    return [(module, shape) for shape, module in seen.items()]


def _per_block(args: argparse.Namespace, space: Any) -> None:
    from nas.blocks import list_blocks
    from nas.evaluation import measure_latency

    print(f"\nper block at the {space.name} stages (block alone, batch 1, 1 thread; median ms)")
    header = f"{'block':<9} {'input CxHxW':<12} {'torch ms':>9} {'ORT ms':>8} {'torch/ORT':>10}"
    print(header + "\n" + "-" * len(header))
    for name in list_blocks():
        if name == "none":
            continue
        for module, shape in _block_inputs(space, name):
            medians = {}
            for backend in BACKENDS:
                runs = [
                    measure_latency(
                        module, shape, warmup=args.warmup, repeats=args.repeats, backend=backend
                    ).median_ms
                    for _ in range(3)
                ]
                medians[backend] = statistics.median(runs)
            torch_ms, ort_ms = medians["torch"], medians["onnxruntime"]
            print(
                f"{name:<9} {'x'.join(map(str, shape)):<12} {torch_ms:>9.3f} {ort_ms:>8.3f} "
                f"{torch_ms / ort_ms:>10.1f}",
                flush=True,
            )


def _bootstrap(stat: Any, n: int, seed: int, draws: int = 1000) -> tuple[float, float]:
    """95% percentile interval of ``stat(indices)`` over resampled architecture indices."""
    rng = random.Random(seed)
    values = sorted(stat([rng.randrange(n) for _ in range(n)]) for _ in range(draws))
    return values[int(0.025 * draws)], values[int(0.975 * draws) - 1]


def _fmt(value: float, interval: tuple[float, float], pct: bool = False) -> str:
    k = 100 if pct else 1
    unit = "%" if pct else ""
    return f"{k * value:.3f}{unit} [{k * interval[0]:.3f}, {k * interval[1]:.3f}]"


def _ranking(args: argparse.Namespace, space: Any) -> None:
    import torch
    from latency import _archs, _cv, _kendall

    from nas.evaluation import measure_latency, measurement_lock
    from nas.evaluation.latency import resolve_clock, time_passes
    from nas.evaluation.onnx_latency import onnx_runner
    from nas.space import build_model

    archs = _archs(space, args.archs, args.seed)
    shape = tuple(space.input_shape)
    x = torch.randn((1, *shape), generator=torch.Generator().manual_seed(0))  # as measured
    models, runners = [], []
    for i, arch in enumerate(archs):
        torch.manual_seed(i)
        models.append(build_model(space, arch, num_classes=10).eval())
        runners.append(onnx_runner(models[-1], x, threads=1))
    cpu, clock = torch.device("cpu"), resolve_clock("cpu", "auto", 1)
    conditions = ("idle", "locked")
    lock_dir = tempfile.mkdtemp(prefix="nas-bench-lock-")
    lock = measurement_lock(lock_dir)
    here = Path(__file__).with_name("latency.py")
    command = [sys.executable, str(here), "--worker", "--lock-dir", lock_dir, "--space", "mobile"]
    print(
        f"\n{len(archs)} random {space.name} archs, {args.rounds} rounds, warmup {args.warmup}, "
        f"repeats {args.repeats}, 1 thread, batch 1, clock auto; {args.trainers} trainers",
        flush=True,
    )
    trainers = [subprocess.Popen(command) for _ in range(args.trainers)]
    keys = [(b, c) for b in BACKENDS for c in conditions]
    medians: dict[tuple[str, str], list[list[float]]] = {k: [[] for _ in archs] for k in keys}
    rng = random.Random(args.seed)
    started = time.perf_counter()
    try:
        time.sleep(args.settle)
        for round_ in range(args.rounds):
            for condition in rng.sample(conditions, len(conditions)):
                for proc in trainers:
                    os.kill(proc.pid, signal.SIGSTOP if condition == "idle" else signal.SIGCONT)
                if condition != "idle":
                    time.sleep(0.5)
                for i in rng.sample(range(len(archs)), len(archs)):
                    held = lock if condition == "locked" else None
                    for backend in rng.sample(BACKENDS, len(BACKENDS)):
                        if backend == "torch":
                            ms = measure_latency(
                                models[i],
                                shape,
                                warmup=args.warmup,
                                repeats=args.repeats,
                                lock=held,
                            ).median_ms
                        else:
                            times, _ = time_passes(
                                runners[i], cpu, 1, args.warmup, args.repeats, clock, lock=held
                            )
                            ms = statistics.median(times)
                        medians[(backend, condition)][i].append(ms)
            print(f"  round {round_ + 1}/{args.rounds} done", flush=True)
    finally:
        for proc in trainers:
            os.kill(proc.pid, signal.SIGCONT)
            proc.terminate()
            proc.wait()
    elapsed = time.perf_counter() - started
    agg = {k: [statistics.median(m) for m in medians[k]] for k in keys}
    n = len(archs)

    def tau(a: list[float], b: list[float]) -> Any:
        return lambda idx: _kendall([a[i] for i in idx], [b[i] for i in idx])

    def cv(key: tuple[str, str]) -> Any:
        cvs = [_cv(m) for m in medians[key]]
        return lambda idx: statistics.median(cvs[i] for i in idx)

    everything = list(range(n))
    print(f"\nbackends on {n} archs (95% bootstrap intervals over archs)")
    header = (
        f"{'backend':<12} {'median ms':<14} {'median CV idle':<24} {'median CV locked':<24} "
        f"{'tau locked vs idle':<24} {'tau idle even/odd':<24}"
    )
    print(header + "\n" + "-" * len(header))
    for backend in BACKENDS:
        idle, locked = agg[(backend, "idle")], agg[(backend, "locked")]
        even = [statistics.median(m[0::2]) for m in medians[(backend, "idle")]]
        odd = [statistics.median(m[1::2]) for m in medians[(backend, "idle")]]
        cells = [
            _fmt(cv((backend, "idle"))(everything), _bootstrap(cv((backend, "idle")), n, 1), True),
            _fmt(
                cv((backend, "locked"))(everything),
                _bootstrap(cv((backend, "locked")), n, 2),
                True,
            ),
            _fmt(tau(idle, locked)(everything), _bootstrap(tau(idle, locked), n, 3)),
            _fmt(tau(even, odd)(everything), _bootstrap(tau(even, odd), n, 4)),
        ]
        span = f"{min(idle):.3f}-{max(idle):.3f}"
        print(f"{backend:<12} {span:<14} " + " ".join(f"{c:<24}" for c in cells))
    a, b = agg[("torch", "idle")], agg[("onnxruntime", "idle")]
    ratios = sorted(x / y for x, y in zip(a, b, strict=True))
    print(
        f"\nKendall tau torch vs onnxruntime (idle medians): "
        f"{_fmt(tau(a, b)(everything), _bootstrap(tau(a, b), n, 5))}; torch/ORT latency ratio "
        f"median {statistics.median(ratios):.1f} (range {ratios[0]:.1f}-{ratios[-1]:.1f}); "
        f"{elapsed:.0f} s"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--archs", type=int, default=48)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=60)
    parser.add_argument("--trainers", type=int, default=2)
    parser.add_argument("--settle", type=float, default=6.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-blocks", action="store_true", help="only the ranking table")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).parent))  # `latency` (this folder's bench)
    from nas.evaluation.latency import measure_latency  # noqa: F401  (torch loads once here)
    from nas.onnx_export import require_onnx
    from nas.space import load_space

    require_onnx("bench/latency_backends.py")
    space = load_space("mobile")
    print(f"load average {os.getloadavg()[0]:.2f} at start")
    if not args.skip_blocks:
        _per_block(args, space)
    _ranking(args, space)
    print(f"load average {os.getloadavg()[0]:.2f} at the end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
