"""Each block computes what its paper defines: checks against naive reference computations."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from nas.blocks import (
    CBAM,
    SCSE,
    CoordinateAttention,
    CrissCrossAttention,
    DualAttention,
    EfficientChannelAttention,
    GlobalAttention,
    NonLocal,
    PyramidSplitAttention,
    SelectiveKernel,
    ShuffleAttention,
    SqueezeExcite,
    create_block,
    create_conv_block,
)


def _perturb(module: nn.Module, scale: float = 0.5) -> nn.Module:
    with torch.no_grad():
        for p in module.parameters():
            p.add_(scale * torch.randn_like(p))
    return module.eval()


def test_se_reference() -> None:
    block = create_block("se", 32, reduction=8)
    assert isinstance(block, SqueezeExcite)
    assert (block.fc1.out_features, block.fc1.bias is not None) == (4, True)
    x = torch.randn(2, 32, 5, 3)
    s = torch.sigmoid(block.fc2(torch.relu(block.fc1(x.mean(dim=(2, 3))))))
    torch.testing.assert_close(block(x), x * s[:, :, None, None])


def test_eca_adaptive_kernel_and_reference() -> None:
    for channels, k in ((8, 3), (16, 3), (64, 3), (128, 5), (256, 5), (512, 5), (2048, 7)):
        # k = |log2(C)/2 + 1/2| truncated, +1 when even
        expected = int(abs((math.log2(channels) + 1) / 2))
        expected += 1 - expected % 2
        assert expected == k
        assert create_block("eca", channels).conv.kernel_size == (k,)
    block = _perturb(create_block("eca", 16, k_size=5))
    assert isinstance(block, EfficientChannelAttention) and block.conv.bias is None
    x = torch.randn(2, 16, 4, 4)
    y = F.conv1d(x.mean(dim=(2, 3))[:, None, :], block.conv.weight, padding=2)
    torch.testing.assert_close(block(x), x * torch.sigmoid(y)[:, 0, :, None, None])


def test_cbam_channel_then_spatial_reference() -> None:
    block = _perturb(create_block("cbam", 32, reduction=4, kernel_size=3))
    assert isinstance(block, CBAM) and block.spatial.conv.bias is None
    x = torch.randn(2, 32, 6, 5)
    mlp = block.channel.mlp
    att = torch.sigmoid(mlp(x.mean(dim=(2, 3))) + mlp(x.amax(dim=(2, 3))))
    xc = x * att[:, :, None, None]
    pooled = torch.cat([xc.amax(1, keepdim=True), xc.mean(1, keepdim=True)], dim=1)
    s = torch.sigmoid(block.spatial.bn(F.conv2d(pooled, block.spatial.conv.weight, padding=1)))
    torch.testing.assert_close(block(x), xc * s)


def test_scse_fusions() -> None:
    x = torch.randn(2, 16, 4, 4)
    blocks = {}
    for fusion in ("max", "add"):
        torch.manual_seed(1)
        blocks[fusion] = create_block("scse", 16, fusion=fusion).eval()
        assert isinstance(blocks[fusion], SCSE)
    c = x * blocks["max"].cse(x)
    s = x * blocks["max"].sse(x)
    torch.testing.assert_close(blocks["max"](x), torch.maximum(c, s))
    torch.testing.assert_close(blocks["add"](x), c + s)


def test_coordinate_attention_reference() -> None:
    block = _perturb(create_block("ca", 16))
    assert isinstance(block, CoordinateAttention)
    assert block.conv1.out_channels == 8  # mip = max(8, 16 // 32)
    assert create_block("ca", 1024).conv1.out_channels == 32
    x = torch.randn(2, 16, 5, 3)
    x_h = x.mean(dim=3)  # (B, C, H): pooled along W
    x_w = x.mean(dim=2)  # (B, C, W): pooled along H
    y = torch.cat([x_h, x_w], dim=2)[..., None]
    y = block.bn1(block.conv1(y))
    y = y * F.relu6(y + 3) / 6
    a_h = torch.sigmoid(block.conv_h(y[:, :, :5]))  # (B, C, H, 1)
    a_w = torch.sigmoid(block.conv_w(y[:, :, 5:])).transpose(2, 3)  # (B, C, 1, W)
    torch.testing.assert_close(block(x), x * a_h * a_w)


def test_shuffle_attention_init_and_reference() -> None:
    block = create_block("sa", 32, groups=4)
    assert isinstance(block, ShuffleAttention)
    assert torch.all(block.cweight == 0) and torch.all(block.sweight == 0)
    assert torch.all(block.cbias == 1) and torch.all(block.sbias == 1)
    assert block.gn.num_groups == block.gn.num_channels == 4
    _perturb(block)
    x = torch.randn(2, 32, 3, 5)
    halves = []
    for g in range(4):  # group g holds channels 8g .. 8g+7
        sub = x[:, 8 * g : 8 * g + 8]
        x0, x1 = sub[:, :4], sub[:, 4:]
        xn = x0 * torch.sigmoid(block.cweight * x0.mean(dim=(2, 3), keepdim=True) + block.cbias)
        xs = x1 * torch.sigmoid(block.sweight * block.gn(x1) + block.sbias)
        halves.append(torch.cat([xn, xs], dim=1))
    out = torch.cat(halves, dim=1)
    # channel shuffle with 2 groups: output channel 2i is channel i, 2i+1 is channel 16+i
    expected = torch.stack([out[:, :16], out[:, 16:]], dim=2).reshape(2, 32, 3, 5)
    torch.testing.assert_close(block(x), expected)


def test_psa_softmax_across_scales() -> None:
    block = _perturb(create_block("psa", 64), 0.1)
    assert isinstance(block, PyramidSplitAttention)
    assert [c.kernel_size[0] for c in block.convs] == [3, 5, 7, 9]
    assert [c.groups for c in block.convs] == [1, 4, 8, 16]
    assert all(c.out_channels == 16 and c.bias is None for c in block.convs)
    x = torch.randn(2, 64, 6, 6)
    feats = [conv(x) for conv in block.convs]
    w = torch.softmax(torch.stack([block.se(f) for f in feats]), dim=0)  # over the 4 scales
    weighted = [f * w[i] for i, f in enumerate(feats)]
    # EPSANet's output order: the kernel-9 scale first, the kernel-3 scale last
    torch.testing.assert_close(block(x), torch.cat(weighted[::-1], 1))
    conv = create_conv_block("psa", 32, 64, stride=2)
    assert conv(torch.randn(2, 32, 7, 6)).shape == (2, 64, 4, 3)


def test_gam_channel_branch_has_a_sigmoid() -> None:
    block = create_block("gam", 16).eval()
    assert isinstance(block, GlobalAttention)
    with torch.no_grad():
        block.channel_attention[2].bias.fill_(50.0)  # without a sigmoid this scales x by ~50
    x = torch.randn(2, 16, 5, 5)
    with torch.no_grad():
        out = block(x)
    assert torch.all(out.abs() <= x.abs() + 1e-6)
    m_c = torch.sigmoid(block.channel_attention(x.permute(0, 2, 3, 1))).permute(0, 3, 1, 2)
    xc = x * m_c
    torch.testing.assert_close(out, xc * torch.sigmoid(block.spatial_attention(xc)))


def test_sk_structure_and_reference() -> None:
    block = _perturb(create_block("sk", 64, groups=8), 0.1)
    assert isinstance(block, SelectiveKernel)
    assert [b[0].dilation for b in block.branches] == [(1, 1), (2, 2)]
    assert all(b[0].groups == 8 and b[0].bias is None for b in block.branches)
    assert block.fc[0].out_channels == 32  # d = max(64 // 16, 32)
    assert block.fc[0].bias is None and all(fc.bias is None for fc in block.fcs)  # prototxt
    bns = [m for m in block.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(bns) == 3 and all(m.momentum == 0.05 for m in bns)  # Caffe momentum 0.95
    assert create_block("sk", 1024).fc[0].out_channels == 64  # d = max(1024 // 16, 32)
    x = torch.randn(2, 64, 5, 4)
    u = [b(x) for b in block.branches]
    z = block.fc(sum(u).mean(dim=(2, 3), keepdim=True))
    a = torch.softmax(torch.stack([fc(z) for fc in block.fcs]), dim=0)
    torch.testing.assert_close(block(x), a[0] * u[0] + a[1] * u[1])
    conv = create_conv_block("sk", 64, 128, stride=2)
    assert conv(torch.randn(2, 64, 7, 6)).shape == (2, 128, 4, 3)


def test_nonlocal_starts_as_identity_and_matches_reference() -> None:
    block = create_block("nonlocal", 16)
    assert isinstance(block, NonLocal)
    assert torch.all(block.bn.weight == 0)
    x = torch.randn(2, 16, 4, 6)
    for mode in (True, False):
        torch.testing.assert_close(block.train(mode)(x), x)
    for subsample in (False, True):
        block = _perturb(create_block("nonlocal", 16, subsample=subsample))
        theta = block.theta(x).flatten(2)  # (B, 8, N)
        pooled = F.max_pool2d(x, 2) if subsample else x  # the input is pooled, once
        phi, g = block.phi(pooled), block.g(pooled)
        f = torch.softmax(theta.transpose(1, 2) @ phi.flatten(2) / math.sqrt(8), dim=-1)
        y = (f @ g.flatten(2).transpose(1, 2)).transpose(1, 2).reshape(2, 8, 4, 6)
        torch.testing.assert_close(block(x), x + block.bn(block.w(y)))
    tiny = create_block("nonlocal", 16).train()
    assert tiny(torch.randn(2, 16, 1, 1)).shape == (2, 16, 1, 1)


def test_criss_cross_reference_counts_centre_once() -> None:
    block = create_block("cc", 16, recurrence=1)
    assert isinstance(block, CrissCrossAttention)
    assert block.gamma.item() == 0
    x = torch.randn(1, 16, 3, 4)
    torch.testing.assert_close(block(x), x)
    _perturb(block)
    q, k, v = block.query(x)[0], block.key(x)[0], block.value(x)[0]
    expected = torch.empty_like(x[0])
    for i in range(3):
        for j in range(4):
            # the row (i, *) and the column (*, j) without repeating (i, j)
            positions = [(i, jj) for jj in range(4)] + [(ii, j) for ii in range(3) if ii != i]
            energy = torch.stack([q[:, i, j] @ k[:, a, b] for a, b in positions])
            att = torch.softmax(energy, dim=0)
            expected[:, i, j] = sum(att[n] * v[:, a, b] for n, (a, b) in enumerate(positions))
    out = block(x)
    torch.testing.assert_close(out, block.gamma * expected[None] + x)
    # recurrence applies the same weights again
    block2 = create_block("cc", 16, recurrence=2)
    block2.load_state_dict(block.state_dict())
    torch.testing.assert_close(block2.eval()(x), block(block(x)))


def test_dual_attention_reference() -> None:
    block = create_block("da", 16)
    assert isinstance(block, DualAttention)
    x = torch.randn(2, 16, 3, 4)
    torch.testing.assert_close(block(x), x)
    _perturb(block)
    pam, flat = block.pam, x.flatten(2)  # (B, C, N)
    q, k, v = pam.query(x).flatten(2), pam.key(x).flatten(2), pam.value(x).flatten(2)
    a_p = torch.softmax(q.transpose(1, 2) @ k, dim=-1)  # (B, N, N)
    p_out = (v @ a_p.transpose(1, 2)).reshape_as(x)
    energy = flat @ flat.transpose(1, 2)  # (B, C, C)
    a_c = torch.softmax(energy.amax(-1, keepdim=True) - energy, dim=-1)
    c_out = (a_c @ flat).reshape_as(x)
    torch.testing.assert_close(block(x), x + pam.gamma * p_out + block.cam.gamma * c_out)


def test_channel_attention_energy_does_not_overflow_in_half_precision() -> None:
    block = create_block("da", 16).eval()
    with torch.no_grad():
        block.cam.gamma.fill_(1.0)
    x = torch.randn(1, 16, 40, 40) * 60  # X X^T entries ~ 1600 * 3600, beyond float16's range
    with torch.no_grad():
        out = block.half()(x.half())
    assert torch.isfinite(out).all()


def test_channel_attention_keeps_float64() -> None:
    block = _perturb(create_block("da", 8)).double()
    with torch.no_grad():
        block.cam.gamma.fill_(1.0)
    x = torch.randn(1, 8, 3, 5, dtype=torch.float64)
    flat = x.flatten(2)
    energy = flat @ flat.transpose(1, 2)
    att = torch.softmax(energy.amax(-1, keepdim=True) - energy, dim=-1)
    expected = (att @ flat).reshape_as(x)
    # a float32 round trip would leave errors of ~1e-7
    torch.testing.assert_close(block.cam(x), expected, atol=1e-12, rtol=1e-12)
