"""``cluttered``: handwritten digits on a larger canvas among fragments of other digits and noise.

The cluttered-digit setting that evaluates spatial attention (Mnih et al., "Recurrent Models
of Visual Attention", 2014, https://arxiv.org/abs/1406.6247; Jaderberg et al., "Spatial
Transformer Networks", 2015, https://arxiv.org/abs/1506.02025), built from scikit-learn's
1,797 bundled 8x8 digits, so nothing is downloaded. The source pool is split first
(stratified by class, from the split seed), and each split's images are drawn only from its
own sources: no source digit appears in two splits. Every image places one digit at a random
scale and position, adds fragments of other digits of the same split, then pixel noise. The
generation is a pure function of the split seed (numpy's PCG64), so the same seed gives
byte-identical images on every machine with the same numpy. Generating takes a few seconds;
the result is cached in the workspace (``$NAS_HOME/cache``) as 8-bit images.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

__all__ = ["CANVAS", "SPLIT_SIZES", "cluttered_digits", "cluttered_digits_cached"]

VERSION = 1
"""Bumped whenever the generator changes, so an old cache file is never read."""

CANVAS = 32
"""Side of the square canvas, in pixels."""
SPLIT_SIZES = {"train": 12_000, "val": 5_000, "test": 5_000}
"""Images generated per split."""
DIGIT_SIZES = (12, 14, 16, 18, 20)
"""Side of the placed digit (the 8x8 source upscaled)."""
FRAGMENTS = (3, 6)
"""Fewest and most clutter fragments per image."""
FRAGMENT_SIZE = (4, 8)
"""Smallest and largest side of a fragment, cut from another digit at a placed size."""
NOISE_SD = 0.15
"""Standard deviation of the Gaussian pixel noise (images are in [0, 1] before it)."""


Splits = list[tuple[np.ndarray, np.ndarray]]
"""``[(images, labels)]`` for train, val and test: (N, 1, H, W) uint8 and (N,) int64."""


def cluttered_digits_cached(
    split_seed: int = 0, val_fraction: float = 0.2, test_fraction: float = 0.2
) -> Splits:
    """:func:`cluttered_digits`, read from the workspace cache when it was generated before."""
    from nas import workspace

    folder = workspace.home() / "cache"
    name = f"cluttered-v{VERSION}-{split_seed}-{val_fraction:g}-{test_fraction:g}.npz"
    path = folder / name
    try:
        with np.load(path) as saved:
            return [(saved[f"x{i}"], saved[f"y{i}"]) for i in range(3)]
    except (OSError, KeyError, ValueError):
        pass  # absent or unreadable: generate (and replace) it
    splits = cluttered_digits(split_seed, val_fraction, test_fraction)
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


def cluttered_digits(
    split_seed: int = 0,
    val_fraction: float = 0.2,
    test_fraction: float = 0.2,
    sizes: dict[str, int] | None = None,
) -> Splits:
    """Generate the train, validation and test splits (see :data:`Splits`).

    `val_fraction` and `test_fraction` are the shares of the 1,797 source digits reserved
    for validation and test (stratified by class); `sizes` overrides :data:`SPLIT_SIZES`.
    """
    from sklearn.datasets import load_digits

    sizes = {**SPLIT_SIZES, **(sizes or {})}
    bunch = load_digits()
    sources = np.asarray(bunch.images, dtype=np.float32) / 16.0
    labels = np.asarray(bunch.target, dtype=np.int64)
    rng = np.random.Generator(np.random.PCG64(int(split_seed)))
    pools = _split_pool(labels, val_fraction, test_fraction, rng)
    scaled = {size: _upscale(sources, size) for size in DIGIT_SIZES}
    return [
        _draw(pool, labels, scaled, sizes[split], rng)
        for split, pool in zip(("train", "val", "test"), pools, strict=True)
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
    images = np.zeros((count, CANVAS, CANVAS), dtype=np.float32)
    for i, k in enumerate(targets):
        canvas = images[i]
        n_fragments = int(rng.integers(FRAGMENTS[0], FRAGMENTS[1] + 1))
        for _ in range(n_fragments):
            source = scaled[int(rng.choice(DIGIT_SIZES))][int(rng.choice(pool))]
            side = int(rng.integers(FRAGMENT_SIZE[0], FRAGMENT_SIZE[1] + 1))
            sy, sx = rng.integers(0, len(source) - side + 1, size=2)
            y, x = rng.integers(0, CANVAS - side + 1, size=2)
            patch = source[sy : sy + side, sx : sx + side]
            region = canvas[y : y + side, x : x + side]
            np.maximum(region, patch, out=region)
        digit = scaled[int(rng.choice(DIGIT_SIZES))][int(rng.choice(by_class[k]))]
        side = len(digit)
        y, x = rng.integers(0, CANVAS - side + 1, size=2)
        region = canvas[y : y + side, x : x + side]
        np.maximum(region, digit, out=region)
    images += rng.normal(0.0, NOISE_SD, size=images.shape).astype(np.float32)
    np.clip(images, 0.0, 1.0, out=images)
    pixels = np.rint(images * 255).astype(np.uint8)
    return pixels[:, None], targets.astype(np.int64)
