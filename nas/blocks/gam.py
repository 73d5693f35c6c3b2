"""Global Attention Mechanism (``gam``).

Yichao Liu, Zongru Shao, Nico Hoffmann: "Global Attention Mechanism: Retain Information to
Enhance Channel-Spatial Interactions", arXiv 2021. https://arxiv.org/abs/2112.05561

Channel sub-module: permute to (B, H, W, C), MLP C -> C/rate -> C (biases, ReLU), permute
back, sigmoid (the paper's sigmoid, missing from the widely copied code), ``x * M_c``.
Spatial sub-module: k x k conv C -> C/rate, BN, ReLU, k x k conv C/rate -> C, BN, sigmoid,
``x * M_s``.
"""

from __future__ import annotations

import torch
from torch import nn

from nas.blocks._common import odd_int, positive_int, ratio_rule, reduced
from nas.blocks.registry import BlockSpec, HParam, get_spec, register

__all__ = ["GlobalAttention"]


class GlobalAttention(nn.Module):
    """GAM: channel MLP gate (sigmoid), then a two-conv spatial gate."""

    def __init__(self, channels: int, *, rate: int = 4, kernel_size: int = 7) -> None:
        super().__init__()
        get_spec("gam").validate(channels, rate=rate, kernel_size=kernel_size)
        hidden = reduced(channels, rate)
        pad = (kernel_size - 1) // 2
        self.channel_attention = nn.Sequential(
            nn.Linear(channels, hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, channels),
        )
        self.spatial_attention = nn.Sequential(
            nn.Conv2d(channels, hidden, kernel_size, padding=pad),
            nn.BatchNorm2d(hidden),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, channels, kernel_size, padding=pad),
            nn.BatchNorm2d(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m_c = self.channel_attention(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        x = x * torch.sigmoid(m_c)
        return x * torch.sigmoid(self.spatial_attention(x))


register(
    BlockSpec(
        name="gam",
        cls=GlobalAttention,
        paper="Liu et al., Global Attention Mechanism: Retain Information to Enhance "
        "Channel-Spatial Interactions, arXiv 2021 (arXiv:2112.05561)",
        summary="per-pixel channel MLP -> sigmoid; kxk conv C/rate, BN, ReLU, kxk conv C, BN",
        hparams=(
            HParam(
                "rate",
                int,
                4,
                (2, 4, 8, 16),
                "hidden width is channels // rate",
                positive_int,
            ),
            HParam("kernel_size", int, 7, (3, 5, 7), "spatial conv kernel (odd)", odd_int),
        ),
        rule=ratio_rule("rate"),
    )
)
