"""Generated digit tasks, `jittered` and `cluttered`, from scikit-learn's bundled digits.

Both take the 1,797 8x8 handwritten digits that ship with scikit-learn (nothing is
downloaded) and place each on a larger canvas at a random scale and position:

- ``jittered`` (the embedded default): one digit on a 16x16 canvas, 10-14 px tall, light
  pixel noise. Translation and scale make it harder than centred digits, and validation and
  test sets of thousands of images resolve small differences between architectures.
- ``cluttered``: the cluttered-digit setting that evaluates spatial attention (Mnih et al.,
  "Recurrent Models of Visual Attention", 2014, https://arxiv.org/abs/1406.6247; Jaderberg
  et al., "Spatial Transformer Networks", 2015, https://arxiv.org/abs/1506.02025): one digit
  on a 32x32 canvas among 3-6 fragments of other digits and stronger noise. Much harder: it
  needs far more training than a CPU trial has (see docs/fidelity.md).

The source pool is split first (stratified by class, from the split seed), and each split's
images are drawn only from its own sources: no source digit appears in two splits. The
generation is a pure function of the task and the split seed (numpy's PCG64), so the same
seed gives byte-identical images on every machine with the same numpy. Generating takes a few
seconds; the result is cached in the workspace (``$NAS_HOME/cache``) as 8-bit images.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["TASKS", "DigitTask", "digit_task", "digit_task_cached"]

VERSION = 1
"""Bumped whenever the generator changes, so an old cache file is never read."""


@dataclass(frozen=True)
class DigitTask:
    """How the images of a generated digit task are drawn."""

    canvas: int
    """Side of the square canvas, in pixels."""
    digit_sizes: tuple[int, ...]
    """Sides of the placed digit (the 8x8 source upscaled), drawn uniformly."""
    fragments: tuple[int, int]
    """Fewest and most clutter fragments per image."""
    fragment_size: tuple[int, int]
    """Smallest and largest side of a fragment, cut from another digit at a placed size."""
    noise_sd: float
    """Standard deviation of the Gaussian pixel noise (images are in [0, 1] before it)."""
    sizes: tuple[int, int, int]
    """Images generated for train, validation and test."""


TASKS = {
    "jittered": DigitTask(
        canvas=16,
        digit_sizes=(10, 11, 12, 13, 14),
        fragments=(0, 0),
        fragment_size=(3, 4),
        noise_sd=0.05,
        sizes=(4_000, 4_000, 4_000),
    ),
    "cluttered": DigitTask(
        canvas=32,
        digit_sizes=(12, 14, 16, 18, 20),
        fragments=(3, 6),
        fragment_size=(4, 8),
        noise_sd=0.15,
        sizes=(12_000, 5_000, 5_000),
    ),
}


Splits = list[tuple[np.ndarray, np.ndarray]]
"""``[(images, labels)]`` for train, val and test: (N, 1, H, W) uint8 and (N,) int64."""


def digit_task_cached(
    name: str, split_seed: int = 0, val_fraction: float = 0.2, test_fraction: float = 0.2
) -> Splits:
    """:func:`digit_task`, read from the workspace cache when it was generated before."""
    from nas import workspace

    folder = workspace.home() / "cache"
    task = f"{name}-v{VERSION}-{split_seed}-{val_fraction:g}-{test_fraction:g}"
    key = hashlib.sha256(repr(TASKS[name]).encode()).hexdigest()[:8]  # changed task: new file
    path = folder / f"{task}-{key}.npz"
    try:
        with np.load(path) as saved:
            return [(saved[f"x{i}"], saved[f"y{i}"]) for i in range(3)]
    except (OSError, KeyError, ValueError):
        pass  # absent or unreadable: generate (and replace) it
    splits = digit_task(TASKS[name], split_seed, val_fraction, test_fraction)
    _save(path, splits)
    return splits


def _save(path: Path, splits: Splits) -> None:
    """Write atomically; a workspace that cannot be written only loses the cache."""
    arrays = {f"{k}{i}": a for i, (x, y) in enumerate(splits) for k, a in (("x", x), ("y", y))}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(fd, "wb") as handle:
            np.savez(handle, **arrays)
        os.replace(tmp, path)
    except OSError:
        return


def digit_task(
    task: DigitTask,
    split_seed: int = 0,
    val_fraction: float = 0.2,
    test_fraction: float = 0.2,
) -> Splits:
    """Generate the train, validation and test splits of `task` (see :data:`Splits`).

    `val_fraction` and `test_fraction` are the shares of the 1,797 source digits reserved
    for validation and test (stratified by class).
    """
    from sklearn.datasets import load_digits

    bunch = load_digits()
    sources = np.asarray(bunch.images, dtype=np.float32) / 16.0
    labels = np.asarray(bunch.target, dtype=np.int64)
    rng = np.random.Generator(np.random.PCG64(int(split_seed)))
    pools = _split_pool(labels, val_fraction, test_fraction, rng)
    scaled = {size: _upscale(sources, size) for size in task.digit_sizes}
    return [
        _draw(task, pool, labels, scaled, count, rng)
        for pool, count in zip(pools, task.sizes, strict=True)
    ]


def _split_pool(
    labels: np.ndarray, val_fraction: float, test_fraction: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Source indices of train, validation and test, stratified by class."""
    parts: dict[str, list[np.ndarray]] = {"train": [], "val": [], "test": []}
    for k in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == k))
        n_val = max(1, round(len(idx) * val_fraction))
        n_test = max(1, round(len(idx) * test_fraction))
        parts["val"].append(idx[:n_val])
        parts["test"].append(idx[n_val : n_val + n_test])
        parts["train"].append(idx[n_val + n_test :])
    train, val, test = (np.sort(np.concatenate(parts[s])) for s in ("train", "val", "test"))
    return train, val, test


