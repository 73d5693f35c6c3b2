"""Helpers of the search tests (imported by name: pytest puts this folder on sys.path)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["counting_trial_fn", "make_trial_fn", "seeded_trial_fn"]


def make_trial_fn(
    *, raise_on: tuple[str, ...] = (), nan_on: tuple[str, ...] = (), exit_on: tuple[str, ...] = ()
) -> Callable[..., dict[str, Any]]:
    """A fast stand-in for ``evaluate``: metrics derived from the arch's attention choices.

    The trial raises when stage 0's attention is in ``raise_on``, returns a NaN accuracy for
    ``nan_on`` and kills its worker process (like the OOM killer) for ``exit_on``.
    """

    def trial_fn(space: Any, arch: Any, settings: Any) -> dict[str, Any]:
        import hashlib
        import os

        stages = arch.to_dict()["stages"]
        first = stages[0]["attention"]
        if first in raise_on:
            raise RuntimeError(f"deliberate failure for {first}")
        if first in exit_on:
            os._exit(3)
        used = sum(s["attention"] != "none" for s in stages)
        jitter = int(hashlib.sha256(arch.to_json().encode()).hexdigest()[:6], 16) / 16**6
        accuracy = 0.5 + 0.1 * used + 0.05 * jitter
        latency = 1.0 + 0.5 * used + 0.2 * jitter
        return {
            "accuracy": float("nan") if first in nan_on else accuracy,
            "accuracy_per_epoch": [accuracy / 2, accuracy],
            "latency_ms": latency,
            "latency_p90_ms": latency * 1.1,
            "params": 1000 + 100 * used,
            "flops": 5000 + 700 * used + int(jitter * 100),
            "epochs": 2,
            "num_classes": 4,
        }

    return trial_fn


def counting_trial_fn(log: str) -> Callable[..., dict[str, Any]]:
    """A deterministic stand-in that appends the arch id to the file ``log`` on every call."""
    inner = make_trial_fn()

    def trial_fn(space: Any, arch: Any, settings: Any) -> dict[str, Any]:
        with open(log, "a") as f:
            f.write(arch.id + "\n")
        return inner(space, arch, settings)

    trial_fn.deterministic = True  # type: ignore[attr-defined]
    return trial_fn


def seeded_trial_fn(
    log: str, *, fail_confirmations: bool = False
) -> Callable[..., dict[str, Any]]:
    """Like :func:`make_trial_fn`, with an accuracy and a test accuracy that depend on the
    training seed (by architecture); appends ``"<arch id> <seed>"`` to the file ``log`` on
    every call. With ``fail_confirmations`` every seed but 0 (the search's) raises."""
    inner = make_trial_fn()

    def trial_fn(space: Any, arch: Any, settings: Any) -> dict[str, Any]:
        import hashlib

        with open(log, "a") as f:
            f.write(f"{arch.id} {settings.seed}\n")
        if fail_confirmations and settings.seed != 0:
            raise RuntimeError(f"deliberate failure of seed {settings.seed}")
        metrics = inner(space, arch, settings)
        digest = hashlib.sha256(f"{arch.id}/{settings.seed}".encode()).hexdigest()
        noise = int(digest[:6], 16) / 16**6 - 0.5  # in [-0.5, 0.5)
        metrics["accuracy"] += 0.1 * noise
        metrics["test_accuracy"] = metrics["accuracy"] - 0.03 + 0.02 * noise
        return metrics

    return trial_fn
