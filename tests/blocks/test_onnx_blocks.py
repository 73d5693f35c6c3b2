"""Every block of the zoo exports to ONNX and runs in ONNX Runtime as it does in PyTorch."""

from __future__ import annotations

import pytest
import torch
from block_configs import config_for
from torch import nn

from nas.blocks import create_block, list_blocks
from nas.onnx_export import TOLERANCE, OnnxExportError, export_checked, to_onnx

CHANNELS = (16, 64)


def _perturbed(module: nn.Module) -> nn.Module:
    """Weights, zero-initialised gammas and BatchNorm statistics moved off their init.

    By 0.2: at 0.5, criss-cross attention at 64 channels reaches outputs of ~57 where float32
    PyTorch itself differs from float64 PyTorch by 8e-3, so no float32 runtime could match.
    """
    with torch.no_grad():
        for p in module.parameters():
            p.add_(0.2 * torch.randn_like(p))
        for m in module.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.running_mean.normal_(0, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    return module.eval()


@pytest.mark.parametrize("channels", CHANNELS)
@pytest.mark.parametrize("name", list_blocks())
def test_block_exports_and_matches_pytorch(name: str, channels: int) -> None:
    block = _perturbed(create_block(name, channels, **config_for(name, channels)))
    # 7 x 5: odd, non-square, so pooling and the row/column axes are both exercised
    check = export_checked(block, (channels, 7, 5), batch_sizes=(1, 8))
    assert set(check.max_abs_diff) == {1, 8}
    assert check.worst <= TOLERANCE
    assert check.opset == 17 and check.exporter == "torchscript"


def test_non_exportable_block_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    block = create_block("se", 16)

    def fft_forward(self: nn.Module, x: torch.Tensor) -> torch.Tensor:
        return torch.fft.fft2(x).real  # no ONNX export at opset 17

    monkeypatch.setattr(type(block), "forward", fft_forward)
    model = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.Sequential(block))
    with pytest.raises(OnnxExportError, match=r"^block se at 1\.0 does not export to ONNX: "):
        to_onnx(model, (3, 8, 8))


def test_a_difference_past_the_tolerance_fails() -> None:
    block = _perturbed(create_block("se", 16))
    with pytest.raises(OnnxExportError, match="differs from PyTorch's by"):
        export_checked(block, (16, 4, 4), tolerance=-1.0)  # any difference
