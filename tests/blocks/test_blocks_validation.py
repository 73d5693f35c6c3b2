"""Validity rules: every enumerable combination is accepted or rejected as the papers require."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import pytest
import torch

from nas.blocks import (
    BlockConfigError,
    UnknownBlockError,
    create_block,
    create_conv_block,
    get_spec,
    list_blocks,
)
from nas.errors import NasError, NotFoundError

CHANNELS = (1, 4, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256)


def _ratio(param: str) -> Callable[[int, dict[str, Any]], bool]:
    return lambda c, hp: c // hp[param] >= 1


def _psa(c: int, hp: dict[str, Any]) -> bool:
    kernels, groups, r = hp["kernels"], hp["groups"], hp["reduction"]
    if len(kernels) != len(groups) or c % len(kernels):
        return False
    split = c // len(kernels)
    return all(split % g == 0 for g in groups) and split // r >= 1


# Independent statement of each paper's rule (not read from the registry).
EXPECTED: dict[str, Callable[[int, dict[str, Any]], bool]] = {
    "none": lambda c, hp: True,
    "se": _ratio("reduction"),
    "eca": lambda c, hp: True,
    "cbam": _ratio("reduction"),
    "scse": _ratio("reduction"),
    "ca": lambda c, hp: True,  # mip = max(8, C // r) never reaches 0
    "sa": lambda c, hp: c % (2 * hp["groups"]) == 0,
    "psa": _psa,
    "gam": _ratio("rate"),
    "sk": lambda c, hp: c % hp["groups"] == 0,
    "nonlocal": lambda c, hp: True,  # inner width max(1, C // r)
    "cc": _ratio("reduction"),
    "da": _ratio("reduction"),
}


def test_expected_rules_cover_the_registry() -> None:
    assert set(EXPECTED) == set(list_blocks())


def _combos(name: str) -> list[dict[str, Any]]:
    spec = get_spec(name)
    names = [h.name for h in spec.hparams]
    return [
        dict(zip(names, values, strict=True))
        for values in itertools.product(*(h.domain for h in spec.hparams))
    ]


@pytest.mark.parametrize("name", list_blocks())
def test_every_domain_combination_for_many_channel_counts(name: str) -> None:
    spec = get_spec(name)
    built = 0
    for channels in CHANNELS:
        valid = []
        for hp in _combos(name):
            expected = EXPECTED[name](channels, hp)
            assert spec.is_valid(channels, **hp) == expected, (name, channels, hp)
            if expected:
                valid.append(hp)
            else:
                with pytest.raises(BlockConfigError) as info:
                    create_block(name, channels, **hp)
                err = info.value
                assert str(err).startswith(f"{name}: {err.param}=")
                assert err.param in {"channels", *hp}
        assert spec.valid_combinations(channels) == valid
        for param in (h.name for h in spec.hparams):
            assert spec.valid_values(param, channels) == [
                v for v in spec.hparam(param).domain if any(c[param] == v for c in valid)
            ]
        # constructing (and running) the valid ones: a few channel counts keep this quick
        if channels in (12, 48):
            for hp in valid:
                block = create_block(name, channels, **hp).eval()
                x = torch.randn(1, channels, 3, 2)
                with torch.no_grad():
                    assert block(x).shape == x.shape, (name, channels, hp)
                built += 1
    assert built > 0 or name == "none"


def test_shuffle_attention_message_names_block_parameter_value_and_rule() -> None:
    with pytest.raises(BlockConfigError) as info:
        create_block("sa", 96)
    assert str(info.value) == "sa: channels=96 must be divisible by 2*groups=128"
    assert (info.value.block, info.value.param, info.value.value) == ("sa", "channels", 96)
    assert get_spec("sa").valid_values("groups", 96) == [4, 8, 16]
    create_block("sa", 96, groups=16)


def test_default_invalid_channels_still_have_valid_choices() -> None:
    for name in list_blocks():
        for channels in (16, 24, 32, 48, 64, 96, 160, 320):
            if get_spec(name).hparams:
                assert get_spec(name).valid_combinations(channels), (name, channels)


@pytest.mark.parametrize(
    ("name", "hparams", "param"),
    [
        ("se", {"reduction": 0}, "reduction"),
        ("se", {"reduction": -4}, "reduction"),
        ("se", {"reduction": 2.5}, "reduction"),
        ("se", {"reduction": True}, "reduction"),
        ("se", {"reduction": "16"}, "reduction"),
        ("eca", {"k_size": 4}, "k_size"),
        ("eca", {"k_size": -3}, "k_size"),
        ("cbam", {"kernel_size": 4}, "kernel_size"),
        ("cbam", {"reduction": 0}, "reduction"),
        ("scse", {"fusion": "mul"}, "fusion"),
        ("ca", {"reduction": 0}, "reduction"),
        ("sa", {"groups": 0}, "groups"),
        ("psa", {"kernels": (3, 4, 7, 9)}, "kernels"),
        ("psa", {"kernels": ()}, "kernels"),
        ("psa", {"groups": (1, 4, 8)}, "groups"),
        ("psa", {"groups": 4}, "groups"),
        ("gam", {"kernel_size": 6}, "kernel_size"),
        ("sk", {"min_dim": 0}, "min_dim"),
        ("nonlocal", {"subsample": "yes"}, "subsample"),
        ("cc", {"recurrence": 0}, "recurrence"),
        ("da", {"reduction": 1.0}, "reduction"),
    ],
)
def test_bad_values_are_rejected_by_name(name: str, hparams: dict[str, Any], param: str) -> None:
    with pytest.raises(BlockConfigError) as info:
        create_block(name, 256, **hparams)
    assert info.value.block == name and info.value.param == param
    assert str(info.value).startswith(f"{name}: {param}=")


def test_json_lists_are_accepted_for_tuple_parameters() -> None:
    block = create_block("psa", 64, kernels=[3, 5, 7, 9], groups=[1, 4, 8, 16])
    assert block(torch.randn(1, 64, 4, 4)).shape == (1, 64, 4, 4)
    assert get_spec("psa").is_valid(64, kernels=[3, 5], groups=[1, 4])
    resolved = get_spec("psa").validate(64, kernels=[3, 5], groups=[1, 4])
    assert resolved == {"kernels": (3, 5), "groups": (1, 4), "reduction": 16}


@pytest.mark.parametrize("channels", [0, -8, 3.0, True, "64"])
def test_bad_channel_counts(channels: Any) -> None:
    with pytest.raises(BlockConfigError, match="channels"):
        create_block("se", channels)


def test_unknown_block_lists_valid_names() -> None:
    with pytest.raises(UnknownBlockError) as info:
        create_block("senet", 64)
    message = str(info.value)
    assert "senet" in message
    assert all(name in message for name in list_blocks())
    assert isinstance(info.value, BlockConfigError | NotFoundError | NasError | ValueError)
    with pytest.raises(UnknownBlockError):
        get_spec("nope")


def test_unknown_hparam_lists_known_ones() -> None:
    with pytest.raises(BlockConfigError) as info:
        create_block("cbam", 64, ratio=16)
    assert info.value.param == "ratio"
    assert "reduction" in str(info.value) and "kernel_size" in str(info.value)
    with pytest.raises(BlockConfigError, match="not a parameter"):
        create_block("none", 64, reduction=4)
    with pytest.raises(BlockConfigError, match="not a parameter"):
        get_spec("se").valid_values("ratio", 64)


def test_conv_form_only_for_psa_and_sk() -> None:
    assert [n for n in list_blocks() if get_spec(n).supports_conv] == ["psa", "sk"]
    with pytest.raises(BlockConfigError) as info:
        create_conv_block("se", 64, 64)
    assert "psa" in str(info.value) and "sk" in str(info.value)


@pytest.mark.parametrize(
    ("name", "args", "param"),
    [
        ("sk", (48, 64, 1), "in_channels"),  # 48 % 32
        ("sk", (64, 48, 1), "channels"),  # out 48 % 32
        ("psa", (36, 64, 1), "in_channels"),  # 36 % 16
        ("psa", (64, 96, 1), "groups"),  # out/4 = 24, 24 % 16
        ("psa", (64, 64, 0), "stride"),
        ("sk", (0, 64, 1), "in_channels"),
    ],
)
def test_conv_form_rules(name: str, args: tuple[int, int, int], param: str) -> None:
    with pytest.raises(BlockConfigError) as info:
        create_conv_block(name, *args)
    assert info.value.param == param
    assert not get_spec(name).is_valid_conv(*args)


@pytest.mark.parametrize("name", [n for n in list_blocks() if get_spec(n).hparams])
def test_classes_built_directly_check_their_rules_too(name: str) -> None:
    spec = get_spec(name)
    bad = [(c, hp) for c in CHANNELS for hp in _combos(name) if not EXPECTED[name](c, hp)]
    if bad:  # eca, ca and nonlocal accept every channel count
        with pytest.raises(BlockConfigError):
            spec.cls(bad[0][0], **bad[0][1])
    first = spec.hparams[0]
    with pytest.raises(BlockConfigError):
        spec.cls(64, **{first.name: -1 if first.type is int else ("x",)})
