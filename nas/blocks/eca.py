"""Efficient Channel Attention (``eca``).

Qilong Wang, Banggu Wu, Pengfei Zhu, Peihua Li, Wangmeng Zuo, Qinghua Hu: "ECA-Net: Efficient
Channel Attention for Deep Convolutional Neural Networks", CVPR 2020.
https://arxiv.org/abs/1910.03151

Global average pooling, a 1-D convolution (1 -> 1 channel, kernel k, no bias) across the
channel axis, sigmoid, ``x * s``. The paper picks k adaptively from C:
``k = |log2(C)/2 + 1/2|`` rounded to the next odd number; ``k_size=0`` selects that rule.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from nas.blocks._common import eca_kernel_size, is_int
from nas.blocks.registry import BlockSpec, HParam, get_spec, register

__all__ = ["EfficientChannelAttention"]


def _check_k(value: Any) -> str | None:
    if not is_int(value) or value < 0 or (value > 0 and value % 2 == 0):
        return "must be 0 (adaptive) or a positive odd integer"
    return None


class EfficientChannelAttention(nn.Module):
    """ECA: ``x * sigmoid(conv1d_k(gap(x)))``; ``k_size=0`` uses the adaptive kernel."""

    def __init__(self, channels: int, *, k_size: int = 0) -> None:
        super().__init__()
        get_spec("eca").validate(channels, k_size=k_size)
        self.k_size = k_size if k_size > 0 else eca_kernel_size(channels)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.conv = nn.Conv1d(1, 1, self.k_size, padding=(self.k_size - 1) // 2, bias=False)
        self.gate = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c = x.shape[0], x.shape[1]
        s = self.pool(x).reshape(b, 1, c)
        s = self.gate(self.conv(s))
        return x * s.reshape(b, c, 1, 1)


register(
    BlockSpec(
        name="eca",
        cls=EfficientChannelAttention,
        paper="Wang et al., ECA-Net: Efficient Channel Attention, CVPR 2020 (arXiv:1910.03151)",
        summary="GAP -> Conv1d(k, no bias) over channels -> sigmoid, x*s",
        hparams=(
            HParam(
                "k_size",
                int,
                0,
                (0, 3, 5, 7, 9),
                "1-D kernel over channels; 0 = adaptive |log2(C)/2 + 1/2| made odd",
                _check_k,
            ),
        ),
    )
)
