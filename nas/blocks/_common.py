"""Small helpers shared by the block modules: value checks, channel arithmetic, activations."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

__all__ = [
    "HardSwish",
    "as_tuple",
    "channel_shuffle",
    "eca_kernel_size",
    "is_int",
    "make_divisible",
    "odd_int",
    "positive_int",
    "ratio_rule",
    "reduced",
    "tuple_of_positive_ints",
]


def is_int(value: Any) -> bool:
    """True for a real ``int`` (``bool`` is not one here)."""
    return isinstance(value, int) and not isinstance(value, bool)


def positive_int(value: Any) -> str | None:
    """Check for a positive integer; returns the broken rule or ``None``."""
    if not is_int(value) or value < 1:
        return "must be a positive integer"
    return None


def odd_int(value: Any) -> str | None:
    """Check for a positive odd integer (a kernel size that keeps the spatial size)."""
    if not is_int(value) or value < 1 or value % 2 == 0:
        return "must be a positive odd integer"
    return None


def tuple_of_positive_ints(*, odd: bool = False) -> Callable[[Any], str | None]:
    """Check for a non-empty tuple (or JSON list) of positive (optionally odd) integers."""

    def check(value: Any) -> str | None:
        kind = "positive odd integers" if odd else "positive integers"
        if not isinstance(value, list | tuple) or not value:
            return f"must be a non-empty tuple of {kind}"
        if any(not is_int(v) or v < 1 or (odd and v % 2 == 0) for v in value):
            return f"must be a non-empty tuple of {kind}"
        return None

    return check


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round ``value`` to the nearest multiple of ``divisor``, never dropping below 90% of it."""
    min_value = min_value or divisor
    new = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if new < 0.9 * value:
        new += divisor
    return new


def reduced(channels: int, reduction: int, floor: int = 0) -> int:
    """Hidden width of a bottleneck: ``max(floor, channels // reduction)`` as the papers do."""
    return max(floor, channels // reduction)


def ratio_rule(param: str) -> Callable[[int, Any], tuple[str, Any, str] | None]:
    """Channel rule for ``C // param >= 1`` (the reduced width must not be zero)."""

    def rule(channels: int, hp: Any) -> tuple[str, Any, str] | None:
        value = hp[param]
        if channels // value < 1:
            return (
                param,
                value,
                f"must be at most channels={channels} (channels // {param} must be >= 1)",
            )
        return None

    return rule


def eca_kernel_size(channels: int, gamma: int = 2, b: int = 1) -> int:
    """ECA's adaptive kernel: ``|log2(C)/gamma + b/gamma|`` truncated, then made odd."""
    t = int(abs((math.log2(channels) + b) / gamma))
    return t if t % 2 else t + 1


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """ShuffleNet's channel shuffle: (B, g*n, H, W) -> interleave the ``groups`` chunks."""
    b, c, h, w = x.shape
    return x.reshape(b, groups, c // groups, h, w).transpose(1, 2).reshape(b, c, h, w)


class HardSwish(nn.Module):
    """``x * relu6(x + 3) / 6`` as written in the Coordinate Attention code."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.nn.functional.relu6(x + 3.0) / 6.0


def as_tuple(value: Sequence[int]) -> tuple[int, ...]:
    """A JSON list or a tuple of ints as a tuple."""
    return tuple(int(v) for v in value)
