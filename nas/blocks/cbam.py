"""Convolutional Block Attention Module (``cbam``).

Sanghyun Woo, Jongchan Park, Joon-Young Lee, In So Kweon: "CBAM: Convolutional Block
Attention Module", ECCV 2018. https://arxiv.org/abs/1807.06521

Channel attention: one MLP (C -> C/r -> C, biases, ReLU) shared by the average- and the
max-pooled descriptors, outputs summed, sigmoid. Then spatial attention on the refined map:
[max, mean] over channels, a k x k conv 2 -> 1 without bias, BatchNorm, sigmoid.
"""

from __future__ import annotations

import torch
from torch import nn

from nas.blocks._common import odd_int, positive_int, ratio_rule, reduced
from nas.blocks.registry import BlockSpec, HParam, get_spec, register

__all__ = ["CBAM", "ChannelGate", "SpatialGate"]


class ChannelGate(nn.Module):
    """CBAM's channel gate: shared MLP on avg- and max-pooled vectors, summed, sigmoid."""

    def __init__(self, channels: int, reduction: int) -> None:
        super().__init__()
        hidden = reduced(channels, reduction)
        self.mlp = nn.Sequential(
            nn.Linear(channels, hidden, bias=True),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, channels, bias=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c = x.shape[0], x.shape[1]
        flat = x.reshape(b, c, -1)
        att = self.mlp(flat.mean(dim=2)) + self.mlp(flat.amax(dim=2))
        return x * torch.sigmoid(att).reshape(b, c, 1, 1)


class SpatialGate(nn.Module):
    """CBAM's spatial gate: [max, mean] over channels, kxk conv (no bias), BN, sigmoid."""

    def __init__(self, kernel_size: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=(kernel_size - 1) // 2, bias=False)
        self.bn = nn.BatchNorm2d(1, eps=1e-5, momentum=0.01)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = torch.cat([x.amax(dim=1, keepdim=True), x.mean(dim=1, keepdim=True)], dim=1)
        return x * torch.sigmoid(self.bn(self.conv(pooled)))


class CBAM(nn.Module):
    """CBAM: channel gate followed by spatial gate (sequential, channel first)."""

    def __init__(self, channels: int, *, reduction: int = 16, kernel_size: int = 7) -> None:
        super().__init__()
        get_spec("cbam").validate(channels, reduction=reduction, kernel_size=kernel_size)
        self.channel = ChannelGate(channels, reduction)
        self.spatial = SpatialGate(kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.spatial(self.channel(x))


register(
    BlockSpec(
        name="cbam",
        cls=CBAM,
        paper="Woo et al., CBAM: Convolutional Block Attention Module, ECCV 2018 "
        "(arXiv:1807.06521)",
        summary="shared MLP on avg+max pooled -> sigmoid; then [max,mean] -> kxk conv -> BN",
        hparams=(
            HParam(
                "reduction",
                int,
                16,
                (4, 8, 16, 32),
                "hidden width of the shared MLP is channels // reduction",
                positive_int,
            ),
            HParam("kernel_size", int, 7, (3, 5, 7), "spatial conv kernel (odd)", odd_int),
        ),
        rule=ratio_rule("reduction"),
    )
)
