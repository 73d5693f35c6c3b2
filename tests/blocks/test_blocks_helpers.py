"""The small shared helpers of nas.blocks."""

from __future__ import annotations

import pytest
import torch

from nas.blocks import make_divisible
from nas.blocks._common import channel_shuffle, eca_kernel_size, reduced


@pytest.mark.parametrize(
    ("value", "divisor", "expected"),
    [(24, 8, 24), (3, 8, 8), (10, 8, 16), (12, 8, 16), (36, 8, 40), (17.6, 4, 16), (100, 32, 96)],
)
def test_make_divisible(value: float, divisor: int, expected: int) -> None:
    # nearest multiple of divisor, at least divisor, never below 90% of value
    assert make_divisible(value, divisor) == expected


def test_reduced_floor() -> None:
    assert reduced(64, 16) == 4
    assert reduced(64, 32, floor=8) == 8
    assert reduced(4, 8, floor=1) == 1


def test_eca_kernel_size_is_odd() -> None:
    assert all(eca_kernel_size(c) % 2 == 1 for c in range(1, 5000, 37))


def test_channel_shuffle_interleaves() -> None:
    x = torch.arange(6.0).reshape(1, 6, 1, 1)
    assert channel_shuffle(x, 2).flatten().tolist() == [0, 3, 1, 4, 2, 5]
    assert channel_shuffle(x, 3).flatten().tolist() == [0, 2, 4, 1, 3, 5]
