"""Squeeze-and-Excitation (``se``).

Jie Hu, Li Shen, Gang Sun: "Squeeze-and-Excitation Networks", CVPR 2018.
https://arxiv.org/abs/1709.01507

Global average pooling, a bottleneck MLP C -> C/r -> C with biases, ReLU between, sigmoid;
the input is rescaled channel-wise: ``x * s``.
"""

from __future__ import annotations

import torch
from torch import nn

from nas.blocks._common import positive_int, ratio_rule, reduced
from nas.blocks.registry import BlockSpec, HParam, get_spec, register

__all__ = ["SqueezeExcite"]


class SqueezeExcite(nn.Module):
    """SE block: ``x * sigmoid(W2 relu(W1 gap(x)))`` with hidden width ``C // reduction``."""

    def __init__(self, channels: int, *, reduction: int = 16) -> None:
        super().__init__()
        get_spec("se").validate(channels, reduction=reduction)
        hidden = reduced(channels, reduction)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Linear(channels, hidden, bias=True)
        self.act = nn.ReLU(inplace=True)
        self.fc2 = nn.Linear(hidden, channels, bias=True)
        self.gate = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c = x.shape[0], x.shape[1]
        s = self.pool(x).reshape(b, c)
        s = self.gate(self.fc2(self.act(self.fc1(s))))
        return x * s.reshape(b, c, 1, 1)


register(
    BlockSpec(
        name="se",
        cls=SqueezeExcite,
        paper="Hu et al., Squeeze-and-Excitation Networks, CVPR 2018 (arXiv:1709.01507)",
        summary="GAP -> FC C/r -> ReLU -> FC C -> sigmoid, x*s",
        hparams=(
            HParam(
                "reduction",
                int,
                16,
                (4, 8, 16, 32),
                "hidden width is channels // reduction",
                positive_int,
            ),
        ),
        rule=ratio_rule("reduction"),
    )
)
