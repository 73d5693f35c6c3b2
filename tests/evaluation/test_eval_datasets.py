"""Datasets: shapes, deterministic splits, and clear errors for bad folders."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from nas.evaluation import DatasetError, load_dataset
from nas.evaluation.datasets import _load_cached


def _fake_cifar(folder: Path, per_batch: int = 6, meta: bool = True) -> Path:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(1, 6):
        labels = [int(v) for v in rng.integers(0, 10, per_batch)]
        data = rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8)
        with (folder / f"data_batch_{i}").open("wb") as handle:
            pickle.dump({b"data": data, b"labels": labels}, handle)
    with (folder / "test_batch").open("wb") as handle:
        pickle.dump({b"data": data, b"labels": labels}, handle)
    if meta:
        names = [f"name{i}".encode() for i in range(10)]
        with (folder / "batches.meta").open("wb") as handle:
            pickle.dump({b"label_names": names}, handle)
    return folder


def _fake_imagefolder(folder: Path, per_class: int = 4) -> Path:
    colours = {"cat": (250, 10, 10), "dog": (10, 250, 10), "eel": (10, 10, 250)}
    for name, colour in colours.items():
        (folder / name).mkdir(parents=True)
        for i in range(per_class):
            Image.new("RGB", (12 + i, 10), colour).save(folder / name / f"{i}.png")
    return folder


def test_digits_resized_split_and_standardised() -> None:
    data = load_dataset("digits", (3, 16, 16), split_seed=0, val_fraction=0.2)
    assert data.x_train.shape[1:] == (3, 16, 16)
    assert data.num_classes == 10
    assert len(data.y_train) + len(data.y_val) + len(data.y_test) == 1797
    assert abs(len(data.y_val) - 0.2 * 1797) <= 10
    assert set(data.y_val.tolist()) == set(range(10))
    assert abs(float(data.x_train.mean())) < 1e-3
    assert abs(float(data.x_train.std()) - 1.0) < 1e-2
    assert torch.equal(data.x_train[:, 0], data.x_train[:, 2])


def test_split_is_deterministic_from_seed() -> None:
    a = load_dataset("digits", (1, 8, 8), split_seed=1)
    _load_cached.cache_clear()
    b = load_dataset("digits", (1, 8, 8), split_seed=1)
    c = load_dataset("digits", (1, 8, 8), split_seed=2)
    assert a is not b
    assert torch.equal(a.y_val, b.y_val) and torch.equal(a.x_val, b.x_val)
    assert not torch.equal(a.y_val, c.y_val)


def test_synthetic_is_deterministic_and_sized() -> None:
    a = load_dataset("synthetic", (2, 8, 8), split_seed=3, num_classes=3, max_samples=60)
    _load_cached.cache_clear()
    b = load_dataset("synthetic", (2, 8, 8), split_seed=3, num_classes=3, max_samples=60)
    c = load_dataset("synthetic", (2, 8, 8), split_seed=4, num_classes=3, max_samples=60)
    assert a.num_classes == 3
    assert len(a.y_train) + len(a.y_val) + len(a.y_test) == 60
    assert a is not b
    assert torch.equal(a.x_train, b.x_train)
    assert not torch.equal(a.x_train, c.x_train)


def test_max_samples_keeps_a_subset() -> None:
    data = load_dataset("digits", (1, 8, 8), max_samples=100)
    assert len(data.y_train) + len(data.y_val) + len(data.y_test) == 100


def test_cifar10_folder(tmp_path: Path) -> None:
    folder = _fake_cifar(tmp_path / "cifar")
    data = load_dataset("cifar10", (3, 32, 32), data_dir=folder, val_fraction=0.25)
    assert len(data.y_train) + len(data.y_val) + len(data.y_test) == 30
    assert data.x_train.shape[1:] == (3, 32, 32)
    assert data.classes == tuple(f"name{i}" for i in range(10))
    grey = load_dataset("cifar10", (1, 16, 16), data_dir=folder)
    assert grey.x_val.shape[1:] == (1, 16, 16)


def test_cifar10_inside_the_archive_folder_name(tmp_path: Path) -> None:
    _fake_cifar(tmp_path / "cifar-10-batches-py", meta=False)
    data = load_dataset("cifar10", (3, 8, 8), data_dir=tmp_path)
    assert data.num_classes == 10
    assert data.classes[0] == "0"


def test_cifar10_missing_folder_says_what_was_expected(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="data_batch_1") as info:
        load_dataset("cifar10", (3, 32, 32), data_dir=tmp_path / "nope")
    assert "not a folder" in str(info.value)


def test_cifar10_missing_batch(tmp_path: Path) -> None:
    folder = _fake_cifar(tmp_path / "c")
    (folder / "data_batch_4").unlink()
    with pytest.raises(DatasetError, match="lacks data_batch_4"):
        load_dataset("cifar10", (3, 32, 32), data_dir=folder)


@pytest.mark.parametrize(
    "content",
    [b"not a pickle at all", pickle.dumps([1, 2, 3]), pickle.dumps({b"data": np.zeros((2, 5))})],
)
def test_cifar10_malformed_batch(tmp_path: Path, content: bytes) -> None:
    folder = _fake_cifar(tmp_path / "c")
    (folder / "data_batch_2").write_bytes(content)
    with pytest.raises(DatasetError, match="data_batch_2"):
        load_dataset("cifar10", (3, 32, 32), data_dir=folder)


def test_folder_datasets_need_data_dir() -> None:
    for name in ("cifar10", "imagefolder"):
        with pytest.raises(DatasetError, match="needs data_dir"):
            load_dataset(name, (3, 32, 32))


def test_unknown_dataset_lists_valid_ones() -> None:
    with pytest.raises(DatasetError, match="digits, synthetic, cifar10, imagefolder"):
        load_dataset("mnist", (1, 28, 28))


def test_imagefolder(tmp_path: Path) -> None:
    folder = _fake_imagefolder(tmp_path / "images")
    data = load_dataset("imagefolder", (3, 8, 8), data_dir=folder, val_fraction=0.25)
    assert data.classes == ("cat", "dog", "eel")
    assert (len(data.y_train), len(data.y_val), len(data.y_test)) == (6, 3, 3)
    assert data.x_train.shape[1:] == (3, 8, 8)
    # each class is one solid colour: its dominant channel is the class index
    means = data.x_train.mean(dim=(2, 3))
    assert torch.equal(means.argmax(dim=1), data.y_train)
    grey = load_dataset("imagefolder", (1, 4, 4), data_dir=folder)
    assert grey.x_train.shape[1:] == (1, 4, 4)


def test_imagefolder_errors(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="one subfolder per class"):
        load_dataset("imagefolder", (3, 8, 8), data_dir=tmp_path / "missing")
    single = tmp_path / "single"
    (single / "only").mkdir(parents=True)
    with pytest.raises(DatasetError, match="needs at least 2"):
        load_dataset("imagefolder", (3, 8, 8), data_dir=single)
    folder = _fake_imagefolder(tmp_path / "empty_class")
    (folder / "fox").mkdir()
    with pytest.raises(DatasetError, match="fox holds no images"):
        load_dataset("imagefolder", (3, 8, 8), data_dir=folder)
    broken = _fake_imagefolder(tmp_path / "broken")
    (broken / "dog" / "9.png").write_bytes(b"garbage")
    with pytest.raises(DatasetError, match=r"cannot read image .*9\.png"):
        load_dataset("imagefolder", (3, 8, 8), data_dir=broken)


def _small(name: str, split_seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    from dataclasses import replace

    from nas.evaluation.digit_tasks import TASKS, digit_task

    return digit_task(replace(TASKS[name], sizes=(40, 30, 30)), split_seed)


@pytest.mark.parametrize("name", ["jittered", "cluttered"])
def test_generated_task_is_byte_identical_for_the_same_split_seed(name: str) -> None:
    from nas.evaluation.digit_tasks import TASKS

    a, b, c = _small(name, 5), _small(name, 5), _small(name, 6)
    for (xa, ya), (xb, yb) in zip(a, b, strict=True):
        assert xa.tobytes() == xb.tobytes() and ya.tobytes() == yb.tobytes()
    assert a[0][0].tobytes() != c[0][0].tobytes()
    x, y = a[0]
    side = TASKS[name].canvas
    assert x.shape == (40, 1, side, side) and x.dtype == np.uint8
    assert sorted(set(y.tolist())) == list(range(10))  # classes balanced


def test_generated_splits_come_from_disjoint_source_digits() -> None:
    from nas.evaluation.digit_tasks import _split_pool

    labels = np.repeat(np.arange(10), 180)
    rng = np.random.Generator(np.random.PCG64(0))
    train, val, test = _split_pool(labels, 0.2, 0.2, rng)
    assert not set(train) & set(val) and not set(train) & set(test) and not set(val) & set(test)
    assert len(train) + len(val) + len(test) == len(labels)
    assert len(val) == len(test) == 360


def test_generated_task_draws_each_split_from_its_own_pool(monkeypatch) -> None:
    """Each split is drawn (digits and fragments alike) from a source pool of its own."""
    from dataclasses import replace

    from nas.evaluation import digit_tasks

    seen: list[np.ndarray] = []
    draw = digit_tasks._draw

    def spy(task, pool, labels, scaled, count, rng):
        seen.append(np.asarray(pool))
        return draw(task, pool, labels, scaled, count, rng)

    monkeypatch.setattr(digit_tasks, "_draw", spy)
    digit_tasks.digit_task(replace(digit_tasks.TASKS["cluttered"], sizes=(10, 10, 10)), 0)
    train, val, test = (set(p.tolist()) for p in seen)
    assert not train & val and not train & test and not val & test


def test_generated_dataset_is_cached_and_split(tmp_path, monkeypatch) -> None:
    from dataclasses import replace

    from nas.evaluation import digit_tasks

    monkeypatch.setenv("NAS_HOME", str(tmp_path))
    small = replace(digit_tasks.TASKS["jittered"], sizes=(60, 40, 40))
    monkeypatch.setitem(digit_tasks.TASKS, "jittered", small)
    _load_cached.cache_clear()
    data = load_dataset("jittered", (1, 16, 16))
    assert (len(data.y_train), len(data.y_val), len(data.y_test)) == (60, 40, 40)
    assert data.x_train.shape[1:] == (1, 16, 16)
    assert len(list((tmp_path / "cache").glob("jittered-*.npz"))) == 1
    _load_cached.cache_clear()
    again = load_dataset("jittered", (1, 16, 16))
    assert torch.equal(again.x_val, data.x_val) and torch.equal(again.x_test, data.x_test)
    _load_cached.cache_clear()


def test_splits_never_overlap() -> None:
    from nas.evaluation.datasets import _split

    labels = torch.arange(300) % 7
    train, val, test = _split(labels, 7, 0.2, 0.2, seed=3)
    sets = [set(t.tolist()) for t in (train, val, test)]
    assert not sets[0] & sets[1] and not sets[0] & sets[2] and not sets[1] & sets[2]
    assert len(sets[0]) + len(sets[1]) + len(sets[2]) == 300


def test_dataset_for_a_space_with_too_few_classes_is_a_dataset_error() -> None:
    import yaml

    from nas.evaluation import EvalSettings, dataset_for
    from nas.space import parse_space, space_path

    document = yaml.safe_load(space_path("tiny").read_text())
    space = parse_space({**document, "num_classes": 2})
    with pytest.raises(DatasetError, match="has 2 classes but dataset 'digits' has 10"):
        dataset_for(space, EvalSettings(dataset="digits"))
    tiny = parse_space(document)
    data = dataset_for(tiny, EvalSettings(dataset="digits"))
    assert data.x_val.shape[1:] == tuple(tiny.input_shape)
