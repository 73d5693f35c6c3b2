"""Selective Kernel convolution (``sk``).

Xiang Li, Wenhai Wang, Xiaolin Hu, Jian Yang: "Selective Kernel Networks", CVPR 2019.
https://arxiv.org/abs/1903.06586

Two branches, a 3x3 grouped conv and a 3x3 grouped conv with dilation 2 (each conv without
bias, BN, ReLU), are summed; GAP; a fc (1x1 conv, no bias) to ``d = max(C // r, L)`` + BN +
ReLU; one fc per branch back to C (no bias); softmax across the branches; the branches are
mixed with those weights. As in the official prototxt (implus/SKNet ``sknet50.prototxt``) no
conv has a bias and every BatchNorm has Caffe momentum 0.95, i.e. PyTorch momentum 0.05. In
SKNet the SK conv replaces the 3x3 conv of a ResNet bottleneck
(``create_conv_block("sk", ...)``); the attention form maps C -> C with stride 1.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from nas.blocks._common import positive_int
from nas.blocks.registry import BlockSpec, HParam, get_spec, register

__all__ = ["SKConv", "SelectiveKernel"]

_BRANCHES = 2
_BN_MOMENTUM = 0.05  # the prototxt's moving-average momentum 0.95


class SKConv(nn.Module):
    """SK convolution: (B, in, H, W) -> (B, out, H/stride, W/stride)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int = 1,
        *,
        groups: int = 32,
        reduction: int = 16,
        min_dim: int = 32,
    ) -> None:
        super().__init__()
        get_spec("sk").validate_conv(
            in_channels, out_channels, stride, groups=groups, reduction=reduction, min_dim=min_dim
        )
        d = max(out_channels // reduction, min_dim)
        self.branches = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(
                    in_channels,
                    out_channels,
                    3,
                    stride=stride,
                    padding=1 + i,
                    dilation=1 + i,
                    groups=groups,
                    bias=False,
                ),
                nn.BatchNorm2d(out_channels, momentum=_BN_MOMENTUM),
                nn.ReLU(inplace=True),
            )
            for i in range(_BRANCHES)
        )
        self.fc = nn.Sequential(
            nn.Conv2d(out_channels, d, 1, bias=False),
            nn.BatchNorm2d(d, momentum=_BN_MOMENTUM),
            nn.ReLU(inplace=True),
        )
        self.fcs = nn.ModuleList(
            nn.Conv2d(d, out_channels, 1, bias=False) for _ in range(_BRANCHES)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = torch.stack([branch(x) for branch in self.branches], dim=1)  # (B, M, C, H, W)
        z = self.fc(feats.sum(dim=1).mean(dim=(2, 3), keepdim=True))
        att = torch.softmax(torch.stack([fc(z) for fc in self.fcs], dim=1), dim=1)
        return (feats * att).sum(dim=1)


class SelectiveKernel(SKConv):
    """The SK convolution as an attention block: C -> C, stride 1."""

    def __init__(
        self, channels: int, *, groups: int = 32, reduction: int = 16, min_dim: int = 32
    ) -> None:
        super().__init__(
            channels, channels, 1, groups=groups, reduction=reduction, min_dim=min_dim
        )


def _rule(channels: int, hp: Mapping[str, Any]) -> tuple[str, Any, str] | None:
    if channels % hp["groups"]:
        return "channels", channels, f"must be divisible by groups={hp['groups']}"
    return None


def _conv_rule(
    in_channels: int, out_channels: int, stride: int, hp: Mapping[str, Any]
) -> tuple[str, Any, str] | None:
    if in_channels % hp["groups"]:
        return "in_channels", in_channels, f"must be divisible by groups={hp['groups']}"
    return None


register(
    BlockSpec(
        name="sk",
        cls=SelectiveKernel,
        conv_cls=SKConv,
        paper="Li et al., Selective Kernel Networks, CVPR 2019 (arXiv:1903.06586)",
        summary="3x3 and 3x3-dilation-2 grouped branches, fc to d=max(C/r,L), softmax select",
        hparams=(
            HParam(
                "groups",
                int,
                32,
                (1, 8, 16, 32),
                "groups of both branch convs; channels must be divisible by it",
                positive_int,
            ),
            HParam(
                "reduction",
                int,
                16,
                (8, 16, 32),
                "fc width d = max(channels // reduction, min_dim)",
                positive_int,
            ),
            HParam("min_dim", int, 32, (16, 32), "L, the floor of the fc width d", positive_int),
        ),
        rule=_rule,
        conv_rule=_conv_rule,
    )
)
