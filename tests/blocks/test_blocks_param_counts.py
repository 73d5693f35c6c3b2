"""Parameter counts derived by hand from the papers' definitions (arithmetic in the comments)."""

from __future__ import annotations

from typing import Any

import pytest

from nas.blocks import create_block, create_conv_block, list_blocks


def _count(module: Any) -> int:
    return sum(p.numel() for p in module.parameters())


CASES: list[tuple[str, int, dict[str, Any], int]] = [
    ("none", 64, {}, 0),
    # se, hidden C//r; fc1 C*h + h, fc2 h*C + C
    ("se", 64, {}, 64 * 4 + 4 + 4 * 64 + 64),  # r=16, h=4 -> 580
    ("se", 256, {}, 256 * 16 + 16 + 16 * 256 + 256),  # h=16 -> 8464
    ("se", 96, {"reduction": 32}, 96 * 3 + 3 + 3 * 96 + 96),  # h=3 -> 675
    # eca: the 1-D kernel only, k from |log2(C)/2 + 1/2| made odd
    ("eca", 16, {}, 3),  # (4+1)/2=2.5 -> 2 -> 3
    ("eca", 64, {}, 3),  # (6+1)/2=3.5 -> 3
    ("eca", 256, {}, 5),  # (8+1)/2=4.5 -> 4 -> 5
    ("eca", 512, {}, 5),  # (9+1)/2=5
    ("eca", 64, {"k_size": 7}, 7),
    # cbam: shared MLP as se + conv 2*k*k (no bias) + BN(1) weight,bias
    ("cbam", 64, {}, 580 + 2 * 7 * 7 + 2),  # 680
    ("cbam", 256, {}, 8464 + 2 * 7 * 7 + 2),  # 8564
    ("cbam", 64, {"kernel_size": 3, "reduction": 8}, 64 * 8 + 8 + 8 * 64 + 64 + 2 * 9 + 2),
    # scse: cSE C*h + h + h*C + C (h=C//2), sSE C + 1
    ("scse", 16, {}, 16 * 8 + 8 + 8 * 16 + 16 + 16 + 1),  # 297
    ("scse", 64, {}, 64 * 32 + 32 + 32 * 64 + 64 + 64 + 1),  # 4257
    # ca: mip = max(8, C//32); conv1 C*mip + mip, BN 2*mip, conv_h and conv_w mip*C + C each
    ("ca", 64, {}, 64 * 8 + 8 + 2 * 8 + 2 * (8 * 64 + 64)),  # mip=8 -> 1688
    ("ca", 256, {}, 256 * 8 + 8 + 2 * 8 + 2 * (8 * 256 + 256)),  # mip=8 -> 6680
    ("ca", 512, {}, 512 * 16 + 16 + 2 * 16 + 2 * (16 * 512 + 512)),  # mip=16 -> 25648
    # sa: per = C/(2G); cweight, cbias, sweight, sbias and GN weight, bias: 6 * per
    ("sa", 256, {}, 6 * 2),  # G=64 -> per=2 -> 12 (SA-Net: +12 params per 256-channel block)
    ("sa", 512, {}, 6 * 4),  # 24
    ("sa", 96, {"groups": 16}, 6 * 3),  # 18
    # psa (C -> C): 4 convs C -> C/4 without bias, C*(C/4)*k^2/g for (k, g) = (3, 1), (5, 4),
    # (7, 8), (9, 16); one SE-weight on C/4 channels, hidden h = (C/4)//16: 2*(C/4)*h + h + C/4
    # 64*16*9=9216, 64*16*25/4=6400, 64*16*49/8=6272, 64*16*81/16=5184; SE h=1: 49
    ("psa", 64, {}, 9216 + 6400 + 6272 + 5184 + (16 * 1 + 1 + 1 * 16 + 16)),  # 27121
    # 256*64*9=147456, *25/4=102400, *49/8=100352, *81/16=82944; SE h=4: 580
    ("psa", 256, {}, 147456 + 102400 + 100352 + 82944 + (64 * 4 + 4 + 4 * 64 + 64)),  # 433732
    # 3 scales of C/3 = 32 (k 3, 5, 7; g 1, 4, 8), r=8: h=4
    (
        "psa",
        96,
        {"kernels": (3, 5, 7), "groups": (1, 4, 8), "reduction": 8},
        96 * 32 * 9 + 96 * 32 * 25 // 4 + 96 * 32 * 49 // 8 + (32 * 4 + 4 + 4 * 32 + 32),
    ),
    # gam: h = C//4; Linear C*h+h, h*C+C; conv1 C*h*k^2 + h; BN 2h; conv2 h*C*k^2 + C; BN 2C
    ("gam", 16, {}, 16 * 4 + 4 + 4 * 16 + 16 + 16 * 4 * 49 + 4 + 8 + 4 * 16 * 49 + 16 + 32),
    (
        "gam",
        64,
        {},
        64 * 16 + 16 + 16 * 64 + 64 + 64 * 16 * 49 + 16 + 32 + 16 * 64 * 49 + 64 + 128,
    ),
    # sk: d = max(C//16, 32); 2 branches (C*C/G*9 + BN 2C); fc C*d + BN 2d; 2 fcs d*C; no
    # conv has a bias (SKNet prototxt)
    ("sk", 64, {}, 2 * (64 * 2 * 9 + 128) + 64 * 32 + 64 + 2 * (32 * 64)),  # 8768
    ("sk", 256, {}, 2 * (256 * 8 * 9 + 512) + 256 * 32 + 64 + 2 * (32 * 256)),  # 62528
    ("sk", 1024, {}, 2 * (1024 * 32 * 9 + 2048) + 1024 * 64 + 128 + 2 * (64 * 1024)),
    # nonlocal: i = C//2; theta, phi, g: C*i + i each; W i*C + C; BN 2C
    ("nonlocal", 16, {}, 3 * (16 * 8 + 8) + 8 * 16 + 16 + 32),  # 584
    ("nonlocal", 64, {}, 3 * (64 * 32 + 32) + 32 * 64 + 64 + 128),  # 8480
    # cc: q, k C*(C/8) + C/8; v C*C + C; gamma 1 (shared across recurrences)
    ("cc", 16, {}, 2 * (16 * 2 + 2) + 16 * 16 + 16 + 1),  # 341
    ("cc", 64, {}, 2 * (64 * 8 + 8) + 64 * 64 + 64 + 1),  # 5201
    # da: PAM as cc's convs + gamma; CAM only its gamma
    ("da", 16, {}, 2 * (16 * 2 + 2) + 16 * 16 + 16 + 2),  # 342
    ("da", 64, {}, 2 * (64 * 8 + 8) + 64 * 64 + 64 + 2),  # 5202
]


