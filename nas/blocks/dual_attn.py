"""Dual attention (``da``): DANet's position and channel attention modules.

Jun Fu, Jing Liu, Haijie Tian, Yong Li, Yongjun Bao, Zhiwei Fang, Hanqing Lu: "Dual Attention
Network for Scene Segmentation", CVPR 2019. https://arxiv.org/abs/1809.02983

PAM: Q, K 1x1 convs C -> C/r (r = 8), V 1x1 conv C -> C (biases), softmax(Q^T K) over all
positions, ``gamma_p * V A^T``. CAM: no convs; energy = X X^T, attention =
softmax(rowmax(energy) - energy), ``gamma_c * A X``. Both gammas start at 0. DANet sums the
two modules' outputs; here they share one residual, ``x + gamma_p * PAM + gamma_c * CAM``, so
the block starts as the identity like the other residual blocks.
"""

from __future__ import annotations

import torch
from torch import nn

from nas.blocks._common import positive_int, ratio_rule, reduced
from nas.blocks.registry import BlockSpec, HParam, get_spec, register

__all__ = ["ChannelAttentionModule", "DualAttention", "PositionAttentionModule"]


class PositionAttentionModule(nn.Module):
    """DANet's PAM without its residual: ``gamma * V softmax(Q^T K)^T``."""

    def __init__(self, channels: int, reduction: int) -> None:
        super().__init__()
        inner = reduced(channels, reduction)
        self.query = nn.Conv2d(channels, inner, 1)
        self.key = nn.Conv2d(channels, inner, 1)
        self.value = nn.Conv2d(channels, channels, 1)
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        q = self.query(x).reshape(b, -1, h * w).transpose(1, 2)  # (B, N, C')
        k = self.key(x).reshape(b, -1, h * w)  # (B, C', N)
        att = torch.softmax(torch.bmm(q, k), dim=-1)  # (B, N, N)
        v = self.value(x).reshape(b, c, h * w)
        return self.gamma * torch.bmm(v, att.transpose(1, 2)).reshape(b, c, h, w)


class ChannelAttentionModule(nn.Module):
    """DANet's CAM without its residual: ``gamma * softmax(rowmax(E) - E) X``, E = X X^T."""

    def __init__(self) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        # X X^T sums H*W products: at least float32 even under autocast so that it cannot
        # overflow to inf (inf - inf would turn rowmax - energy into NaN); float64 stays float64
        with torch.autocast(x.device.type, enabled=False):
            flat = x.reshape(b, c, h * w)
            flat = flat.to(torch.promote_types(flat.dtype, torch.float32))
            energy = torch.bmm(flat, flat.transpose(1, 2))  # (B, C, C)
            energy = energy.amax(dim=-1, keepdim=True) - energy
            att = torch.softmax(energy, dim=-1)
            out = torch.bmm(att, flat).reshape(b, c, h, w).to(x.dtype)
        return self.gamma * out


class DualAttention(nn.Module):
    """PAM and CAM in parallel on a shared residual: ``x + PAM(x) + CAM(x)``."""

    def __init__(self, channels: int, *, reduction: int = 8) -> None:
        super().__init__()
        get_spec("da").validate(channels, reduction=reduction)
        self.pam = PositionAttentionModule(channels, reduction)
        self.cam = ChannelAttentionModule()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.pam(x) + self.cam(x)


register(
    BlockSpec(
        name="da",
        cls=DualAttention,
        paper="Fu et al., Dual Attention Network for Scene Segmentation, CVPR 2019 "
        "(arXiv:1809.02983)",
        summary="position attention (Q,K C/8) + channel attention (rowmax - energy), gammas=0",
        hparams=(
            HParam(
                "reduction",
                int,
                8,
                (4, 8, 16),
                "PAM query/key width is channels // reduction",
                positive_int,
            ),
        ),
        rule=ratio_rule("reduction"),
    )
)
