"""ONNX export: an architecture of every shipped space, and `nas export --format onnx` of a
stored trial (CLI and Python), checked in ONNX Runtime; a clear error without the extra."""

from __future__ import annotations

import contextlib
import io
import sys
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from nas.cli import main
from nas.onnx_export import TOLERANCE, export_checked
from nas.space import Arch, build_model, default_arch, list_spaces, load_space

# A seeded random architecture of tiny (cbam, scse) and mobile (psa, cc twice, sa); ResNet-50
# with ECA (the cheapest: other blocks at 32x32 x 256 channels in 16 bottlenecks cost 5-20 s
# of CPU to export and run). Batches 1 and 2 show the dynamic batch axis; every block is
# checked at batch 8 in tests/blocks/test_onnx_blocks.py.
SEEDS = {"tiny": 4, "mobile": 0}


def _random_arch(space: Any, seed: int) -> Arch:
    import optuna

    from nas.space import suggest

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    return suggest(study.ask(), space)


def _calibrated(model: nn.Module) -> nn.Module:
    """BatchNorm statistics off their init, as after training."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.running_mean.normal_(0, 0.2)
                m.running_var.uniform_(0.5, 2.0)
    return model.eval()


@pytest.mark.parametrize("name", list_spaces())
def test_an_architecture_of_every_space_exports(name: str) -> None:
    space = load_space(name)
    arch = _random_arch(space, SEEDS[name]) if name in SEEDS else default_arch(space, "eca")
    torch.manual_seed(0)
    model = _calibrated(build_model(space, arch, num_classes=10))
    check = export_checked(model, space.input_shape, batch_sizes=(1, 2))
    assert check.worst <= TOLERANCE, (arch.describe(), check.max_abs_diff)


def _run(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def stored_trial() -> tuple[str, int, nn.Module]:
    """A search in the workspace's storage with one complete trial of `tiny` and its weights
    (written as a finished trial leaves them; no Ray, no training)."""
    import optuna

    from nas.search.attrs import ATTR
    from nas.search.config import SearchConfig
    from nas.search.export import weights_path
    from nas.search.store import get_storage
    from nas.search.study import open_study

    config = SearchConfig(space="tiny", dataset="synthetic", budget=1)
    opened = open_study(config, None, get_storage(None), check=False)
    arch = default_arch(opened.space, "se")
    torch.manual_seed(0)
    model = _calibrated(build_model(opened.space, arch, num_classes=4))
    trial = optuna.trial.create_trial(
        values=[0.5, 1.0],
        user_attrs={
            ATTR["arch"]: arch.to_dict(),
            ATTR["arch_id"]: arch.id,
            ATTR["metrics"]: {"num_classes": 4},
        },
    )
    opened.study.add_trial(trial)
    path = weights_path(opened.search_id, 0)
    path.parent.mkdir(parents=True)
    torch.save(model.state_dict(), path)
    return opened.search_id, 0, model


def test_cli_exports_a_trial_as_onnx(stored_trial: Any, tmp_path: Any) -> None:
    import onnx
    import onnxruntime

    search_id, number, model = stored_trial
    output = tmp_path / "model.onnx"
    code, out, err = _run(
        ["export", search_id, str(number), "--format", "onnx", "--output", str(output)]
    )
    assert code == 0, err
    assert "opset 17" in out and "max abs diff" in out and "at batch 8" in out
    proto = onnx.load(str(output))
    onnx.checker.check_model(proto)
    props = {p.key: p.value for p in proto.metadata_props}
    assert props["nas.search_id"] == search_id and props["nas.trial"] == "0"
    assert Arch.from_json(props["nas.arch"]).id == default_arch(load_space("tiny"), "se").id
    session = onnxruntime.InferenceSession(str(output), providers=["CPUExecutionProvider"])
    x = torch.randn(3, *load_space("tiny").input_shape)  # the batch axis is dynamic
    (actual,) = session.run(None, {"input": x.numpy()})
    with torch.no_grad():
        np.testing.assert_allclose(actual, model(x).numpy(), atol=TOLERANCE, rtol=0)


def test_python_export_reports_the_comparison(stored_trial: Any, tmp_path: Any) -> None:
    from nas.search.export import export_trial, export_trial_onnx

    search_id, number, _ = stored_trial
    done = export_trial_onnx(search_id, number, output=tmp_path / "a.onnx")
    assert set(done.max_abs_diff) == {1, 8} and max(done.max_abs_diff.values()) <= TOLERANCE
    assert (done.opset, done.exporter) == (17, "torchscript")
    path = export_trial(search_id, number, format="onnx", output=tmp_path / "b.onnx")
    assert path.read_bytes() == done.path.read_bytes()  # deterministic


@pytest.mark.parametrize("module", ["onnx", "onnxruntime"])
def test_missing_extra_is_one_line_exit_2(
    module: str, stored_trial: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # import fails as if not installed
    search_id, number, _ = stored_trial
    output = tmp_path / "m.onnx"
    code, out, err = _run(
        ["export", search_id, str(number), "--format", "onnx", "--output", str(output)]
    )
    assert code == 2 and out == ""
    assert (
        err == f"error: ONNX export (format onnx) needs the [onnx] extra (pip install "
        f"'nas[onnx]'); {module} is not installed\n"
    )
    assert not output.exists()
