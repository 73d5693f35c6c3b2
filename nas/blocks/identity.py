"""``none``: the identity, so "no attention" is an ordinary choice of every stage."""

from __future__ import annotations

import torch
from torch import nn

from nas.blocks.registry import BlockSpec, register

__all__ = ["NoAttention"]


class NoAttention(nn.Module):
    """Returns its input unchanged; has no parameters."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.channels = channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


register(
    BlockSpec(
        name="none",
        cls=NoAttention,
        paper="-",
        summary="identity (no attention)",
    )
)
