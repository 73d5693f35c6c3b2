"""Datasets as in-memory tensors: `cluttered`, `digits`, `synthetic`, `cifar10`, `imagefolder`.

Every dataset is resized to the search space's input shape, split into training, validation
and test sets and standardised per channel with the training split's statistics. The split
comes from its own seed (``split_seed``), never from the training seed, so every trial of a
search, and every search on the same data, is scored on the same examples; the test split is
held out from the search. Nothing is downloaded: `cluttered` is generated from the digits that
ship with scikit-learn (its splits come from disjoint source digits), `digits` ships with
scikit-learn, `synthetic` is generated, and the two folder formats are read from `data_dir`.
"""

from __future__ import annotations

import functools
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from nas.evaluation.errors import DatasetError
from nas.evaluation.settings import DATASETS

__all__ = ["CIFAR10_LAYOUT", "IMAGEFOLDER_LAYOUT", "Dataset", "load_dataset"]

CIFAR10_LAYOUT = (
    "a CIFAR-10 python-batch folder (cifar-10-batches-py): pickles data_batch_1 ... "
    "data_batch_5 (optionally test_batch and batches.meta), each a dict with 'data' "
    "(N x 3072 uint8, channel-major 32x32 RGB) and 'labels' (N ints)"
)
IMAGEFOLDER_LAYOUT = (
    "an image folder: one subfolder per class (its name is the label), each holding image "
    "files readable by Pillow (.png, .jpg, .jpeg, .bmp, .gif, .webp, .tif, .tiff)"
)
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"})
SYNTHETIC_SAMPLES = 256
SYNTHETIC_CLASSES = 4


@dataclass(frozen=True, eq=False)
class Dataset:
    """Standardised (N, C, H, W) float32 images and int64 labels: train, validation, test."""

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int
    classes: tuple[str, ...]

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """The (C, H, W) shape of one example."""
        c, h, w = self.x_train.shape[1:]
        return (int(c), int(h), int(w))


def load_dataset(
    name: str,
    input_shape: tuple[int, int, int],
    data_dir: str | Path | None = None,
    split_seed: int = 0,
    val_fraction: float = 0.2,
    test_fraction: float = 0.2,
    max_samples: int | None = None,
    num_classes: int | None = None,
) -> Dataset:
    """Load dataset `name` resized to `input_shape` (C, H, W), split from `split_seed`.

    `val_fraction` and `test_fraction` are the shares of the examples (for `cluttered`: of
    the source digits) held out for validation and test. `num_classes` sets the class count
    of `synthetic` (default 4); `max_samples` keeps a random subset (from the split seed)
    before the split. Results are cached per process (read-only).
    """
    if name not in DATASETS:
        raise DatasetError(f"unknown dataset {name!r}; valid datasets: {', '.join(DATASETS)}")
    shape = tuple(int(v) for v in input_shape)
    if len(shape) != 3 or min(shape) < 1:
        raise DatasetError(f"input_shape must be (C, H, W) with positive sizes, got {input_shape}")
    if not 0 < val_fraction < 1:
        raise DatasetError(f"val_fraction must be in (0, 1), got {val_fraction}")
    if not 0 <= test_fraction < 1 or val_fraction + test_fraction >= 1:
        raise DatasetError(
            f"test_fraction must be in [0, 1) and leave training examples beside "
            f"val_fraction={val_fraction}, got {test_fraction}"
        )
    if name in ("cifar10", "imagefolder"):
        if data_dir is None:
            layout = CIFAR10_LAYOUT if name == "cifar10" else IMAGEFOLDER_LAYOUT
            raise DatasetError(f"dataset {name!r} needs data_dir: {layout}")
        data_dir = str(Path(data_dir).expanduser().resolve())
    else:
        data_dir = None
    return _load_cached(
        name, shape, data_dir, split_seed, val_fraction, test_fraction, max_samples, num_classes
    )


@functools.lru_cache(maxsize=4)
def _load_cached(
    name: str,
    shape: tuple[int, int, int],
    data_dir: str | None,
    split_seed: int,
    val_fraction: float,
    test_fraction: float,
    max_samples: int | None,
    num_classes: int | None,
) -> Dataset:
    if name == "cluttered":
        images, labels, splits = _cluttered(split_seed, val_fraction, test_fraction)
        classes = tuple(str(i) for i in range(10))
    else:
        if name == "digits":
            images, labels, classes = _digits()
        elif name == "synthetic":
            k = num_classes or SYNTHETIC_CLASSES
            samples = max_samples or SYNTHETIC_SAMPLES
            images, labels, classes = _synthetic(shape, samples, k, split_seed)
        elif name == "cifar10":
            images, labels, classes = _cifar10(Path(data_dir or ""))
        else:
            images, labels, classes = _imagefolder(Path(data_dir or ""), shape)
        if max_samples is not None and max_samples < len(labels):
            keep = torch.randperm(len(labels), generator=_generator(split_seed, 1))[:max_samples]
            keep = keep.sort().values
            images, labels = images[keep], labels[keep]
        splits = _split(labels, len(classes), val_fraction, test_fraction, split_seed)
    images = _fit(images, shape)
    train, val, test = splits
    x_train = images[train]
    mean = x_train.mean(dim=(0, 2, 3), keepdim=True)
    std = x_train.std(dim=(0, 2, 3), keepdim=True).clamp_min(1e-6)

    def standardised(index: torch.Tensor) -> torch.Tensor:
        return ((images[index] - mean) / std).contiguous()

    return Dataset(
        name,
        standardised(train),
        labels[train],
        standardised(val),
        labels[val],
        standardised(test),
        labels[test],
        len(classes),
        classes,
    )


