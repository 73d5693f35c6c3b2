"""ResNet with bottleneck blocks (torchvision layout, "ResNet v1.5": stride on the 3x3 conv).

Kaiming He, Xiangyu Zhang, Shaoqing Ren, Jian Sun: "Deep Residual Learning for Image
Recognition", CVPR 2016. https://arxiv.org/abs/1512.03385

Attention sits after the last BN of each bottleneck, before the residual add, as in the SE,
CBAM, ECA and SA papers. With ``placement="conv"`` a block that can replace a convolution
(PSA as in EPSANet, SK as in SKNet) takes the place of the 3x3 conv instead. With attention
``none`` :func:`resnet50` is torchvision's ``resnet50`` (25,557,032 parameters).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from nas.backbones.stage import (
    Site,
    StageSpec,
    attention_module,
    backbone_modules,
    conv_module,
    init_generator,
    supports_conv,
    with_attention,
)

__all__ = [
    "RESNET50_STAGES",
    "Bottleneck",
    "ResNet",
    "build_resnet",
    "resnet50",
    "resnet_attention_sites",
    "resnet_out_channels",
    "resnet_stem_stride",
]

RESNET50_STAGES: tuple[StageSpec, ...] = (
    StageSpec(width=64, depth=3, stride=1, expansion=4),
    StageSpec(width=128, depth=4, stride=2, expansion=4),
    StageSpec(width=256, depth=6, stride=2, expansion=4),
    StageSpec(width=512, depth=3, stride=2, expansion=4),
)
"""ResNet-50: bottleneck widths 64-512, depths 3-4-6-3, output = 4 x width."""


def _replaces_conv(stage: StageSpec) -> bool:
    return (
        stage.placement == "conv" and stage.attention != "none" and supports_conv(stage.attention)
    )


class Bottleneck(nn.Module):
    """1x1 -> kxk (stride) -> 1x1 (x expansion), BN after each, attention, residual add."""

    def __init__(self, in_channels: int, stage: StageSpec, stride: int) -> None:
        super().__init__()
        width, out = stage.width, stage.width * stage.expansion
        self.conv1 = nn.Conv2d(in_channels, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.attention: nn.Module | None
        if _replaces_conv(stage):
            self.conv2 = conv_module(stage.attention, width, width, stride, stage.hparams)
            self.attention = None
        else:
            k = stage.kernel
            self.conv2 = nn.Conv2d(width, width, k, stride=stride, padding=k // 2, bias=False)
            self.attention = attention_module(stage.attention, out, stage.hparams)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out)
        self.relu = nn.ReLU(inplace=True)
        self.downsample: nn.Module | None = None
        if stride != 1 or in_channels != out:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, out, 1, stride=stride, bias=False), nn.BatchNorm2d(out)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.attention is not None:
            out = self.attention(out)
        return self.relu(out + identity)


class ResNet(nn.Module):
    """Stem, one ``layer{i}`` per stage, global average pool, ``fc``.

    ``small_input`` replaces the 7x7/2 stem and its max-pool by a 3x3/1 conv, so 8x8 to
    32x32 inputs keep enough resolution (the CIFAR-style stem).
    """

    def __init__(
        self,
        stages: Sequence[StageSpec],
        *,
        num_classes: int = 1000,
        in_channels: int = 3,
        small_input: bool = False,
        stem_width: int = 64,
    ) -> None:
        super().__init__()
        generator = init_generator()
        self.small_input = small_input
        if small_input:
            self.conv1 = nn.Conv2d(in_channels, stem_width, 3, stride=1, padding=1, bias=False)
        else:
            self.conv1 = nn.Conv2d(in_channels, stem_width, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(stem_width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.Identity() if small_input else nn.MaxPool2d(3, stride=2, padding=1)
        channels = stem_width
        for i, stage in enumerate(stages, start=1):
            blocks = []
            for j in range(stage.depth):
                blocks.append(Bottleneck(channels, stage, stage.stride if j == 0 else 1))
                channels = stage.width * stage.expansion
            self.add_module(f"layer{i}", nn.Sequential(*blocks))
        self.num_stages = len(stages)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels, num_classes)
        for m in backbone_modules(self):
            if any(p.is_meta for p in m.parameters(recurse=False)):
                continue  # nothing to initialise on the meta device (and slow there)
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(
                    m.weight, mode="fan_out", nonlinearity="relu", generator=generator
                )
            elif isinstance(m, nn.BatchNorm2d | nn.GroupNorm) and m.affine:
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear) and not m.weight.is_meta:  # torch's default init
                bound = 1 / math.sqrt(m.in_features)
                nn.init.kaiming_uniform_(m.weight, a=math.sqrt(5), generator=generator)
                nn.init.uniform_(m.bias, -bound, bound, generator=generator)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for i in range(1, self.num_stages + 1):
            x = getattr(self, f"layer{i}")(x)
        return self.fc(torch.flatten(self.avgpool(x), 1))


def build_resnet(
    stages: Sequence[StageSpec],
    *,
    num_classes: int = 1000,
    in_channels: int = 3,
    small_input: bool = False,
    stem_width: int = 64,
    head_width: int | None = None,
) -> ResNet:
    """A bottleneck ResNet from explicit stages (``head_width`` is unused: no head conv)."""
    del head_width
    return ResNet(
        stages,
        num_classes=num_classes,
        in_channels=in_channels,
        small_input=small_input,
        stem_width=stem_width,
    )


def resnet50(
    attention: str | Sequence[str] = "none",
    hparams: dict[str, Any] | Sequence[dict[str, Any] | None] | None = None,
    placement: str | Sequence[str] = "post",
    num_classes: int = 1000,
    small_input: bool = False,
    *,
    in_channels: int = 3,
) -> ResNet:
    """ResNet-50 with ``attention`` (one name, or one per stage) in every bottleneck.

    ``resnet50()`` is torchvision's resnet50; ``resnet50("se")`` is SE-ResNet-50;
    ``resnet50("psa", placement="conv")`` is EPSANet-50 (small).
    """
    stages = with_attention(RESNET50_STAGES, attention, hparams, placement)
    return ResNet(
        stages, num_classes=num_classes, in_channels=in_channels, small_input=small_input
    )


def resnet_out_channels(stage: StageSpec) -> int:
    """Output channels of a bottleneck stage."""
    return stage.width * stage.expansion


def resnet_attention_sites(in_channels: int, stage: StageSpec) -> set[Site]:
    """Where the attention of ``stage`` sits: ``(in, out, stride, is_conv)`` per distinct use."""
    del in_channels
    if _replaces_conv(stage):
        strides = {stage.stride, 1} if stage.depth > 1 else {stage.stride}
        return {(stage.width, stage.width, s, True) for s in strides}
    out = stage.width * stage.expansion
    return {(out, out, 1, False)}


def resnet_stem_stride(small_input: bool) -> int:
    """Downsampling of the stem (conv + max-pool, or none for small inputs)."""
    return 1 if small_input else 4
