"""Shuffle Attention (``sa``).

Qing-Long Zhang, Yu-Bin Yang: "SA-Net: Shuffle Attention for Deep Convolutional Neural
Networks", ICASSP 2021. https://arxiv.org/abs/2102.00240

Channels are split into ``groups`` sub-features, each halved: the channel half is gated by
``sigmoid(cweight * GAP + cbias)``, the spatial half by ``sigmoid(sweight * GN(x) + sbias)``
(GroupNorm with one channel per group); the halves are concatenated and the result is
channel-shuffled with 2 groups. Initialisation: cweight = sweight = 0, cbias = sbias = 1.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from nas.blocks._common import channel_shuffle, positive_int
from nas.blocks.registry import BlockSpec, HParam, get_spec, register

__all__ = ["ShuffleAttention"]


class ShuffleAttention(nn.Module):
    """SA layer; needs ``channels % (2 * groups) == 0``."""

    def __init__(self, channels: int, *, groups: int = 64) -> None:
        super().__init__()
        get_spec("sa").validate(channels, groups=groups)
        self.groups = groups
        per = channels // (2 * groups)
        self.cweight = nn.Parameter(torch.zeros(1, per, 1, 1))
        self.cbias = nn.Parameter(torch.ones(1, per, 1, 1))
        self.sweight = nn.Parameter(torch.zeros(1, per, 1, 1))
        self.sbias = nn.Parameter(torch.ones(1, per, 1, 1))
        self.gn = nn.GroupNorm(per, per)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        x = x.reshape(b * self.groups, c // self.groups, h, w)
        x_0, x_1 = x.chunk(2, dim=1)
        xn = x_0.mean(dim=(2, 3), keepdim=True)
        xn = x_0 * torch.sigmoid(self.cweight * xn + self.cbias)
        xs = x_1 * torch.sigmoid(self.sweight * self.gn(x_1) + self.sbias)
        out = torch.cat([xn, xs], dim=1).reshape(b, c, h, w)
        return channel_shuffle(out, 2)


def _rule(channels: int, hp: Mapping[str, Any]) -> tuple[str, Any, str] | None:
    groups = hp["groups"]
    if channels % (2 * groups):
        return "channels", channels, f"must be divisible by 2*groups={2 * groups}"
    return None


register(
    BlockSpec(
        name="sa",
        cls=ShuffleAttention,
        paper="Zhang & Yang, SA-Net: Shuffle Attention for Deep Convolutional Neural Networks, "
        "ICASSP 2021 (arXiv:2102.00240)",
        summary="grouped channel (GAP) + spatial (GroupNorm) gates, channel shuffle",
        hparams=(
            HParam(
                "groups",
                int,
                64,
                (4, 8, 16, 32, 64),
                "sub-feature groups; channels must be divisible by 2*groups",
                positive_int,
            ),
        ),
        rule=_rule,
    )
)
