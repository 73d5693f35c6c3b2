"""Malformed spaces fail with SpaceError naming the file, the field path and the reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from nas.cli import main
from nas.errors import NasError
from nas.space import SpaceError, load_space, parse_space

GOOD = """\
backbone: mobilenet_v2
input_shape: [1, 8, 8]
small_input: true
stem_width: 8
head_width: 16
stages:
  - {width: 8, expansion: 2, attention: [none, se, sa]}
  - {width: 16, expansion: 2, stride: 2}
"""

# (replace this, with this) in GOOD -> (field path, words of the reason)
CASES = [
    ("[none, se, sa]", "[none, se, bogus]", "stages[0].attention[2]", "unknown block 'bogus'"),
    (
        "[none, se, sa]}",
        "[none, se, sa], hparams: {sa: {groups: [4, 16]}}}",
        "stages[0].hparams.sa.groups",
        "value 16 is invalid for this stage: sa: channels=16 must be divisible by 2*groups=32",
    ),
    (
        "[none, se, sa]}",
        "[none, se, sa], hparams: {se: {reduction: [0]}}}",
        "stages[0].hparams.se.reduction",
        "value 0 must be a positive integer",
    ),
    (
        "[none, se, sa]}",
        "[none, se, sa], hparams: {se: {ratio: [4]}}}",
        "stages[0].hparams.se.ratio",
        "not a parameter of se",
    ),
    (
        "[none, se, sa]}",
        "[none, se, sa], hparams: {ca: {reduction: [4]}}}",
        "stages[0].hparams.ca",
        "not among this stage's attention",
    ),
    ("backbone: mobilenet_v2\n", "", "backbone", "required field is missing"),
    ("backbone: mobilenet_v2", "backbone: vgg", "backbone", "unknown backbone 'vgg'"),
    ("input_shape: [1, 8, 8]", "input_shape: [1, 8]", "input_shape", "at least 3 items"),
    ("stride: 2}", "stride: 3}", "stages[1].stride", "1 or 2"),
    ("width: 16,", "width: [16, 0],", "stages[1].width[1]", "greater than or equal to 1"),
    ("width: 16,", "width: sixteen,", "stages[1].width", "positive integer or a non-empty list"),
    ("stride: 2}", "stride: 2, kernel: 4}", "stages[1].kernel", "must be odd"),
    ("stride: 2}", "stride: 2, colour: red}", "stages[1].colour", "unknown field"),
    ("small_input: true", "small_input: true\nplacement: conv", "placement", "not supported"),
    ("expansion: 2, attention", "expansion: 1, attention", "stages[0].attention", "expansion 1"),
    ("[1, 8, 8]", "[1, 8, 8", "line 3, column 12", "not valid YAML"),
]


@pytest.mark.parametrize(("old", "new", "field", "reason"), CASES)
def test_malformed_space_names_file_field_and_reason(
    tmp_path: Path, old: str, new: str, field: str, reason: str
) -> None:
    assert old in GOOD
    path = tmp_path / "broken.yaml"
    path.write_text(GOOD.replace(old, new, 1))
    with pytest.raises(SpaceError) as info:
        load_space(str(path))
    err = info.value
    assert isinstance(err, NasError) and isinstance(err, ValueError)
    assert err.source == str(path)
    assert err.field == field
    assert reason in err.reason
    assert str(err).startswith(f"{path}: {field}: ")


def test_good_document_loads(tmp_path: Path) -> None:
    path = tmp_path / "good.yaml"
    path.write_text(GOOD)
    space = load_space(path)
    assert space.name == "good"
    # the 8-channel stem expanded by 2: 16 channels; sa needs 16 % (2*groups) == 0
    assert space.stages[0].hparams["sa"] == {"groups": (4, 8)}


@pytest.mark.parametrize("name", ["../x", "nope", "../search_spaces/tiny", "/etc/passwd"])
def test_unknown_names_and_paths_are_space_errors(name: str) -> None:
    with pytest.raises(SpaceError) as info:
        load_space(name, allow_path=False)
    assert info.value.source == name and "not a space in search_spaces/" in info.value.reason
    assert "tiny" in info.value.reason  # lists what exists


def test_missing_file_is_a_space_error() -> None:
    with pytest.raises(SpaceError, match=r"^\.\./x: name: no such file"):
        load_space("../x")


def test_inline_documents_report_the_inline_source() -> None:
    with pytest.raises(SpaceError, match=r"^<inline>: stages: required field is missing"):
        parse_space({"backbone": "resnet", "input_shape": [3, 32, 32]})
    with pytest.raises(SpaceError, match=r"^<inline>: <document>: a space must be a mapping"):
        parse_space("- just\n- a list\n")


def test_block_valid_nowhere_in_an_explicit_list_is_an_error() -> None:
    # a 6-channel stem expanded by 2 gives 12 channels: sa needs 12 % (2*groups) == 0, and
    # its smallest group count is 4
    doc = GOOD.replace("stem_width: 8", "stem_width: 6")
    with pytest.raises(SpaceError, match=r"stages\[0\]\.attention: sa is valid in no setting"):
        parse_space(doc)
    # with `all`, a block that fits nowhere is simply not offered
    space = parse_space(doc.replace("[none, se, sa]", "all"))
    assert "sa" not in space.stages[0].attention and "se" in space.stages[0].attention


def test_cli_prints_space_errors_without_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(GOOD.replace("[none, se, sa]", "[none, se, bogus]"))
    assert main(["spaces", "show", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {path}: stages[0].attention[2]: unknown block 'bogus'")
    assert "Traceback" not in err
    assert main(["spaces", "show", "../x"]) == 2
    err = capsys.readouterr().err
    assert "../x" in err and "Traceback" not in err


def test_cli_lists_broken_spaces_and_exits_non_zero(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "zzz.yaml").write_text("backbone: [")
    monkeypatch.setenv("NAS_SPACES_PATH", str(tmp_path))
    assert main(["spaces"]) == 2
    out, err = capsys.readouterr()
    assert "zzz" in out and "tiny" in out
    assert "zzz.yaml: line 1" in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("hparams", "field", "reason"),
    [
        ({"se": {"reduction": [4, 4]}}, "stages[0].hparams.se.reduction", "the same value twice"),
        ({"se": {"reduction": [{"a": 1}]}}, "stages[0].hparams.se.reduction", "a mapping"),
        (
            {"cbam": {"reduction": list(range(1, 200)), "kernel_size": list(range(1, 200, 2))}},
            "stages[0].hparams.cbam",
            "19900 hyperparameter combinations; at most 10000",
        ),
    ],
)
def test_unusable_domains_are_rejected(hparams: dict, field: str, reason: str) -> None:
    document = load_space("tiny").to_dict()
    document["stages"][0]["hparams"] = hparams
    with pytest.raises(SpaceError) as info:
        parse_space(document)
    assert info.value.field == field and reason in info.value.reason


def test_too_many_stage_shapes_are_rejected() -> None:
    document = load_space("tiny").to_dict()
    document["stages"][0] |= {"width": list(range(1, 100)), "expansion": list(range(2, 100))}
    # 1 stem width x 99 widths x 98 expansions x 2 depths
    with pytest.raises(SpaceError, match=r"stages\[0\]: 19404 combinations of input width"):
        parse_space(document)