@pytest.mark.parametrize(("name", "channels", "hparams", "expected"), CASES)
def test_parameter_count(name: str, channels: int, hparams: dict[str, Any], expected: int) -> None:
    assert _count(create_block(name, channels, **hparams)) == expected


def test_every_block_has_hand_counts_for_two_channel_counts() -> None:
    for name in list_blocks():
        assert len({c for n, c, _, _ in CASES if n == name}) >= 2 or name == "none", name


def test_conv_forms_parameter_count() -> None:
    # EPSANet bottleneck of the first stage: PSA 64 -> 64, convs 64*16*(9 + 25/4 + 49/8 + 81/16)
    psa = create_conv_block("psa", 64, 64, stride=1)
    assert (
        _count(psa)
        == 64 * 16 * 9 + 64 * 16 * 25 // 4 + 64 * 16 * 49 // 8 + 64 * 16 * 81 // 16 + 49
    )
    # in != out: each conv in*(out/4)*k^2/g
    psa = create_conv_block("psa", 128, 256, stride=2)
    convs = 128 * 64 * 9 + 128 * 64 * 25 // 4 + 128 * 64 * 49 // 8 + 128 * 64 * 81 // 16
    assert _count(psa) == convs + (64 * 4 + 4 + 4 * 64 + 64)
    # SKNet-50 conv of the first stage (128 -> 128, G=32): d = max(128//16, 32) = 32
    sk = create_conv_block("sk", 128, 128, stride=1)
    assert _count(sk) == 2 * (128 * 4 * 9 + 256) + 128 * 32 + 64 + 2 * (32 * 128)
    sk = create_conv_block("sk", 64, 128, stride=2)
    assert _count(sk) == 2 * (64 * 4 * 9 + 256) + 128 * 32 + 64 + 2 * (32 * 128)
