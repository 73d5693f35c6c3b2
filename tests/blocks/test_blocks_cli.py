"""`nas blocks`: the table, one block in detail, unknown names, and no torch at import."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from nas.blocks import get_spec, list_blocks
from nas.cli import main


def test_table_lists_every_block_with_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["blocks"]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0] for line in out.splitlines()[1:] if line and not line[0].isspace()}
    assert set(list_blocks()) <= rows
    assert "reduction=16" in out and "groups=64" in out and "k_size=0" in out
    assert "{4, 8, 16, 32}" in out


def test_one_block_in_detail(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["blocks", "sa", "--channels", "96"]) == 0
    out = capsys.readouterr().out
    assert get_spec("sa").paper in out
    assert "sa: channels=96 must be divisible by 2*groups=128" in out
    assert "groups: 4, 8, 16" in out


def test_json_output(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["blocks", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [d["name"] for d in data] == list_blocks()
    psa = next(d for d in data if d["name"] == "psa")
    assert psa["supports_conv"] and psa["hparams"][0]["default"] == [3, 5, 7, 9]
    assert main(["blocks", "sk", "--channels", "48", "--json"]) == 0
    detail = json.loads(capsys.readouterr().out)
    assert detail["default_valid"] is False and detail["valid_values"]["groups"] == [1, 8, 16]


def test_unknown_block_exits_2_with_the_valid_names(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["blocks", "senet"]) == 2
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    assert "senet" in captured.err and all(name in captured.err for name in list_blocks())


def test_channels_without_name_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["blocks", "--channels", "64"]) == 2
    assert "NAME" in capsys.readouterr().err


def test_command_module_does_not_import_torch() -> None:
    code = (
        "import argparse, sys, nas.commands.blocks as b; "
        "b.register(argparse.ArgumentParser().add_subparsers()); print('torch' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