def _upscale(sources: np.ndarray, size: int) -> np.ndarray:
    """Bilinear upscaling of (N, 8, 8) images to (N, size, size), pixel centres aligned."""
    h = sources.shape[1]
    pos = (np.arange(size, dtype=np.float64) + 0.5) * (h / size) - 0.5
    lo = np.clip(np.floor(pos).astype(int), 0, h - 1)
    hi = np.clip(lo + 1, 0, h - 1)
    frac = np.clip(pos - lo, 0.0, 1.0).astype(np.float32)
    rows = sources[:, lo, :] * (1 - frac)[None, :, None] + sources[:, hi, :] * frac[None, :, None]
    cols = rows[:, :, lo] * (1 - frac)[None, None, :] + rows[:, :, hi] * frac[None, None, :]
    return np.ascontiguousarray(cols, dtype=np.float32)


def _draw(
    task: DigitTask,
    pool: np.ndarray,
    labels: np.ndarray,
    scaled: dict[int, np.ndarray],
    count: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """`count` images whose digits and fragments all come from `pool`; classes balanced."""
    by_class = [pool[labels[pool] == k] for k in range(10)]
    targets = np.arange(count) % 10
    rng.shuffle(targets)
    size = task.canvas
    images = np.zeros((count, size, size), dtype=np.float32)
    for i, k in enumerate(targets):
        canvas = images[i]
        n_fragments = int(rng.integers(task.fragments[0], task.fragments[1] + 1))
        for _ in range(n_fragments):
            source = scaled[int(rng.choice(task.digit_sizes))][int(rng.choice(pool))]
            side = int(rng.integers(task.fragment_size[0], task.fragment_size[1] + 1))
            sy, sx = rng.integers(0, len(source) - side + 1, size=2)
            y, x = rng.integers(0, size - side + 1, size=2)
            patch = source[sy : sy + side, sx : sx + side]
            region = canvas[y : y + side, x : x + side]
            np.maximum(region, patch, out=region)
        digit = scaled[int(rng.choice(task.digit_sizes))][int(rng.choice(by_class[k]))]
        side = len(digit)
        y, x = rng.integers(0, size - side + 1, size=2)
        region = canvas[y : y + side, x : x + side]
        np.maximum(region, digit, out=region)
    images += rng.normal(0.0, task.noise_sd, size=images.shape).astype(np.float32)
    np.clip(images, 0.0, 1.0, out=images)
    pixels = np.rint(images * 255).astype(np.uint8)
    return pixels[:, None], targets.astype(np.int64)
