"""Concurrent spatial and channel squeeze & excitation (``scse``).

Abhijit Guha Roy, Nassir Navab, Christian Wachinger: "Concurrent Spatial and Channel
'Squeeze & Excitation' in Fully Convolutional Networks", MICCAI 2018.
https://arxiv.org/abs/1803.02579

cSE: GAP, 1x1 convs C -> C/r -> C with biases, ReLU, sigmoid (channel gate).
sSE: a 1x1 conv C -> 1 with bias, sigmoid (spatial gate).
The two recalibrated maps are fused by element-wise max (the paper's best) or by addition.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from nas.blocks._common import positive_int, ratio_rule, reduced
from nas.blocks.registry import BlockSpec, HParam, get_spec, register

__all__ = ["SCSE"]

_FUSIONS = ("max", "add")


def _check_fusion(value: Any) -> str | None:
    return None if value in _FUSIONS else f"must be one of {', '.join(_FUSIONS)}"


class SCSE(nn.Module):
    """scSE: ``fuse(x * cSE(x), x * sSE(x))`` with ``fuse`` = max or add."""

    def __init__(self, channels: int, *, reduction: int = 2, fusion: str = "max") -> None:
        super().__init__()
        get_spec("scse").validate(channels, reduction=reduction, fusion=fusion)
        hidden = reduced(channels, reduction)
        self.fusion = fusion
        self.cse = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(channels, hidden, 1, bias=True),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, channels, 1, bias=True),
            nn.Sigmoid(),
        )
        self.sse = nn.Sequential(nn.Conv2d(channels, 1, 1, bias=True), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x * self.cse(x)
        s = x * self.sse(x)
        if self.fusion == "max":
            return torch.maximum(c, s)
        return c + s


register(
    BlockSpec(
        name="scse",
        cls=SCSE,
        paper="Roy et al., Concurrent Spatial and Channel Squeeze & Excitation in Fully "
        "Convolutional Networks, MICCAI 2018 (arXiv:1803.02579)",
        summary="cSE (GAP -> C/r -> C) and sSE (1x1 conv -> 1) gates, fused by max or add",
        hparams=(
            HParam(
                "reduction",
                int,
                2,
                (2, 4, 8, 16),
                "hidden width of cSE is channels // reduction",
                positive_int,
            ),
            HParam("fusion", str, "max", _FUSIONS, "how cSE and sSE outputs merge", _check_fusion),
        ),
        rule=ratio_rule("reduction"),
    )
)
