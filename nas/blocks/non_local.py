"""Non-local block (``nonlocal``), embedded Gaussian form.

Xiaolong Wang, Ross Girshick, Abhinav Gupta, Kaiming He: "Non-local Neural Networks",
CVPR 2018. https://arxiv.org/abs/1711.07971

theta, phi, g: 1x1 convs C -> C/r (bias; ``max(1, C // r)`` as in the reference code);
``f = softmax(theta^T phi / sqrt(C/r))`` (the scaled embedded Gaussian of the official
video-nonlocal-net); ``y = f g``; ``z = x + BN(W y)`` with W a 1x1 conv C/r -> C and the BN
weight (and bias) initialised to 0, so the block starts as the identity. With ``subsample``
the input is max-pooled once (2x2, stride 2) and phi and g project the pooled map, as in the
official ``nonlocal_helper.py`` (max-pooling does not commute with the projections). The pool
uses ``ceil_mode`` so that maps with an odd or a 1-pixel side work: on even sizes it is
exactly the reference pool, on odd sizes it also keeps the last row/column instead of
dropping it.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from nas.blocks._common import positive_int, reduced
from nas.blocks.registry import BlockSpec, HParam, get_spec, register

__all__ = ["NonLocal"]


def _check_bool(value: Any) -> str | None:
    return None if isinstance(value, bool) else "must be true or false"


class NonLocal(nn.Module):
    """Embedded-Gaussian non-local block with a zero-initialised BN on the output."""

    def __init__(self, channels: int, *, reduction: int = 2, subsample: bool = True) -> None:
        super().__init__()
        get_spec("nonlocal").validate(channels, reduction=reduction, subsample=subsample)
        self.inter = reduced(channels, reduction, floor=1)
        self.scale = self.inter**-0.5
        self.theta = nn.Conv2d(channels, self.inter, 1)
        self.phi = nn.Conv2d(channels, self.inter, 1)
        self.g = nn.Conv2d(channels, self.inter, 1)
        self.pool = nn.MaxPool2d(2, stride=2, ceil_mode=True) if subsample else nn.Identity()
        self.w = nn.Conv2d(self.inter, channels, 1)
        self.bn = nn.BatchNorm2d(channels)
        nn.init.zeros_(self.bn.weight)
        nn.init.zeros_(self.bn.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        pooled = self.pool(x)
        theta = self.theta(x).reshape(b, self.inter, -1).transpose(1, 2)  # (B, N, C')
        phi = self.phi(pooled).reshape(b, self.inter, -1)  # (B, C', M)
        g = self.g(pooled).reshape(b, self.inter, -1)  # (B, C', M)
        f = torch.softmax(torch.bmm(theta, phi) * self.scale, dim=-1)  # (B, N, M)
        y = torch.bmm(g, f.transpose(1, 2)).reshape(b, self.inter, h, w)  # g f^T, as official
        return x + self.bn(self.w(y))


register(
    BlockSpec(
        name="nonlocal",
        cls=NonLocal,
        paper="Wang et al., Non-local Neural Networks, CVPR 2018 (arXiv:1711.07971)",
        summary="embedded Gaussian self-attention over all positions, z = x + BN(W y), BN=0",
        hparams=(
            HParam(
                "reduction",
                int,
                2,
                (2, 4, 8),
                "embedding width is max(1, channels // reduction)",
                positive_int,
            ),
            HParam(
                "subsample",
                bool,
                True,
                (True, False),
                "2x2 max-pool of the input before the phi and g projections",
                _check_bool,
            ),
        ),
    )
)
