"""Coordinate Attention (``ca``).

Qibin Hou, Daquan Zhou, Jiashi Feng: "Coordinate Attention for Efficient Mobile Network
Design", CVPR 2021. https://arxiv.org/abs/2103.02907

Average-pool along W (giving a C x H x 1 map) and along H (C x 1 x W), concatenate along the
spatial axis, a 1x1 conv C -> mip (bias) with ``mip = max(8, C // r)``, BatchNorm, h-swish,
split back, two 1x1 convs mip -> C (bias), sigmoid; ``x * a_h * a_w``.
"""

from __future__ import annotations

import torch
from torch import nn

from nas.blocks._common import HardSwish, positive_int, reduced
from nas.blocks.registry import BlockSpec, HParam, get_spec, register

__all__ = ["CoordinateAttention"]


class CoordinateAttention(nn.Module):
    """Coordinate attention with ``mip = max(8, channels // reduction)``."""

    def __init__(self, channels: int, *, reduction: int = 32) -> None:
        super().__init__()
        get_spec("ca").validate(channels, reduction=reduction)
        mip = reduced(channels, reduction, floor=8)
        self.conv1 = nn.Conv2d(channels, mip, 1, bias=True)
        self.bn1 = nn.BatchNorm2d(mip)
        self.act = HardSwish()
        self.conv_h = nn.Conv2d(mip, channels, 1, bias=True)
        self.conv_w = nn.Conv2d(mip, channels, 1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.shape[2]
        x_h = x.mean(dim=3, keepdim=True)  # (B, C, H, 1)
        x_w = x.mean(dim=2, keepdim=True).transpose(2, 3)  # (B, C, W, 1)
        y = self.act(self.bn1(self.conv1(torch.cat([x_h, x_w], dim=2))))
        y_h, y_w = y[:, :, :h], y[:, :, h:]
        a_h = torch.sigmoid(self.conv_h(y_h))  # (B, C, H, 1)
        a_w = torch.sigmoid(self.conv_w(y_w.transpose(2, 3)))  # (B, C, 1, W)
        return x * a_w * a_h


register(
    BlockSpec(
        name="ca",
        cls=CoordinateAttention,
        paper="Hou et al., Coordinate Attention for Efficient Mobile Network Design, CVPR 2021 "
        "(arXiv:2103.02907)",
        summary="pool along H and W, shared 1x1 conv (mip=max(8,C/r)) + BN + h-swish, x*a_h*a_w",
        hparams=(
            HParam(
                "reduction",
                int,
                32,
                (8, 16, 32),
                "hidden width mip = max(8, channels // reduction)",
                positive_int,
            ),
        ),
    )
)
