"""Parameter counts of the reference networks and of the published attention variants.

The networks are built on the meta device: counting needs no memory and no forward pass.
Every exact count below is derived from the official structure in the comments; the papers'
rounded figures are checked as well.
"""

from __future__ import annotations

import pytest
import torch

from nas.backbones import count_parameters, mobilenet_v2, resnet50

RESNET50 = 25_557_032  # torchvision.models.resnet50
MOBILENET_V2 = 3_504_872  # torchvision.models.mobilenet_v2 (width 1.0)

# ResNet-50 bottlenecks: (stage output channels C, bottleneck width P, number of blocks).
RESNET50_STAGES = [(256, 64, 3), (512, 128, 4), (1024, 256, 6), (2048, 512, 3)]


def params(build, *args, **kwargs) -> int:
    with torch.device("meta"):
        return count_parameters(build(*args, **kwargs))


def se_params(c: int, r: int = 16) -> int:
    # SE: Linear(C, C/r) + bias, Linear(C/r, C) + bias.
    return c * (c // r) + c // r + (c // r) * c + c


def test_resnet50_matches_torchvision() -> None:
    assert params(resnet50) == RESNET50


def test_mobilenet_v2_matches_torchvision() -> None:
    assert params(mobilenet_v2) == MOBILENET_V2


def test_se_resnet50() -> None:
    # One SE (r=16) on the C output channels of every bottleneck:
    # 3*8,464 + 4*33,312 + 6*132,160 + 3*526,464 = 2,530,992 -> 28,088,024.
    extra = sum(n * se_params(c) for c, _, n in RESNET50_STAGES)
    assert extra == 2_530_992
    count = params(resnet50, "se")
    assert count == RESNET50 + extra == 28_088_024
    assert round(count / 1e6, 2) == 28.09  # SENet paper, Table 2


def test_cbam_resnet50() -> None:
    # CBAM: the channel MLP is SE's (shared over avg and max pooling, with biases);
    # the spatial gate adds a 7x7 conv 2->1 without bias (98) and BN(1) (2): 100 per block.
    extra = sum(n * (se_params(c) + 2 * 7 * 7 + 2) for c, _, n in RESNET50_STAGES)
    count = params(resnet50, "cbam")
    assert count == RESNET50 + extra == 28_089_624
    assert round(count / 1e6, 2) == 28.09  # CBAM paper, Table 4


def test_eca_resnet50() -> None:
    # ECA: one Conv1d(1, 1, k) without bias per block, k = 3, 5, 5, 7 by stage:
    # 3*3 + 4*5 + 6*5 + 3*7 = 80 parameters in all. (The ECA paper's table prints 24.37M
    # for ECA-Net50, below ResNet-50 itself; the structure gives 25.56M.)
    kernels = [3, 5, 5, 7]
    hparams = [{"k_size": k} for k in kernels]
    extra = sum(n * k for (_, _, n), k in zip(RESNET50_STAGES, kernels, strict=True))
    count = params(resnet50, "eca", hparams)
    assert extra == 80
    assert count == RESNET50 + extra == 25_557_112
    assert round(count / 1e6, 2) == 25.56


def test_eca_adaptive_kernel_resnet50() -> None:
    # k_size=0 (adaptive): |log2(C)/2 + 1/2| made odd gives 5, 5, 5, 7 for C = 256..2048.
    assert params(resnet50, "eca", {"k_size": 0}) == RESNET50 + 3 * 5 + 4 * 5 + 6 * 5 + 3 * 7


def test_sa_resnet50() -> None:
    # SA (groups 64): cweight, cbias, sweight, sbias and GroupNorm's weight and bias, each with
    # C / (2*64) entries: 6 * C/128 = 3C/64 per block -> 3*12 + 4*24 + 6*48 + 3*96 = 708.
    extra = sum(n * 6 * (c // 128) for c, _, n in RESNET50_STAGES)
    count = params(resnet50, "sa")
    assert extra == 708
    assert count == RESNET50 + extra == 25_557_740
    assert round(count / 1e6, 2) == 25.56  # SA-Net paper, Table 1


def test_epsanet50_small() -> None:
    # EPSANet-50 (small): PSA replaces the 3x3 conv (P -> P, P = bottleneck width): four
    # convs P -> P/4 without bias, kernels 3,5,7,9 with groups 1,4,8,16, i.e.
    # (P/4) * P * (9/1 + 25/4 + 49/8 + 81/16) weights instead of 9 P^2, plus one SE-weight
    # module on P/4 channels (1x1 convs with bias, r=16).
    def psa(p: int) -> int:
        convs = sum((p // 4) * (p // g) * k * k for k, g in ((3, 1), (5, 4), (7, 8), (9, 16)))
        return convs + se_params(p // 4)

    delta = sum(n * (psa(p) - 9 * p * p) for _, p, n in RESNET50_STAGES)
    count = params(resnet50, "psa", placement="conv")
    assert delta == -2_995_317
    assert count == RESNET50 + delta == 22_561_715
    assert round(count / 1e6, 2) == 22.56  # EPSANet paper, Table 1


def test_gam_resnet50() -> None:
    # GAM (rate 4, 7x7) on the C output channels of every bottleneck, h = C/4: channel MLP
    # C*h + h + h*C + C; spatial conv C->h (49*C*h/g + h), BN(h), conv h->C (49*h*C/g + C),
    # BN(C); g = groups of both spatial convs.
    def gam(c: int, groups: int = 1) -> int:
        h = c // 4
        return 2 * c * h + h + c + 2 * 49 * c * h // groups + 3 * h + 3 * c

    def total(groups: int) -> int:
        return RESNET50 + sum(n * gam(c, groups) for c, _, n in RESNET50_STAGES)

    assert params(resnet50, "gam") == total(1) == 528_621_352
    # The GAM paper reports 149.23M for ResNet-50, with grouped spatial convs and channel
    # shuffle. No group count reproduces it: groups = rate = 4 in both convs (the common
    # reading) gives 158.92M, 8 gives 97.31M; so the block offers no grouped variant.
    assert [round(total(g) / 1e6, 2) for g in (2, 4, 8)] == [282.16, 158.92, 97.31]


def test_mobilenet_v2_coordinate_attention() -> None:
    # CA (r=32) after the depthwise conv of every expansion-6 block, on its hidden width C:
    # mip = max(8, C//32); conv1 C->mip (+bias), BN(mip), conv_h and conv_w mip->C (+bias):
    # 3*C*mip + 3*mip + 2*C. Hidden widths of the 16 blocks: 96, 144 x2, 192 x3, 384 x4,
    # 576 x3, 960 x3 (the expansion-1 block has none).
    def ca(c: int) -> int:
        mip = max(8, c // 32)
        return 3 * c * mip + 3 * mip + 2 * c

    hidden = [96] + [144] * 2 + [192] * 3 + [384] * 4 + [576] * 3 + [960] * 3
    extra = sum(ca(c) for c in hidden)
    count = params(mobilenet_v2, "ca")
    assert extra == 445_776
    assert count == MOBILENET_V2 + extra == 3_950_648
    assert round(count / 1e6, 2) == 3.95  # Coordinate Attention paper, Table 1


@pytest.mark.parametrize(
    ("build", "entries"),
    [
        # convs + 5 BN entries each + fc weight and bias: 53 convs (1 stem, 16*3 in the
        # bottlenecks, 4 downsample) -> 53 + 265 + 2; MobileNetV2: 52 convs (stem, 2 in
        # the expansion-1 block, 16*3, head) -> 52 + 260 + 2.
        (resnet50, 53 + 53 * 5 + 2),
        (mobilenet_v2, 52 + 52 * 5 + 2),
    ],
)
def test_state_dict_layout_matches_torchvision(build, entries: int) -> None:
    with torch.device("meta"):
        state = build().state_dict()
    assert len(state) == entries
    expected = {
        resnet50: ["conv1.weight", "layer1.0.downsample.0.weight", "layer4.2.bn3.running_var"],
        mobilenet_v2: ["features.1.conv.0.0.weight", "features.18.0.weight", "classifier.1.bias"],
    }[build]
    assert set(expected) <= set(state)
