"""Loading the shipped spaces and round-tripping space documents."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nas.blocks import get_spec, list_blocks
from nas.space import SearchSpace, list_spaces, load_space, parse_space, space_path

SHIPPED = ["mobile", "resnet", "tiny"]


def test_shipped_spaces_are_listed_and_load() -> None:
    assert set(SHIPPED) <= set(list_spaces())
    for name in SHIPPED:
        space = load_space(name)
        assert isinstance(space, SearchSpace)
        assert space.name == name
        assert Path(space.source) == space_path(name)
        assert space.size() > 1


def test_mobile_is_small_input_and_offers_every_block_in_every_stage() -> None:
    space = load_space("mobile")
    assert space.backbone == "mobilenet_v2" and space.small_input
    assert 4 <= len(space.stages) <= 5
    for stage in space.stages:
        assert list(stage.attention) == list_blocks()


def test_tiny_has_two_stages_and_searches_structure() -> None:
    space = load_space("tiny")
    assert len(space.stages) == 2
    assert space.input_shape == (1, 8, 8)
    params = space.parameters()
    assert "stage0.depth" in params and "stage1.kernel" in params


def test_offered_hyperparameters_form_valid_boxes() -> None:
    # every offered combination is valid for the channel counts the stage has: check by
    # building the block at each hidden width of the mobile space's stage 1 (in 16 -> 24,
    # expansion 4 gives 64 and 96 channels).
    import itertools

    stage = load_space("mobile").stages[1]
    for block in stage.attention:
        spec = get_spec(block)
        params = stage.hparams[block]
        for combo in itertools.product(*params.values()):
            hp = dict(zip(params, combo, strict=True))
            for channels in (64, 96):
                assert spec.is_valid(channels, **hp), (block, hp, channels)
    # sa needs channels % (2*groups) == 0 for both 64 and 96: 32 and 64 groups are not offered
    assert stage.hparams["sa"]["groups"] == (4, 8, 16)


def test_to_dict_parses_back_to_the_same_space(tmp_path: Path) -> None:
    for name in SHIPPED:
        space = load_space(name)
        again = parse_space(json.loads(json.dumps(space.to_dict())))
        assert again.stages == space.stages
        assert again.size() == space.size()
        assert again.to_dict() == space.to_dict()


def test_parse_yaml_text_and_narrowed_domains() -> None:
    space = parse_space(
        """
        backbone: mobilenet_v2
        input_shape: [1, 8, 8]
        num_classes: 10
        small_input: true
        stem_width: 8
        head_width: 16
        hparams: {se: {reduction: [4]}}      # space-wide narrowing
        stages:
          - {width: 8, expansion: 2, attention: [none, se, eca],
             hparams: {eca: {k_size: [3, 5]}}}
          - {width: [8, 16], expansion: 2, stride: 2, attention: [se]}
        """
    )
    assert space.source == "<inline>" and space.num_classes == 10
    s0, s1 = space.stages
    assert s0.attention == ("none", "se", "eca")
    assert s0.hparams["eca"] == {"k_size": (3, 5)}
    assert s1.hparams["se"] == {"reduction": (4,)}
    assert s1.width == (8, 16)
    # stage 0: none + se (1 value) + eca (2 values) = 4; stage 1: 2 widths x se (1) = 2
    assert space.size() == 4 * 2


def test_spaces_path_adds_folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "mine.yaml").write_text(space_path("tiny").read_text())
    monkeypatch.setenv("NAS_SPACES_PATH", str(tmp_path))
    assert "mine" in list_spaces()
    assert load_space("mine").stages == load_space("tiny").stages
    assert load_space(str(tmp_path / "mine.yaml")).name == "mine"


def test_resnet_space_puts_psa_and_sk_in_the_conv() -> None:
    space = load_space("resnet")
    assert space.backbone == "resnet" and space.placement == "conv"
    assert [s.resolution for s in space.stages] == [(32, 32), (16, 16), (8, 8), (4, 4)]
    for stage in space.stages:
        assert {"psa", "sk"} <= set(stage.attention)
