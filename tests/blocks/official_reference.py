"""Reference modules rebuilt from the authors' public code, for the equivalence tests.

Each class follows the forward pass of the official implementation named in its docstring:
its layers, their parameter layout and the order of operations (pooling before or after a
projection, the order in which outputs are concatenated). They are written for the tests in
``test_blocks_official.py`` and share no code with ``nas.blocks``. BatchNorm settings are the
official ones in PyTorch's convention: Caffe's ``momentum`` m is PyTorch's ``1 - m``.
GAM has no official code; :class:`GAMEquations` writes out the paper's equations instead.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class SEModule(nn.Module):
    """SE (Cadene/pretrained-models.pytorch ``pretrainedmodels/models/senet.py`` SEModule;
    hujie-frank/SENet ``models/SE-ResNet-50.prototxt``: 1x1 convs ``*_1x1_down`` and
    ``*_1x1_up`` with bias after global average pooling)."""

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(channels, channels // reduction, 1)
        self.fc2 = nn.Conv2d(channels // reduction, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = F.adaptive_avg_pool2d(x, 1)
        return x * torch.sigmoid(self.fc2(F.relu(self.fc1(s))))


def eca_paper_kernel(channels: int) -> int:
    """ECA's adaptive kernel, from the paper: ``t = |log2(C)/2 + 1/2|``, odd ``t`` or ``t+1``."""
    t = int(abs(math.log2(channels) / 2 + 0.5))
    return t if t % 2 else t + 1


