"""`nas spaces` and `nas spaces show`."""

from __future__ import annotations

import json

import pytest

from nas.cli import main
from nas.space import list_spaces, load_space, parse_space


def test_list_shows_backbone_stages_and_size(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["spaces"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:5] == ["NAME", "BACKBONE", "INPUT", "STAGES", "SIZE"]
    rows = {line.split()[0]: line.split() for line in lines[1:] if line.strip()}
    tiny = load_space("tiny")
    assert rows["tiny"][1:5] == ["mobilenet_v2", "1x8x8", "2", f"{tiny.size():,}"]
    assert set(list_spaces()) <= set(rows)


def test_list_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["spaces", "--json"]) == 0
    data = {d["name"]: d for d in json.loads(capsys.readouterr().out)}
    assert data["resnet"]["backbone"] == "resnet"
    assert data["mobile"]["size"] == load_space("mobile").size()


def test_show_lists_stages_choices_and_size(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["spaces", "show", "tiny"]) == 0
    out = capsys.readouterr().out
    space = load_space("tiny")
    assert f"{space.size():,} architectures" in out
    assert "STAGE  OUT  STRIDE  WIDTH  DEPTH" in out
    assert "{1,2}" in out  # stage 0's searched depth
    stage1 = out.split("stage 1 attention")[1]
    assert "sa        groups={4,8}" in stage1
    assert "scse      reduction={2,4,8,16}  fusion={max,add}" in stage1


def test_show_json_is_the_space_document(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["spaces", "show", "mobile", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["size"] == load_space("mobile").size()
    document = {k: v for k, v in data.items() if k not in ("size", "source")}
    assert parse_space(document).stages == load_space("mobile").stages
