"""Learning curves of a small search space, for replaying searches (``bench/multifidelity.py``).

Every architecture of a space is trained once per training seed to the full epochs with
:func:`nas.evaluation.evaluate`, recording the validation accuracy and the seconds of every
epoch, the test accuracy at the end and the latency. A trial stopped by mo-asha at epoch ``e``
of an ``E``-epoch run has exactly the first ``e`` points of this curve (the cosine schedule is
the ``E``-epoch one either way), so searches can be replayed from the table without training.

The table is kept in ``$NAS_HOME/bench/curves-<key>-seed<s>.json`` (key: the space and the
settings), so a run only trains what is missing.

    python bench/curves.py [--epochs 9] [--seeds 0] [--jobs 2]
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

Curve = dict[str, Any]


def narrowed_space() -> dict[str, Any]:
    """The ``tiny`` space with every block hyperparameter fixed to the first value of its
    domain and the second stage's kernel to 3: 50 architectures (5 blocks x 2 depths in the
    first stage, 5 blocks in the second), few enough to train every one of them."""
    from nas.space import load_space

    doc = load_space("tiny").to_dict()
    doc["name"] = "tiny-narrow"
    doc["description"] = "tiny with fixed block hyperparameters (bench/curves.py)"
    for stage in doc["stages"]:
        if isinstance(stage.get("kernel"), list):
            stage["kernel"] = stage["kernel"][0]
        stage["hparams"] = {
            block: {name: values[:1] for name, values in params.items()}
            for block, params in (stage.get("hparams") or {}).items()
        }
    return doc


def all_archs(space: Any) -> list[Any]:
    """Every architecture of ``space``, in a fixed order (Optuna's brute-force sampler)."""
    import optuna

    from nas.space import suggest

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    archs: dict[str, Any] = {}

    def objective(trial: Any) -> float:
        arch = suggest(trial, space)
        archs.setdefault(arch.id, arch)
        return 0.0

    study = optuna.create_study(sampler=optuna.samplers.BruteForceSampler(seed=0))
    study.optimize(objective)
    return sorted(archs.values(), key=lambda a: a.id)


def settings_for(epochs: int, seed: int) -> Any:
    """The search's evaluation settings on one core, at ``epochs`` and training ``seed``."""
    from nas.evaluation import EvalSettings

    return EvalSettings(epochs=epochs, seed=seed, device="cpu", threads=1)


def table_path(space_doc: dict[str, Any], epochs: int, seed: int) -> Path:
    """Where the curves of one training seed are kept."""
    from nas import workspace

    blob = json.dumps([space_doc, settings_for(epochs, 0).model_dump(mode="json")], sort_keys=True)
    key = hashlib.sha256(blob.encode()).hexdigest()[:10]
    return workspace.home() / "bench" / f"curves-{key}-seed{seed}.json"


def _train(space_doc: dict[str, Any], arch_json: str, settings_json: str) -> tuple[str, Curve]:
    import torch

    from nas.evaluation import EvalSettings, evaluate
    from nas.space import Arch

    torch.set_num_threads(1)
    settings = EvalSettings.model_validate_json(settings_json)
    arch = Arch.from_json(arch_json)
    stamps = [time.perf_counter()]

    def on_epoch(epoch: int, accuracy: float, loss: float) -> None:
        stamps.append(time.perf_counter())

    metrics = evaluate(_space(space_doc), arch, settings, on_epoch=on_epoch)
    curve = {
        "arch": arch.to_dict(),
        "accuracy_per_epoch": [float(a) for a in metrics["accuracy_per_epoch"]],
        "epoch_seconds": [b - a for a, b in itertools.pairwise(stamps)],
        "test_accuracy": float(metrics.get("test_accuracy", float("nan"))),
        "latency_ms": float(metrics["latency_ms"]),
        "params": int(metrics["params"]),
    }
    return arch.id, curve


def _space(doc: dict[str, Any]) -> Any:
    from nas.space import parse_space

    return parse_space(doc, "bench/curves.py", default_name=doc["name"])


def load_table(space_doc: dict[str, Any], epochs: int, seed: int) -> dict[str, Curve]:
    """The curves of one seed trained so far (arch id -> curve)."""
    path = table_path(space_doc, epochs, seed)
    return json.loads(path.read_text()) if path.exists() else {}


def build(epochs: int, seeds: list[int], jobs: int) -> dict[int, dict[str, Curve]]:
    """Train what is missing of the table of every seed, for every architecture."""
    archs = all_archs(_space(narrowed_space()))
    return build_some(epochs, seeds, [a.id for a in archs], jobs)


def build_some(
    epochs: int, seeds: list[int], arch_ids: list[str], jobs: int
) -> dict[int, dict[str, Curve]]:
    """Train what is missing of the tables of ``seeds`` for ``arch_ids``; returns the tables."""
    from nas.space import Arch

    doc = narrowed_space()
    tables = {seed: load_table(doc, epochs, seed) for seed in seeds}
    arch_of = {a.id: a for a in all_archs(_space(doc))}
    base = load_table(doc, epochs, 0)
    for arch_id in arch_ids:  # archs outside the enumeration, from their seed-0 curve
        if arch_id not in arch_of and arch_id in base:
            arch_of[arch_id] = Arch.from_dict(base[arch_id]["arch"])
    todo = [(arch_of[i], s) for s in seeds for i in arch_ids if i not in tables[s]]
    print(f"{len(todo)} trainings to do", file=sys.stderr)
    started = time.perf_counter()
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        futures = {
            pool.submit(_train, doc, a.to_json(), settings_for(epochs, s).model_dump_json()): s
            for a, s in todo
        }
        for done, future in enumerate(as_completed(futures), 1):
            seed = futures[future]
            arch_id, curve = future.result()
            tables[seed][arch_id] = curve
            path = table_path(doc, epochs, seed)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(tables[seed]))
            if done % 10 == 0:
                spent = time.perf_counter() - started
                print(f"{done}/{len(todo)} trained in {spent:.0f} s", file=sys.stderr)
    return tables


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=9)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args(argv)
    build(args.epochs, args.seeds, args.jobs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