class ECALayer(nn.Module):
    """ECA (BangguWu/ECANet ``models/eca_module.py`` eca_layer): Conv1d over the channel axis
    of the pooled (B, 1, C) sequence."""

    def __init__(self, k_size: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(1, 1, k_size, padding=(k_size - 1) // 2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.adaptive_avg_pool2d(x, 1).squeeze(-1).transpose(-1, -2)  # (B, 1, C)
        y = self.conv(y).transpose(-1, -2).unsqueeze(-1)  # (B, C, 1, 1)
        return x * torch.sigmoid(y)


class CBAMChannelGate(nn.Module):
    """CBAM's ChannelGate (Jongchan/attention-module ``MODELS/cbam.py``): one MLP
    (Flatten, Linear, ReLU, Linear) on the avg- and the max-pooled maps, summed, sigmoid."""

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        hidden = channels // reduction
        self.mlp = nn.Sequential(
            nn.Flatten(), nn.Linear(channels, hidden), nn.ReLU(), nn.Linear(hidden, channels)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = (x.shape[2], x.shape[3])
        att = self.mlp(F.avg_pool2d(x, size, stride=size))
        att = att + self.mlp(F.max_pool2d(x, size, stride=size))
        return x * torch.sigmoid(att)[:, :, None, None]


class CBAMBasicConv(nn.Module):
    """CBAM's BasicConv as the spatial gate uses it: conv without bias, BN (eps 1e-5,
    momentum 0.01), no ReLU."""

    def __init__(self, kernel_size: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=(kernel_size - 1) // 2, bias=False)
        self.bn = nn.BatchNorm2d(1, eps=1e-5, momentum=0.01)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(x))


class CBAMSpatialGate(nn.Module):
    """CBAM's SpatialGate: ChannelPool ([max, mean] over channels), BasicConv, sigmoid."""

    def __init__(self, kernel_size: int = 7) -> None:
        super().__init__()
        self.spatial = CBAMBasicConv(kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        compress = torch.cat([x.max(dim=1)[0].unsqueeze(1), x.mean(dim=1).unsqueeze(1)], dim=1)
        return x * torch.sigmoid(self.spatial(compress))


class CBAMModule(nn.Module):
    """CBAM: ChannelGate then SpatialGate (the official attributes are ``ChannelGate`` and
    ``SpatialGate``; snake case here)."""

    def __init__(self, channels: int, reduction: int = 16, kernel_size: int = 7) -> None:
        super().__init__()
        self.channel_gate = CBAMChannelGate(channels, reduction)
        self.spatial_gate = CBAMSpatialGate(kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.spatial_gate(self.channel_gate(x))


class ChannelSELayer(nn.Module):
    """cSE (ai-med/squeeze_and_excitation ``squeeze_and_excitation/squeeze_and_excitation.py``
    ChannelSELayer): mean over H*W, Linear + ReLU, Linear + sigmoid, multiply."""

    def __init__(self, channels: int, reduction: int = 2) -> None:
        super().__init__()
        self.fc1 = nn.Linear(channels, channels // reduction)
        self.fc2 = nn.Linear(channels // reduction, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c = x.shape[:2]
        squeeze = x.reshape(b, c, -1).mean(dim=2)
        gate = torch.sigmoid(self.fc2(F.relu(self.fc1(squeeze))))
        return x * gate.reshape(b, c, 1, 1)


class SpatialSELayer(nn.Module):
    """sSE (same file, SpatialSELayer): 1x1 conv C -> 1 with bias, sigmoid, multiply."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(self.conv(x))


class ChannelSpatialSELayer(nn.Module):
    """scSE (same file, ChannelSpatialSELayer): element-wise max of cSE(x) and sSE(x)."""

    def __init__(self, channels: int, reduction: int = 2) -> None:
        super().__init__()
        self.cSE = ChannelSELayer(channels, reduction)
        self.sSE = SpatialSELayer(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.max(self.cSE(x), self.sSE(x))


class CoordAtt(nn.Module):
    """Coordinate attention (houqb/CoordAttention ``coordatt.py`` CoordAtt, inp == oup)."""

    def __init__(self, channels: int, reduction: int = 32) -> None:
        super().__init__()
        mip = max(8, channels // reduction)
        self.conv1 = nn.Conv2d(channels, mip, 1)
        self.bn1 = nn.BatchNorm2d(mip)
        self.conv_h = nn.Conv2d(mip, channels, 1)
        self.conv_w = nn.Conv2d(mip, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[2:]
        x_h = F.adaptive_avg_pool2d(x, (h, 1))
        x_w = F.adaptive_avg_pool2d(x, (1, w)).permute(0, 1, 3, 2)
        y = self.bn1(self.conv1(torch.cat([x_h, x_w], dim=2)))
        y = y * F.relu6(y + 3) / 6  # h_swish
        y_h, y_w = torch.split(y, [h, w], dim=2)
        a_h = torch.sigmoid(self.conv_h(y_h))
        a_w = torch.sigmoid(self.conv_w(y_w.permute(0, 1, 3, 2)))
        return x * a_w * a_h


class SALayer(nn.Module):
    """Shuffle attention (wofmanaf/SA-Net ``models/sa_resnet.py`` sa_layer)."""

    def __init__(self, channels: int, groups: int = 64) -> None:
        super().__init__()
        self.groups = groups
        per = channels // (2 * groups)
        self.cweight = nn.Parameter(torch.zeros(1, per, 1, 1))
        self.cbias = nn.Parameter(torch.ones(1, per, 1, 1))
        self.sweight = nn.Parameter(torch.zeros(1, per, 1, 1))
        self.sbias = nn.Parameter(torch.ones(1, per, 1, 1))
        self.gn = nn.GroupNorm(per, per)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        x = x.reshape(b * self.groups, -1, h, w)
        x_0, x_1 = x.chunk(2, dim=1)
        xn = x_0 * torch.sigmoid(self.cweight * F.adaptive_avg_pool2d(x_0, 1) + self.cbias)
        xs = x_1 * torch.sigmoid(self.sweight * self.gn(x_1) + self.sbias)
        out = torch.cat([xn, xs], dim=1).reshape(b, -1, h, w)
        # channel_shuffle(out, 2)
        return out.reshape(b, 2, -1, h, w).permute(0, 2, 1, 3, 4).reshape(b, -1, h, w)


class SEWeightModule(nn.Module):
    """EPSANet's SE weight (murufeng/EPSANet ``models/SE_weight_module.py``)."""

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(channels, channels // reduction, 1)
        self.fc2 = nn.Conv2d(channels // reduction, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.fc2(F.relu(self.fc1(F.adaptive_avg_pool2d(x, 1)))))


class PSAModule(nn.Module):
    """PSA (murufeng/EPSANet ``models/epsanet.py`` PSAModule): four convs, one shared SE
    weight, softmax over the scales; the output loop prepends each scale, so the result is
    ordered scale 4, 3, 2, 1."""

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        kernels: tuple[int, ...] = (3, 5, 7, 9),
        groups: tuple[int, ...] = (1, 4, 8, 16),
    ) -> None:
        super().__init__()
        self.split = planes // 4

        def conv(k: int, g: int) -> nn.Conv2d:
            return nn.Conv2d(inplanes, self.split, k, stride, k // 2, groups=g, bias=False)

        self.conv_1 = conv(kernels[0], groups[0])
        self.conv_2 = conv(kernels[1], groups[1])
        self.conv_3 = conv(kernels[2], groups[2])
        self.conv_4 = conv(kernels[3], groups[3])
        self.se = SEWeightModule(self.split)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        xs = [self.conv_1(x), self.conv_2(x), self.conv_3(x), self.conv_4(x)]
        feats = torch.cat(xs, dim=1).reshape(b, 4, self.split, *xs[0].shape[2:])
        weights = torch.cat([self.se(t) for t in xs], dim=1).reshape(b, 4, self.split, 1, 1)
        weighted = feats * torch.softmax(weights, dim=1)
        out = weighted[:, 0]
        for i in range(1, 4):
            out = torch.cat([weighted[:, i], out], dim=1)
        return out


class SKUnit(nn.Module):
    """SK convolution (implus/SKNet ``models/sknet50.prototxt``, layers ``conv*/3x3g32``,
    ``conv*/3x3g32d2``, ``B_global_pool``, ``B_fc1`` (no bias) + BN + ReLU, ``B_fc2`` (no
    bias, d -> 2C), Reshape (N, 2, C, 1), Softmax over axis 1, Scale + Axpy). All BNs have
    Caffe momentum 0.95, i.e. PyTorch momentum 0.05."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int = 1,
        groups: int = 32,
        reduction: int = 16,
        min_dim: int = 32,
    ) -> None:
        super().__init__()
        d = max(out_channels // reduction, min_dim)
        self.conv_3x3 = nn.Conv2d(
            in_channels, out_channels, 3, stride, 1, groups=groups, bias=False
        )
        self.bn_3x3 = nn.BatchNorm2d(out_channels, momentum=0.05)
        self.conv_3x3d2 = nn.Conv2d(
            in_channels, out_channels, 3, stride, 2, dilation=2, groups=groups, bias=False
        )
        self.bn_3x3d2 = nn.BatchNorm2d(out_channels, momentum=0.05)
        self.fc1 = nn.Conv2d(out_channels, d, 1, bias=False)
        self.fc1_bn = nn.BatchNorm2d(d, momentum=0.05)
        self.fc2 = nn.Conv2d(d, 2 * out_channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        u0 = F.relu(self.bn_3x3(self.conv_3x3(x)))
        u1 = F.relu(self.bn_3x3d2(self.conv_3x3d2(x)))
        s = F.adaptive_avg_pool2d(u0 + u1, 1)
        z = F.relu(self.fc1_bn(self.fc1(s)))
        att = torch.softmax(self.fc2(z).reshape(x.shape[0], 2, -1, 1), dim=1)
        w0, w1 = att[:, 0, :, :, None], att[:, 1, :, :, None]  # (N, C, 1, 1)
        return u0 * w0 + w1 * u1


class NonLocal2d(nn.Module):
    """Non-local block (facebookresearch/video-nonlocal-net ``lib/models/nonlocal_helper.py``
    spacetime_nonlocal + add_nonlocal, in 2-D): the input is max-pooled once (kernel and
    stride 2) and phi and g project the pooled map; scaled softmax; out conv; BN (Caffe2
    momentum 0.9, gamma initialised to 0; epsilon 1.0000001e-5 there, 1e-5 nudged up one
    float32 step to stay above cuDNN's minimum of 1e-5, so 1e-5 here); sum with the input."""

    def __init__(self, channels: int, inner: int, use_maxpool: bool = True) -> None:
        super().__init__()
        self.inner, self.use_maxpool = inner, use_maxpool
        self.theta = nn.Conv2d(channels, inner, 1)
        self.phi = nn.Conv2d(channels, inner, 1)
        self.g = nn.Conv2d(channels, inner, 1)
        self.out = nn.Conv2d(inner, channels, 1)
        self.bn = nn.BatchNorm2d(channels, eps=1e-5, momentum=0.1)
        nn.init.zeros_(self.bn.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        pooled = F.max_pool2d(x, 2, 2) if self.use_maxpool else x
        theta = self.theta(x).reshape(b, self.inner, -1)
        phi = self.phi(pooled).reshape(b, self.inner, -1)
        g = self.g(pooled).reshape(b, self.inner, -1)
        affinity = torch.bmm(theta.transpose(1, 2), phi) * self.inner**-0.5  # (B, N, M)
        p = torch.softmax(affinity, dim=2)
        t = torch.bmm(g, p.transpose(1, 2))  # (B, C', N)
        return x + self.bn(self.out(t.reshape(b, self.inner, h, w)))


class CrissCrossAttention(nn.Module):
    """Criss-cross attention (speedinghzl/CCNet ``cc_attention/functions.py``, the pure-PyTorch
    CrissCrossAttention; the -inf diagonal built on the input's device), applied
    ``recurrence`` times with shared weights as RCCAModule does (``networks/ccnet.py``)."""

    def __init__(self, channels: int, recurrence: int = 2) -> None:
        super().__init__()
        self.recurrence = recurrence
        self.query_conv = nn.Conv2d(channels, channels // 8, 1)
        self.key_conv = nn.Conv2d(channels, channels // 8, 1)
        self.value_conv = nn.Conv2d(channels, channels, 1)
        self.gamma = nn.Parameter(torch.zeros(1))

    def _once(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        q, k, v = self.query_conv(x), self.key_conv(x), self.value_conv(x)
        q_h = q.permute(0, 3, 1, 2).reshape(b * w, -1, h).transpose(1, 2)  # (BW, H, C')
        q_w = q.permute(0, 2, 1, 3).reshape(b * h, -1, w).transpose(1, 2)  # (BH, W, C')
        k_h = k.permute(0, 3, 1, 2).reshape(b * w, -1, h)
        k_w = k.permute(0, 2, 1, 3).reshape(b * h, -1, w)
        v_h = v.permute(0, 3, 1, 2).reshape(b * w, -1, h)
        v_w = v.permute(0, 2, 1, 3).reshape(b * h, -1, w)
        inf = torch.diag(torch.full((h,), float("inf"), dtype=x.dtype, device=x.device))
        energy_h = (torch.bmm(q_h, k_h) - inf).reshape(b, w, h, h).permute(0, 2, 1, 3)
        energy_w = torch.bmm(q_w, k_w).reshape(b, h, w, w)
        att = torch.softmax(torch.cat([energy_h, energy_w], dim=3), dim=3)
        att_h = att[..., :h].permute(0, 2, 1, 3).reshape(b * w, h, h)
        att_w = att[..., h:].reshape(b * h, w, w)
        out_h = torch.bmm(v_h, att_h.transpose(1, 2)).reshape(b, w, -1, h).permute(0, 2, 3, 1)
        out_w = torch.bmm(v_w, att_w.transpose(1, 2)).reshape(b, h, -1, w).permute(0, 2, 1, 3)
        return self.gamma * (out_h + out_w) + x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for _ in range(self.recurrence):
            x = self._once(x)
        return x


class PAMModule(nn.Module):
    """DANet's position attention (junfu1115/DANet ``encoding/nn/da_att.py`` PAM_Module)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.query_conv = nn.Conv2d(channels, channels // 8, 1)
        self.key_conv = nn.Conv2d(channels, channels // 8, 1)
        self.value_conv = nn.Conv2d(channels, channels, 1)
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        query = self.query_conv(x).reshape(b, -1, h * w).permute(0, 2, 1)
        key = self.key_conv(x).reshape(b, -1, h * w)
        attention = torch.softmax(torch.bmm(query, key), dim=-1)
        value = self.value_conv(x).reshape(b, -1, h * w)
        out = torch.bmm(value, attention.permute(0, 2, 1)).reshape(b, c, h, w)
        return self.gamma * out + x


class CAMModule(nn.Module):
    """DANet's channel attention (same file, CAM_Module): softmax(rowmax(E) - E), E = X X^T."""

    def __init__(self) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        flat = x.reshape(b, c, -1)
        energy = torch.bmm(flat, flat.permute(0, 2, 1))
        energy_new = torch.max(energy, -1, keepdim=True)[0].expand_as(energy) - energy
        out = torch.bmm(torch.softmax(energy_new, dim=-1), flat).reshape(b, c, h, w)
        return self.gamma * out + x


class GAMEquations(nn.Module):
    """GAM written out from the paper's equations (Liu et al. 2021, eqs. 1-2, figs. 2-3):
    ``F2 = M_c(F1) * F1``, ``F3 = M_s(F2) * F2`` with
    ``M_c(F) = sigmoid(P^-1(W2 relu(W1 P(F) + b1) + b2))`` (P moves channels last) and
    ``M_s(F) = sigmoid(BN(conv_k(relu(BN(conv_k(F))))))``, convs C -> C/r -> C."""

    def __init__(self, channels: int, rate: int = 4, kernel_size: int = 7) -> None:
        super().__init__()
        hidden, k = channels // rate, kernel_size
        self.w1 = nn.Parameter(torch.randn(hidden, channels) / math.sqrt(channels))
        self.b1 = nn.Parameter(torch.zeros(hidden))
        self.w2 = nn.Parameter(torch.randn(channels, hidden) / math.sqrt(hidden))
        self.b2 = nn.Parameter(torch.zeros(channels))
        self.conv1 = nn.Conv2d(channels, hidden, k, padding=k // 2)
        self.bn1 = nn.BatchNorm2d(hidden)
        self.conv2 = nn.Conv2d(hidden, channels, k, padding=k // 2)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, f1: torch.Tensor) -> torch.Tensor:
        p = f1.permute(0, 2, 3, 1)  # (B, H, W, C)
        mlp = F.relu(p @ self.w1.T + self.b1) @ self.w2.T + self.b2
        f2 = torch.sigmoid(mlp.permute(0, 3, 1, 2)) * f1
        m_s = torch.sigmoid(self.bn2(self.conv2(F.relu(self.bn1(self.conv1(f2))))))
        return m_s * f2
