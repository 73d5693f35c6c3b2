"""Criss-cross attention (``cc``).

Zilong Huang, Xinggang Wang, Lichao Huang, Chang Huang, Yunchao Wei, Wenyu Liu: "CCNet:
Criss-Cross Attention for Semantic Segmentation", ICCV 2019. https://arxiv.org/abs/1811.11721

Q, K: 1x1 convs C -> C/r (r = 8), V: 1x1 conv C -> C (biases). Every position attends to the
positions in its row and its column (H + W - 1 of them: the centre pixel is counted once, by
masking it out of the column part); one softmax over both; ``out = gamma * A(V) + x`` with
gamma initialised to 0. The recurrent module (RCCA) applies the same block ``recurrence``
times so that information reaches every position (R = 2 in the paper). Device-agnostic: the
mask is built on the input's device (the reference code hard-codes CUDA), from ``arange`` so
that the block exports to ONNX.
"""

from __future__ import annotations

import torch
from torch import nn

from nas.blocks._common import positive_int, ratio_rule, reduced
from nas.blocks.registry import BlockSpec, HParam, get_spec, register

__all__ = ["CrissCrossAttention"]


class CrissCrossAttention(nn.Module):
    """Recurrent criss-cross attention (shared weights across the recurrences)."""

    def __init__(self, channels: int, *, reduction: int = 8, recurrence: int = 2) -> None:
        super().__init__()
        get_spec("cc").validate(channels, reduction=reduction, recurrence=recurrence)
        inner = reduced(channels, reduction)
        self.recurrence = recurrence
        self.query = nn.Conv2d(channels, inner, 1)
        self.key = nn.Conv2d(channels, inner, 1)
        self.value = nn.Conv2d(channels, channels, 1)
        self.gamma = nn.Parameter(torch.zeros(1))

    def _attend(self, x: torch.Tensor) -> torch.Tensor:
        h = x.shape[2]
        q, k, v = self.query(x), self.key(x), self.value(x)
        energy_h = torch.einsum("bchw,bcgw->bhwg", q, k)  # (B, H, W, H): column
        # The identity mask as rows == columns: torch.eye exports to ONNX EyeLike, which
        # ONNX Runtime has no boolean kernel for.
        rows = torch.arange(h, device=x.device)
        centre = (rows[:, None] == rows[None, :]).unsqueeze(1)  # (H, 1, H)
        energy_h = energy_h.masked_fill(centre, float("-inf"))
        energy_w = torch.einsum("bchw,bchv->bhwv", q, k)  # (B, H, W, W): row
        att = torch.softmax(torch.cat([energy_h, energy_w], dim=3), dim=3)
        att_h, att_w = att[..., :h], att[..., h:]
        out = torch.einsum("bhwg,bcgw->bchw", att_h, v)
        out = out + torch.einsum("bhwv,bchv->bchw", att_w, v)
        return self.gamma * out + x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for _ in range(self.recurrence):
            x = self._attend(x)
        return x


register(
    BlockSpec(
        name="cc",
        cls=CrissCrossAttention,
        paper="Huang et al., CCNet: Criss-Cross Attention for Semantic Segmentation, ICCV 2019 "
        "(arXiv:1811.11721)",
        summary="row+column attention (centre once), gamma=0, applied `recurrence` times",
        hparams=(
            HParam(
                "reduction",
                int,
                8,
                (4, 8, 16),
                "query/key width is channels // reduction",
                positive_int,
            ),
            HParam(
                "recurrence",
                int,
                2,
                (1, 2),
                "times the shared criss-cross block is applied (RCCA)",
                positive_int,
            ),
        ),
        rule=ratio_rule("reduction"),
    )
)