def _generator(seed: int, stream: int) -> torch.Generator:
    return torch.Generator().manual_seed(int(seed) * 7919 + stream)


def _cluttered(
    split_seed: int, val_fraction: float, test_fraction: float
) -> tuple[torch.Tensor, torch.Tensor, tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """The generated cluttered digits (cached on disk), concatenated, with their split indices."""
    from nas.evaluation.cluttered import cluttered_digits_cached

    splits = cluttered_digits_cached(split_seed, val_fraction, test_fraction)
    images, labels, index, start = [], [], [], 0
    for x, y in splits:
        images.append(torch.from_numpy(x).to(torch.float32).div_(255.0))
        labels.append(torch.from_numpy(y))
        index.append(torch.arange(start, start + len(y)))
        start += len(y)
    train, val, test = index
    return torch.cat(images), torch.cat(labels), (train, val, test)


def _digits() -> tuple[torch.Tensor, torch.Tensor, tuple[str, ...]]:
    """scikit-learn's 1,797 8x8 handwritten digits (values 0-16), scaled to [0, 1]."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = torch.from_numpy(np.asarray(bunch.images, dtype=np.float32) / 16.0)
    labels = torch.from_numpy(np.asarray(bunch.target, dtype=np.int64))
    return images.unsqueeze(1), labels, tuple(str(i) for i in range(10))


def _synthetic(
    shape: tuple[int, int, int], samples: int, num_classes: int, seed: int
) -> tuple[torch.Tensor, torch.Tensor, tuple[str, ...]]:
    """Smooth random class prototypes plus noise: learnable by a small CNN in a few steps."""
    if num_classes < 2:
        raise DatasetError(f"synthetic needs at least 2 classes, got {num_classes}")
    if samples < 2 * num_classes:
        raise DatasetError(f"synthetic needs at least {2 * num_classes} samples, got {samples}")
    c, h, w = shape
    gen = _generator(seed, 2)
    coarse = torch.randn(num_classes, c, 4, 4, generator=gen)
    prototypes = F.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False)
    labels = torch.arange(samples) % num_classes
    labels = labels[torch.randperm(samples, generator=gen)]
    noise = torch.randn(samples, c, h, w, generator=gen)
    images = prototypes[labels] + 0.8 * noise
    return images, labels.to(torch.int64), tuple(f"class{i}" for i in range(num_classes))


def _cifar10(folder: Path) -> tuple[torch.Tensor, torch.Tensor, tuple[str, ...]]:
    """The training batches of a CIFAR-10 python-batch folder (test_batch stays held out)."""
    if not folder.is_dir():
        raise DatasetError(f"cifar10: {folder} is not a folder; expected {CIFAR10_LAYOUT}")
    if not (folder / "data_batch_1").is_file() and (folder / "cifar-10-batches-py").is_dir():
        folder = folder / "cifar-10-batches-py"
    names = [f"data_batch_{i}" for i in range(1, 6)]
    missing = [n for n in names if not (folder / n).is_file()]
    if missing:
        raise DatasetError(
            f"cifar10: {folder} lacks {', '.join(missing)}; expected {CIFAR10_LAYOUT}"
        )
    arrays, labels = [], []
    for name in names:
        data, batch_labels = _cifar_batch(folder / name)
        arrays.append(data)
        labels.extend(batch_labels)
    classes = tuple(str(i) for i in range(10))
    meta = folder / "batches.meta"
    if meta.is_file():
        names_in_meta = _unpickle(meta).get("label_names")
        if isinstance(names_in_meta, list) and len(names_in_meta) == 10:
            classes = tuple(n.decode() if isinstance(n, bytes) else str(n) for n in names_in_meta)
    data = np.concatenate(arrays).reshape(-1, 3, 32, 32)
    images = torch.from_numpy(data).to(torch.float32).div_(255.0)
    return images, torch.tensor(labels, dtype=torch.int64), classes


def _unpickle(path: Path) -> dict[str, object]:
    try:
        with path.open("rb") as handle:
            obj = pickle.load(handle, encoding="bytes")
    except Exception as exc:
        raise DatasetError(
            f"cifar10: cannot read {path} ({type(exc).__name__}: {exc}); expected {CIFAR10_LAYOUT}"
        ) from exc
    if not isinstance(obj, dict):
        raise DatasetError(f"cifar10: {path} holds a {type(obj).__name__}, not a dict")
    return {k.decode() if isinstance(k, bytes) else str(k): v for k, v in obj.items()}


def _cifar_batch(path: Path) -> tuple[np.ndarray, list[int]]:
    batch = _unpickle(path)
    data, labels = batch.get("data"), batch.get("labels")
    if not isinstance(data, np.ndarray) or data.ndim != 2 or data.shape[1] != 3072:
        raise DatasetError(
            f"cifar10: {path} has no 'data' array of shape (N, 3072); expected {CIFAR10_LAYOUT}"
        )
    if labels is None or len(labels) != len(data):
        raise DatasetError(
            f"cifar10: {path} needs one label per image in 'labels'; expected {CIFAR10_LAYOUT}"
        )
    labels = [int(v) for v in labels]
    if any(not 0 <= v < 10 for v in labels):
        raise DatasetError(f"cifar10: {path} has labels outside 0..9")
    return data.astype(np.uint8, copy=False), labels


def _imagefolder(
    folder: Path, shape: tuple[int, int, int]
) -> tuple[torch.Tensor, torch.Tensor, tuple[str, ...]]:
    """Images under `folder/<class>/`, read with Pillow and resized to the input shape."""
    from PIL import Image, UnidentifiedImageError

    if not folder.is_dir():
        raise DatasetError(f"imagefolder: {folder} is not a folder; expected {IMAGEFOLDER_LAYOUT}")
    class_dirs = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(class_dirs) < 2:
        raise DatasetError(
            f"imagefolder: {folder} has {len(class_dirs)} class subfolder(s), needs at least 2; "
            f"expected {IMAGEFOLDER_LAYOUT}"
        )
    c, h, w = shape
    mode = "L" if c == 1 else "RGB"
    arrays: list[np.ndarray] = []
    labels: list[int] = []
    for index, class_dir in enumerate(class_dirs):
        files = sorted(
            p for p in class_dir.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
        )
        if not files:
            raise DatasetError(
                f"imagefolder: class folder {class_dir} holds no images; "
                f"expected {IMAGEFOLDER_LAYOUT}"
            )
        for path in files:
            try:
                with Image.open(path) as image:
                    image = image.convert(mode).resize((w, h), Image.Resampling.BILINEAR)
                    array = np.asarray(image, dtype=np.uint8)
            except (UnidentifiedImageError, OSError, ValueError) as exc:
                raise DatasetError(f"imagefolder: cannot read image {path}: {exc}") from exc
            arrays.append(array[None] if array.ndim == 2 else array.transpose(2, 0, 1))
            labels.append(index)
    images = torch.from_numpy(np.stack(arrays)).to(torch.float32).div_(255.0)
    return images, torch.tensor(labels, dtype=torch.int64), tuple(p.name for p in class_dirs)


def _fit(images: torch.Tensor, shape: tuple[int, int, int]) -> torch.Tensor:
    """Match channels (grey <-> RGB) and spatial size (bilinear, antialiased when shrinking)."""
    c, h, w = shape
    have = images.shape[1]
    if have != c:
        if have == 1:
            images = images.expand(-1, c, -1, -1)
        elif have == 3 and c == 1:
            weights = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
            images = (images * weights).sum(dim=1, keepdim=True)
        else:
            raise DatasetError(f"cannot adapt {have}-channel images to {c} input channels")
    if tuple(images.shape[2:]) != (h, w):
        shrink = h < images.shape[2] or w < images.shape[3]
        chunks = [
            F.interpolate(
                chunk, size=(h, w), mode="bilinear", align_corners=False, antialias=shrink
            )
            for chunk in images.split(4096)
        ]
        images = torch.cat(chunks)
    return images.contiguous().to(torch.float32)


def _split(
    labels: torch.Tensor, num_classes: int, val_fraction: float, test_fraction: float, seed: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A stratified train/validation/test split, the same for the same seed and labels.

    Each class keeps at least one training and one validation example; the test split may be
    empty for a class too small to spare one.
    """
    gen = _generator(seed, 3)
    parts: tuple[list[torch.Tensor], ...] = ([], [], [])
    for k in range(num_classes):
        idx = torch.nonzero(labels == k).flatten()
        if len(idx) == 0:
            continue
        idx = idx[torch.randperm(len(idx), generator=gen)]
        n_val = round(len(idx) * val_fraction)
        n_test = round(len(idx) * test_fraction)
        if len(idx) >= 2:
            n_val = min(max(n_val, 1), len(idx) - 1)
            n_test = min(n_test, len(idx) - 1 - n_val)
        parts[1].append(idx[:n_val])
        parts[2].append(idx[n_val : n_val + n_test])
        parts[0].append(idx[n_val + n_test :])
    train, val, test = (torch.cat(p).sort().values for p in parts)
    if len(train) == 0 or len(val) == 0:
        raise DatasetError(
            f"too few examples ({len(labels)}) for a train/validation split "
            f"with val_fraction={val_fraction} and test_fraction={test_fraction}"
        )
    return train, val, test
