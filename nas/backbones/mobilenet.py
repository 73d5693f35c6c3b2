"""MobileNetV2 inverted residuals (torchvision layout) with attention after the depthwise conv.

Mark Sandler, Andrew Howard, Menglong Zhu, Andrey Zhmoginov, Liang-Chieh Chen: "MobileNetV2:
Inverted Residuals and Linear Bottlenecks", CVPR 2018. https://arxiv.org/abs/1801.04381

The attention placement is the Coordinate Attention paper's (Hou et al., CVPR 2021): after
the depthwise conv's BN + ReLU6, on the expanded channels, before the linear projection;
blocks with expansion 1 carry no attention. With attention ``none`` :func:`mobilenet_v2` is
torchvision's ``mobilenet_v2`` (3,504,872 parameters at width 1.0).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import torch
from torch import nn

from nas.backbones.stage import (
    Site,
    StageSpec,
    attention_module,
    backbone_modules,
    init_generator,
    with_attention,
)

__all__ = [
    "MOBILENET_V2_STAGES",
    "InvertedResidual",
    "MobileNetV2",
    "build_mobilenet_v2",
    "make_divisible",
    "mobilenet_attention_sites",
    "mobilenet_out_channels",
    "mobilenet_stem_stride",
    "mobilenet_v2",
]

MOBILENET_V2_STAGES: tuple[StageSpec, ...] = (
    StageSpec(width=16, depth=1, stride=1, expansion=1),
    StageSpec(width=24, depth=2, stride=2, expansion=6),
    StageSpec(width=32, depth=3, stride=2, expansion=6),
    StageSpec(width=64, depth=4, stride=2, expansion=6),
    StageSpec(width=96, depth=3, stride=1, expansion=6),
    StageSpec(width=160, depth=3, stride=2, expansion=6),
    StageSpec(width=320, depth=1, stride=1, expansion=6),
)
"""MobileNetV2's (t, c, n, s) table: expansion, width, depth, stride of each stage."""


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round a channel count to a multiple of ``divisor``, never below 90% of ``value``."""
    new = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if new < 0.9 * value:
        new += divisor
    return new


def _conv_bn(
    in_channels: int, out_channels: int, kernel: int, stride: int = 1, groups: int = 1
) -> nn.Sequential:
    """Conv (no bias) + BN + ReLU6, nested as torchvision's ``Conv2dNormActivation``."""
    return nn.Sequential(
        nn.Conv2d(
            in_channels, out_channels, kernel, stride, kernel // 2, groups=groups, bias=False
        ),
        nn.BatchNorm2d(out_channels),
        nn.ReLU6(inplace=True),
    )


class InvertedResidual(nn.Module):
    """1x1 expand, kxk depthwise (stride), attention, 1x1 linear projection; residual when
    the stride is 1 and the channels match."""

    def __init__(self, in_channels: int, stage: StageSpec, stride: int) -> None:
        super().__init__()
        out = stage.width
        hidden = round(in_channels * stage.expansion)
        self.use_res_connect = stride == 1 and in_channels == out
        layers: list[nn.Module] = []
        if stage.expansion != 1:
            layers.append(_conv_bn(in_channels, hidden, 1))
        layers.append(_conv_bn(hidden, hidden, stage.kernel, stride, groups=hidden))
        if stage.expansion != 1:
            attention = attention_module(stage.attention, hidden, stage.hparams)
            if attention is not None:
                layers.append(attention)
        layers += [nn.Conv2d(hidden, out, 1, bias=False), nn.BatchNorm2d(out)]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


class MobileNetV2(nn.Module):
    """``features`` (stem, inverted residuals, 1x1 head conv), then dropout + linear.

    ``small_input`` makes the stem stride 1 (for 8x8 to 32x32 inputs); the stages' strides
    are whatever ``stages`` says.
    """

    def __init__(
        self,
        stages: Sequence[StageSpec],
        *,
        num_classes: int = 1000,
        in_channels: int = 3,
        small_input: bool = False,
        stem_width: int = 32,
        head_width: int = 1280,
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        generator = init_generator()
        features: list[nn.Module] = [_conv_bn(in_channels, stem_width, 3, 1 if small_input else 2)]
        channels = stem_width
        for stage in stages:
            for j in range(stage.depth):
                features.append(InvertedResidual(channels, stage, stage.stride if j == 0 else 1))
                channels = stage.width
        features.append(_conv_bn(channels, head_width, 1))
        self.features = nn.Sequential(*features)
        self.classifier = nn.Sequential(nn.Dropout(p=dropout), nn.Linear(head_width, num_classes))
        for m in backbone_modules(self):
            if any(p.is_meta for p in m.parameters(recurse=False)):
                continue  # nothing to initialise on the meta device (and slow there)
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", generator=generator)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d | nn.GroupNorm) and m.affine:
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01, generator=generator)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = nn.functional.adaptive_avg_pool2d(self.features(x), 1)
        return self.classifier(torch.flatten(x, 1))


def build_mobilenet_v2(
    stages: Sequence[StageSpec],
    *,
    num_classes: int = 1000,
    in_channels: int = 3,
    small_input: bool = False,
    stem_width: int = 32,
    head_width: int = 1280,
) -> MobileNetV2:
    """A MobileNetV2 from explicit stages (absolute channel counts)."""
    return MobileNetV2(
        stages,
        num_classes=num_classes,
        in_channels=in_channels,
        small_input=small_input,
        stem_width=stem_width,
        head_width=head_width,
    )


def mobilenet_v2(
    attention: str | Sequence[str] = "none",
    hparams: dict[str, Any] | Sequence[dict[str, Any] | None] | None = None,
    width_mult: float = 1.0,
    num_classes: int = 1000,
    small_input: bool = False,
    *,
    in_channels: int = 3,
) -> MobileNetV2:
    """MobileNetV2 with ``attention`` (one name, or one per each of its 7 stages).

    ``mobilenet_v2("ca")`` is MobileNetV2 + Coordinate Attention (3.95M parameters). The
    first stage has expansion 1 and so no attention, whatever it is given. ``small_input``
    also makes the second stage's stride 1 (CIFAR-style: 32x32 ends at 4x4).
    """
    stages = [replace(s, width=make_divisible(s.width * width_mult)) for s in MOBILENET_V2_STAGES]
    if small_input:
        stages[1] = replace(stages[1], stride=1)
    stages = with_attention(stages, attention, hparams)
    return MobileNetV2(
        stages,
        num_classes=num_classes,
        in_channels=in_channels,
        small_input=small_input,
        stem_width=make_divisible(32 * width_mult),
        head_width=make_divisible(1280 * max(1.0, width_mult)),
    )


def mobilenet_out_channels(stage: StageSpec) -> int:
    """Output channels of an inverted-residual stage."""
    return stage.width


def mobilenet_attention_sites(in_channels: int, stage: StageSpec) -> set[Site]:
    """Where the attention of ``stage`` sits: ``(C, C, 1, False)`` for every expanded width C
    its blocks have (none for expansion 1)."""
    if stage.expansion == 1:
        return set()
    counts = {round(in_channels * stage.expansion)}
    if stage.depth > 1:
        counts.add(round(stage.width * stage.expansion))
    return {(c, c, 1, False) for c in counts}


def mobilenet_stem_stride(small_input: bool) -> int:
    """Downsampling of the stem conv."""
    return 1 if small_input else 2
