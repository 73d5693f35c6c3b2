"""Behaviour every registered block must have: shape, gradients, modes, determinism, tracing."""

from __future__ import annotations

import inspect

import pytest
import torch
from block_configs import config_for
from torch import nn

from nas.blocks import create_block, get_spec, list_blocks

BLOCKS = list_blocks()
CHANNELS = (16, 32, 64)
SIZES = ((1, 1), (2, 2), (7, 5), (5, 8), (8, 8))


def test_registry_lists_every_block_of_the_design() -> None:
    expected = {"none", "se", "eca", "cbam", "scse", "ca", "sa", "psa", "gam", "sk"}
    expected |= {"nonlocal", "cc", "da"}
    assert set(BLOCKS) == expected
    assert BLOCKS[0] == "none"


@pytest.mark.parametrize("name", BLOCKS)
def test_spec_declaration(name: str) -> None:
    spec = get_spec(name)
    assert spec.name == name
    assert spec.paper
    for hp in spec.hparams:
        assert hp.default is not None
        assert hp.domain, f"{name}.{hp.name} has an empty domain"
        for value in hp.domain:
            assert isinstance(value, hp.type)
            assert hp.check is None or hp.check(value) is None, (name, hp.name, value)
        assert hp.check is None or hp.check(hp.default) is None
    # the module docstring cites the paper with an arXiv link (except the identity)
    module = __import__(spec.cls.__module__, fromlist=["_"])
    if name != "none":
        assert "arxiv.org/abs/" in module.__doc__


@pytest.mark.parametrize("name", BLOCKS)
def test_shape_preserved_for_channels_and_sizes(name: str) -> None:
    for channels in CHANNELS:
        block = create_block(name, channels, **config_for(name, channels))
        for mode in (True, False):
            block.train(mode)
            for h, w in SIZES:
                x = torch.randn(2, channels, h, w)
                with torch.no_grad():
                    y = block(x)
                assert y.shape == x.shape, (name, channels, (h, w), mode)
                assert torch.isfinite(y).all(), (name, channels, (h, w), mode)


@pytest.mark.parametrize("name", BLOCKS)
def test_batch_of_one_in_eval_mode(name: str) -> None:
    block = create_block(name, 32, **config_for(name, 32)).eval()
    x = torch.randn(1, 32, 3, 4)
    with torch.no_grad():
        assert block(x).shape == x.shape


def _loss_backward(block: nn.Module, x: torch.Tensor) -> None:
    out = block(x)
    (out * torch.randn_like(out)).sum().backward()


@pytest.mark.parametrize("name", BLOCKS)
def test_every_parameter_gets_a_gradient(name: str) -> None:
    """At initialisation (zero gammas and zero BN weights included) every grad is present."""
    block = create_block(name, 32, **config_for(name, 32)).train()
    x = torch.randn(2, 32, 6, 5, requires_grad=True)
    _loss_backward(block, x)
    for pname, p in block.named_parameters():
        assert p.grad is not None, f"{name}.{pname} got no gradient"
    assert x.grad is not None and x.grad.abs().sum() > 0


@pytest.mark.parametrize("name", BLOCKS)
def test_gradients_nonzero_once_zero_inits_are_perturbed(name: str) -> None:
    """With the zero-initialised gammas/BN weights moved off zero every parameter learns.

    Eval mode: in train mode a bias right before a BatchNorm gets a zero gradient by design.
    """
    block = create_block(name, 32, **config_for(name, 32))
    with torch.no_grad():
        for p in block.parameters():
            p.add_(0.1 * torch.randn_like(p))
    block.eval()
    _loss_backward(block, torch.randn(2, 32, 6, 5, requires_grad=True))
    for pname, p in block.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, f"{name}.{pname} grad is zero"


@pytest.mark.parametrize("name", BLOCKS)
def test_eval_output_is_deterministic(name: str) -> None:
    block = create_block(name, 32, **config_for(name, 32)).eval()
    x = torch.randn(2, 32, 7, 5)
    with torch.no_grad():
        assert torch.equal(block(x), block(x))


@pytest.mark.parametrize("name", BLOCKS)
def test_train_step_changes_bn_statistics_only_in_train_mode(name: str) -> None:
    block = create_block(name, 32, **config_for(name, 32))
    before = {k: v.clone() for k, v in block.state_dict().items()}
    block.eval()
    with torch.no_grad():
        block(torch.randn(2, 32, 4, 4))
    after = block.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    block.train()
    with torch.no_grad():
        block(torch.randn(2, 32, 4, 4) + 3.0)
    has_bn = any(isinstance(m, nn.BatchNorm2d) for m in block.modules())
    changed = any(not torch.equal(before[k], block.state_dict()[k]) for k in before)
    assert changed == has_bn


@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")  # GroupNorm's size check (sa)
@pytest.mark.parametrize("name", BLOCKS)
def test_jit_trace_matches_eager(name: str) -> None:
    block = create_block(name, 32, **config_for(name, 32)).eval()
    x = torch.randn(2, 32, 7, 5)
    with torch.no_grad():
        traced = torch.jit.trace(block, x, check_trace=False)
        other = torch.randn(2, 32, 7, 5)
        torch.testing.assert_close(traced(x), block(x))
        torch.testing.assert_close(traced(other), block(other))


OFFICIAL_DEFAULTS = {
    "none": {},
    "se": {"reduction": 16},
    "eca": {"k_size": 0},  # adaptive kernel
    "cbam": {"reduction": 16, "kernel_size": 7},
    "scse": {"reduction": 2, "fusion": "max"},
    "ca": {"reduction": 32},
    "sa": {"groups": 64},
    "psa": {"kernels": (3, 5, 7, 9), "groups": (1, 4, 8, 16), "reduction": 16},
    "gam": {"rate": 4, "kernel_size": 7},
    "sk": {"groups": 32, "reduction": 16, "min_dim": 32},
    "nonlocal": {"reduction": 2, "subsample": True},
    "cc": {"reduction": 8, "recurrence": 2},
    "da": {"reduction": 8},
}


@pytest.mark.parametrize("name", BLOCKS)
def test_defaults_are_the_official_ones_and_match_the_class(name: str) -> None:
    spec = get_spec(name)
    assert spec.defaults() == OFFICIAL_DEFAULTS[name]
    assert spec.validate(256) == OFFICIAL_DEFAULTS[name]
    signature = inspect.signature(spec.cls)
    for param, value in OFFICIAL_DEFAULTS[name].items():
        assert signature.parameters[param].default == value, (name, param)
        assert signature.parameters[param].kind is inspect.Parameter.KEYWORD_ONLY
    assert next(iter(signature.parameters)) == "channels"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("name", BLOCKS)
def test_cuda_matches_cpu(name: str) -> None:
    block = create_block(name, 32, **config_for(name, 32)).eval()
    x = torch.randn(2, 32, 7, 5)
    with torch.no_grad():
        expected = block(x)
        got = block.to("cuda")(x.to("cuda")).cpu()
    torch.testing.assert_close(got, expected, rtol=1e-3, atol=1e-4)
    block.train()
    x_cuda = x.to("cuda").requires_grad_()
    block(x_cuda).sum().backward()
    assert x_cuda.grad is not None and torch.isfinite(x_cuda.grad).all()
    assert all(p.grad is not None for p in block.parameters())


@pytest.mark.parametrize("name", BLOCKS)
def test_runs_under_autocast_and_inference_mode(name: str) -> None:
    block = create_block(name, 32, **config_for(name, 32)).eval()
    x = torch.randn(2, 32, 7, 5)
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        y = block(x)
    assert y.shape == x.shape and torch.isfinite(y).all()
