"""Pyramid Split Attention (``psa``).

Hu Zhang, Keke Zu, Jian Lu, Yuru Zou, Deyu Meng: "EPSANet: An Efficient Pyramid Squeeze
Attention Block on Convolutional Neural Network", ACCV 2022. https://arxiv.org/abs/2105.14447

S parallel convolutions on the full input (kernels 3, 5, 7, 9 with groups 1, 4, 8, 16 by
default; no bias), each giving C/S channels; one SE-weight module (GAP, 1x1 conv C/S ->
C/(S r) -> C/S with biases, ReLU, sigmoid) shared by all scales; a softmax across the S scales
re-weights each scale's features, which are concatenated back to C channels in the official
code's order, last scale first (kernels 9, 7, 5, 3 by default). In EPSANet the
PSA module replaces the 3x3 conv of a ResNet bottleneck (``create_conv_block("psa", ...)``);
the attention form maps C -> C with stride 1.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from nas.blocks._common import as_tuple, positive_int, tuple_of_positive_ints
from nas.blocks.registry import BlockSpec, HParam, get_spec, register

__all__ = ["PSAConv", "PyramidSplitAttention", "SEWeight"]


class SEWeight(nn.Module):
    """EPSANet's SE-weight module: the sigmoid channel weights of one scale (no rescaling)."""

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        hidden = channels // reduction
        self.fc1 = nn.Conv2d(channels, hidden, 1, bias=True)
        self.act = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(hidden, channels, 1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.mean(dim=(2, 3), keepdim=True)
        return torch.sigmoid(self.fc2(self.act(self.fc1(s))))


class PSAConv(nn.Module):
    """The PSA module as a convolution: (B, in, H, W) -> (B, out, H/stride, W/stride)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int = 1,
        *,
        kernels: Sequence[int] = (3, 5, 7, 9),
        groups: Sequence[int] = (1, 4, 8, 16),
        reduction: int = 16,
    ) -> None:
        super().__init__()
        get_spec("psa").validate_conv(
            in_channels, out_channels, stride, kernels=kernels, groups=groups, reduction=reduction
        )
        kernels, groups = as_tuple(kernels), as_tuple(groups)
        self.scales = len(kernels)
        self.split = out_channels // self.scales
        self.convs = nn.ModuleList(
            nn.Conv2d(
                in_channels,
                self.split,
                k,
                stride=stride,
                padding=k // 2,
                groups=g,
                bias=False,
            )
            for k, g in zip(kernels, groups, strict=True)
        )
        self.se = SEWeight(self.split, reduction)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = [conv(x) for conv in self.convs]
        weights = torch.stack([self.se(f) for f in feats], dim=1)  # (B, S, C/S, 1, 1)
        att = torch.softmax(weights, dim=1)
        out = torch.stack(feats, dim=1) * att  # (B, S, C/S, H, W)
        b, s, c, h, w = out.shape
        # EPSANet's PSAModule builds its output by prepending each scale: last scale first
        return out.flip(1).reshape(b, s * c, h, w)


class PyramidSplitAttention(PSAConv):
    """The PSA module as an attention block: C -> C, stride 1."""

    def __init__(
        self,
        channels: int,
        *,
        kernels: Sequence[int] = (3, 5, 7, 9),
        groups: Sequence[int] = (1, 4, 8, 16),
        reduction: int = 16,
    ) -> None:
        super().__init__(
            channels, channels, 1, kernels=kernels, groups=groups, reduction=reduction
        )


def _rule(channels: int, hp: Mapping[str, Any]) -> tuple[str, Any, str] | None:
    kernels, groups, reduction = hp["kernels"], hp["groups"], hp["reduction"]
    if len(groups) != len(kernels):
        return "groups", groups, f"must have one entry per kernel ({len(kernels)})"
    scales = len(kernels)
    if channels % scales:
        return "channels", channels, f"must be divisible by len(kernels)={scales}"
    split = channels // scales
    for g in groups:
        if split % g:
            return "groups", groups, f"must divide channels/len(kernels)={split} (group {g})"
    if split // reduction < 1:
        return (
            "reduction",
            reduction,
            f"must be at most channels/len(kernels)={split} (SE hidden width would be 0)",
        )
    return None


def _conv_rule(
    in_channels: int, out_channels: int, stride: int, hp: Mapping[str, Any]
) -> tuple[str, Any, str] | None:
    for g in hp["groups"]:
        if in_channels % g:
            return "in_channels", in_channels, f"must be divisible by every group (group {g})"
    return None


register(
    BlockSpec(
        name="psa",
        cls=PyramidSplitAttention,
        conv_cls=PSAConv,
        paper="Zhang et al., EPSANet: An Efficient Pyramid Squeeze Attention Block on "
        "Convolutional Neural Network, ACCV 2022 (arXiv:2105.14447)",
        summary="S grouped convs (k 3/5/7/9) -> shared SE weights -> softmax over scales",
        hparams=(
            HParam(
                "kernels",
                tuple,
                (3, 5, 7, 9),
                ((3, 5, 7, 9), (3, 5, 7), (3, 5)),
                "kernel size of each scale (odd)",
                tuple_of_positive_ints(odd=True),
            ),
            HParam(
                "groups",
                tuple,
                (1, 4, 8, 16),
                ((1, 4, 8, 16), (1, 2, 4, 8), (1, 4, 8), (1, 4), (1, 1, 1, 1), (1, 1, 1), (1, 1)),
                "conv groups of each scale; one per kernel, each divides channels/len(kernels)",
                tuple_of_positive_ints(),
            ),
            HParam(
                "reduction",
                int,
                16,
                (4, 8, 16),
                "SE-weight hidden width is channels/len(kernels) // reduction",
                positive_int,
            ),
        ),
        rule=_rule,
        conv_rule=_conv_rule,
    )
)
