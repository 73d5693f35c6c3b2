"""Building and running the backbone families with attention per stage."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from nas.backbones import (
    StageSpec,
    build_mobilenet_v2,
    build_resnet,
    count_parameters,
    mobilenet_v2,
    profile_model,
    resnet50,
)
from nas.blocks import BlockConfigError, create_block, get_spec


def test_resnet50_per_stage_attention_sits_before_the_residual_add() -> None:
    with torch.device("meta"):
        model = resnet50(["se", "none", "eca", "ca"], [{"reduction": 8}, None, None, None])
    assert model.layer1[0].attention.fc1.out_features == 256 // 8
    assert model.layer2[0].attention is None
    assert type(model.layer3[2].attention).__name__ == type(create_block("eca", 8)).__name__
    assert model.layer4[0].conv3.out_channels == 2048


def test_resnet50_conv_placement_replaces_the_3x3_conv_only_for_conv_blocks() -> None:
    with torch.device("meta"):
        model = resnet50(["psa", "sk", "se", "none"], placement="conv")
    spec = get_spec("psa")
    assert isinstance(model.layer1[0].conv2, spec.conv_cls)
    assert isinstance(model.layer2[0].conv2, get_spec("sk").conv_cls)
    assert model.layer1[0].attention is None
    # blocks without a conv form stay after the last BN
    assert isinstance(model.layer3[0].conv2, nn.Conv2d)
    assert model.layer3[0].attention is not None


def test_attention_list_must_have_one_entry_per_stage() -> None:
    with pytest.raises(ValueError, match="one per stage"):
        resnet50(["se", "se"])
    with pytest.raises(ValueError, match="placement"):
        resnet50("se", placement="middle")


def test_mobilenet_v2_attention_after_the_depthwise_conv_not_in_expansion_one() -> None:
    with torch.device("meta"):
        model = mobilenet_v2("se", num_classes=10)
    first = model.features[1].conv  # expansion 1: dw, project, BN
    assert len(first) == 3
    block = model.features[2].conv  # expand, dw, attention, project, BN
    assert block[1][0].groups == block[1][0].in_channels == 96
    assert block[2].fc1.in_features == 96
    assert model.classifier[1].out_features == 10


def test_mobilenet_width_multiplier_rounds_channels_to_multiples_of_8() -> None:
    with torch.device("meta"):
        half = mobilenet_v2(width_mult=0.5)
    widths = [m.out_channels for m in half.modules() if isinstance(m, nn.Conv2d)]
    assert all(w % 8 == 0 for w in widths)
    assert half.features[0][0].out_channels == 16
    assert half.classifier[1].in_features == 1280  # the head keeps 1280 below width 1.0
    assert count_parameters(half) < count_parameters(mobilenet_v2())


@pytest.mark.parametrize("size", [8, 16, 32])
def test_small_input_variants_run_from_8x8_to_32x32(size: int) -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 1, size, size)
    for model in (
        mobilenet_v2("eca", width_mult=0.25, num_classes=10, small_input=True, in_channels=1),
        build_resnet(
            [
                StageSpec(8, 1, 1, 2, attention="se", hparams={"reduction": 4}),
                StageSpec(
                    16,
                    1,
                    2,
                    2,
                    attention="psa",
                    placement="conv",
                    hparams={"groups": (1, 1, 1, 1), "reduction": 4},
                ),
                StageSpec(16, 2, 2, 2, attention="sk", placement="conv", hparams={"groups": 8}),
            ],
            num_classes=10,
            in_channels=1,
            small_input=True,
            stem_width=8,
        ),
    ):
        model.eval()
        with torch.no_grad():
            y = model(x)
        assert y.shape == (2, 10)
        assert torch.isfinite(y).all()


def test_small_input_keeps_resolution_the_large_stem_would_lose() -> None:
    x = torch.zeros(1, 3, 32, 32)
    feats = {}
    for small in (False, True):
        model = mobilenet_v2(width_mult=0.25, small_input=small).eval()
        with torch.no_grad():
            feats[small] = model.features(x).shape[-1]
    assert feats == {False: 1, True: 4}


def test_block_inits_are_kept() -> None:
    # The non-local block starts as the identity (its output BN is zero-initialised);
    # the backbone's BN initialisation must not overwrite it.
    model = build_mobilenet_v2(
        [StageSpec(8, 1, 1, 2, attention="nonlocal")],
        num_classes=3,
        in_channels=1,
        stem_width=8,
        head_width=16,
    )
    bn = model.features[1].conv[2].bn
    assert torch.count_nonzero(bn.weight) == 0


def test_invalid_block_settings_fail_with_the_block_rule() -> None:
    with pytest.raises(BlockConfigError, match="sa"):
        build_mobilenet_v2([StageSpec(8, 1, 1, 3, attention="sa")], num_classes=2)
    with pytest.raises(BlockConfigError, match="psa: groups"):
        build_resnet([StageSpec(8, 1, 1, 2, attention="psa", placement="conv")], num_classes=2)


def test_profile_counts_params_flops_and_activations_exactly() -> None:
    # conv 1->2, 3x3, pad 1, no bias on 4x4: 4*4*2*9 = 288 multiply-adds = 576 FLOPs;
    # flatten; linear 32->3 with bias: 32*3 = 96 multiply-adds = 192 FLOPs.
    model = nn.Sequential(
        nn.Conv2d(1, 2, 3, padding=1, bias=False), nn.Flatten(), nn.Linear(32, 3)
    )
    profile = profile_model(model, (1, 4, 4), batch_size=2)
    assert profile.params == 18 + 32 * 3 + 3
    assert profile.flops == 2 * (576 + 192)
    # float32 outputs of the leaf modules: conv 2x2x4x4, flatten 2x32, linear 2x3.
    assert profile.activation_bytes == 4 * (2 * 32 + 2 * 32 + 2 * 3)
    assert model.training  # the mode is restored


def test_profile_of_a_backbone_scales_with_the_input() -> None:
    model = mobilenet_v2("ca", width_mult=0.25, num_classes=10, small_input=True, in_channels=1)
    small = profile_model(model, (1, 8, 8))
    large = profile_model(model, (1, 16, 16))
    assert small.params == large.params == count_parameters(model)
    assert 3 * small.flops < large.flops
    assert 3 * small.activation_bytes < large.activation_bytes


@pytest.mark.parametrize("space_name", ["mobile", "resnet"])
def test_same_seed_same_backbone_weights_whatever_the_blocks(space_name: str) -> None:
    """Common random numbers: the blocks draw from the global RNG, the backbone does not."""
    from nas.backbones.stage import backbone_modules
    from nas.space import build_model, default_arch, load_space

    space = load_space(space_name)

    def backbone_weights(attention: str, seed: int) -> list[torch.Tensor]:
        torch.manual_seed(seed)
        model = build_model(space, default_arch(space, attention), num_classes=10)
        return [p for m in backbone_modules(model) for p in m.parameters(recurse=False)]

    plain, gated, other_seed = (
        backbone_weights("none", 0),
        backbone_weights("se", 0),
        backbone_weights("none", 1),
    )
    assert len(plain) == len(gated) > 0
    assert all(torch.equal(a, b) for a, b in zip(plain, gated, strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(plain, other_seed, strict=True))
